//! The API-server defaults that change what Pod Security checks see.
//!
//! Admission runs after defaulting, so a check sees defaulted fields. Of all the
//! core/v1 defaults only one touches a checked field: on a Pod with
//! `hostNetwork: true` every container port without a hostPort gets
//! `hostPort = containerPort` (SetDefaults_Pod). Since Kubernetes 1.28 this is no
//! longer applied to pod templates in workloads (feature gate
//! DefaultHostNetworkHostPortsInPodTemplates, off by default), so it is applied to
//! kind Pod only. Other defaults (restartPolicy, dnsPolicy, procMount "Default",
//! apps/v1 strategy fields...) cannot change any check's result.

use k8s_openapi::api::core::v1::{Container, PodSpec};

pub(crate) fn apply_pod_defaults(spec: &mut PodSpec) {
    if spec.host_network == Some(true) {
        default_host_network_ports(&mut spec.containers);
        if let Some(init) = spec.init_containers.as_mut() {
            default_host_network_ports(init);
        }
    }
}

fn default_host_network_ports(containers: &mut [Container]) {
    for port in containers
        .iter_mut()
        .flat_map(|c| c.ports.iter_mut().flatten())
    {
        if port.host_port.unwrap_or(0) == 0 {
            port.host_port = Some(port.container_port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerPort;

    #[test]
    fn host_network_pods_get_host_ports() {
        let mut spec = PodSpec {
            host_network: Some(true),
            containers: vec![Container {
                name: "c".into(),
                ports: Some(vec![ContainerPort {
                    container_port: 8080,
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        };
        apply_pod_defaults(&mut spec);
        let port = &spec.containers[0].ports.as_ref().unwrap()[0];
        assert_eq!(port.host_port, Some(8080));

        spec.host_network = None;
        spec.containers[0].ports.as_mut().unwrap()[0].host_port = None;
        apply_pod_defaults(&mut spec);
        assert_eq!(
            spec.containers[0].ports.as_ref().unwrap()[0].host_port,
            None
        );
    }
}
