//! The API-server defaults that change what Pod Security checks see.
//!
//! Admission runs after defaulting, so a check sees defaulted fields. Of all the
//! core/v1 defaults (k8s.io/kubernetes pkg/apis/core/v1/defaults.go) two touch a
//! checked field:
//!
//! * `SetDefaults_Volume`: a volume with no source at all becomes an `emptyDir`
//!   (restrictedVolumes allows it). It runs for every `Volume`, in Pods and in the
//!   pod templates of workloads alike ([`apply_pod_spec_defaults`]).
//! * `SetDefaults_Pod`: on a Pod with `hostNetwork: true` every container port
//!   without a hostPort gets `hostPort = containerPort`. Since Kubernetes 1.28 the
//!   same in `SetDefaults_PodSpec` (pod templates) is behind the feature gate
//!   DefaultHostNetworkHostPortsInPodTemplates, off by default, so it is applied to
//!   kind Pod only ([`apply_pod_defaults`]).
//!
//! Other defaults (`SetDefaults_PodSpec`'s restartPolicy, dnsPolicy and empty
//! securityContext, `SetDefaults_ContainerPort`'s protocol TCP,
//! `SetDefaults_HostPathVolumeSource`'s type "", `SetDefaults_SecretVolumeSource`'s
//! mode, procMount "Default", the apps/v1 and batch/v1 strategy fields...) cannot
//! change any check's result.

use k8s_openapi::api::core::v1::{Container, EmptyDirVolumeSource, PodSpec, Volume};

/// `SetDefaults_Volume`: `if reflect.DeepEqual(obj.VolumeSource, v1.VolumeSource{})`, the
/// source is `EmptyDir: &v1.EmptyDirVolumeSource{}`. Applied to every pod spec.
pub(crate) fn apply_pod_spec_defaults(spec: &mut PodSpec) {
    for volume in spec.volumes.iter_mut().flatten() {
        if has_no_source(volume) {
            volume.empty_dir = Some(EmptyDirVolumeSource::default());
        }
    }
}

/// Whether a volume sets nothing but its name (k8s-openapi serializes only the fields that
/// are set, so this holds for every source type, present and future).
fn has_no_source(volume: &Volume) -> bool {
    match serde_json::to_value(volume) {
        Ok(serde_json::Value::Object(map)) => map.keys().all(|k| k == "name"),
        _ => false,
    }
}

/// `SetDefaults_Pod`: hostNetwork pods get `hostPort = containerPort`. Applied to kind Pod only.
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
    use k8s_openapi::api::core::v1::{ContainerPort, HostPathVolumeSource};

    #[test]
    fn a_volume_without_a_source_is_an_empty_dir() {
        let mut spec = PodSpec {
            volumes: Some(vec![
                Volume {
                    name: "scratch".into(),
                    ..Default::default()
                },
                Volume {
                    name: "host".into(),
                    host_path: Some(HostPathVolumeSource {
                        path: "/".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        apply_pod_spec_defaults(&mut spec);
        let volumes = spec.volumes.unwrap();
        assert_eq!(volumes[0].empty_dir, Some(EmptyDirVolumeSource::default()));
        assert_eq!(volumes[1].empty_dir, None);
    }

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
