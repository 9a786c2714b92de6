//! Which workload a cgroup path belongs to: Kubernetes pods (containerd, CRI-O, Docker via
//! cri-dockerd), Docker, Podman and containerd containers, watertight sandboxes, systemd units,
//! or plain host processes.

use watertight_model::WorkloadKind;

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The runtime and container id encoded in one cgroup path segment
/// (`cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope`, `libpod-<id>.scope`,
/// or a bare id as the cgroupfs driver writes it).
fn container_segment(segment: &str) -> Option<(&'static str, String)> {
    let bare = segment.strip_suffix(".scope").unwrap_or(segment);
    for (prefix, runtime) in [
        ("cri-containerd-", "containerd"),
        ("crio-conmon-", "cri-o"),
        ("crio-", "cri-o"),
        ("docker-", "docker"),
        ("libpod-conmon-", "podman"),
        ("libpod-", "podman"),
    ] {
        if let Some(id) = bare.strip_prefix(prefix) {
            if is_container_id(id) {
                return Some((runtime, id.to_string()));
            }
        }
    }
    if is_container_id(bare) {
        return Some(("unknown", bare.to_string()));
    }
    None
}

/// The pod UID in a kubepods path segment (`pod<uid>` or `kubepods-besteffort-pod<uid_with_underscores>.slice`).
fn pod_uid(segment: &str) -> Option<String> {
    let bare = segment.strip_suffix(".slice").unwrap_or(segment);
    let idx = bare.rfind("pod")?;
    let uid = &bare[idx + 3..];
    if uid.len() >= 32
        && uid
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_')
    {
        Some(uid.replace('_', "-"))
    } else {
        None
    }
}

/// The workload kind a cgroup path names: a Kubernetes container (any `kubepods` segment), a
/// watertight sandbox, a runtime's container, a systemd unit, host processes (the root cgroup),
/// else a plain cgroup.
pub fn classify(path: &str) -> WorkloadKind {
    if path == "/" || path.is_empty() {
        return WorkloadKind::HostProcesses;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let last = segments.last().copied().unwrap_or("");
    if segments.iter().any(|s| s.starts_with("kubepods")) {
        let pod = segments.iter().rev().find_map(|s| pod_uid(s));
        let container = container_segment(last);
        return WorkloadKind::KubernetesContainer {
            runtime: container
                .as_ref()
                .map(|c| c.0.to_string())
                .unwrap_or_else(|| "unknown".into()),
            pod_uid: pod,
            container_id: container.map(|c| c.1),
        };
    }
    if segments
        .iter()
        .any(|s| *s == "watertight" || s.starts_with("watertight.") || s.starts_with("watertight-"))
    {
        return WorkloadKind::WatertightSandbox;
    }
    // A container anywhere in the path: `/docker/<id>`, `/system.slice/docker-<id>.scope`, ...
    if let Some((runtime, id)) = segments.iter().rev().find_map(|s| container_segment(s)) {
        let runtime = if runtime == "unknown" {
            segments
                .iter()
                .find_map(|s| match *s {
                    "docker" => Some("docker"),
                    "libpod_parent" | "machine.slice" => Some("podman"),
                    "lxc.payload" | "lxc" => Some("lxc"),
                    _ => None,
                })
                .unwrap_or("containerd")
        } else {
            runtime
        };
        return WorkloadKind::Container {
            runtime: runtime.to_string(),
            container_id: Some(id),
        };
    }
    if last.ends_with(".service") || last.ends_with(".scope") {
        return WorkloadKind::SystemdUnit {
            unit: last.to_string(),
        };
    }
    WorkloadKind::Cgroup
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f1c2a9b8e7d6c5b4a3f1c2a9b8e7d6c5b4a3f1c2a9b8e7d6c5b4a3f1c2a9b8e";

    #[test]
    fn kubernetes_paths() {
        let systemd = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1a2b3c4d_1111_2222_3333_444455556666.slice/cri-containerd-{ID}.scope"
        );
        assert_eq!(
            classify(&systemd),
            WorkloadKind::KubernetesContainer {
                runtime: "containerd".into(),
                pod_uid: Some("1a2b3c4d-1111-2222-3333-444455556666".into()),
                container_id: Some(ID.into()),
            }
        );
        let cgroupfs = format!("/kubepods/burstable/pod1a2b3c4d-1111-2222-3333-444455556666/{ID}");
        assert!(matches!(
            classify(&cgroupfs),
            WorkloadKind::KubernetesContainer {
                container_id: Some(_),
                pod_uid: Some(_),
                ..
            }
        ));
        let crio = format!("/kubepods.slice/x/crio-{ID}.scope");
        assert!(
            matches!(classify(&crio), WorkloadKind::KubernetesContainer { runtime, .. } if runtime == "cri-o")
        );
    }

    #[test]
    fn runtimes_units_and_host() {
        assert_eq!(
            classify(&format!("/docker/{ID}")),
            WorkloadKind::Container {
                runtime: "docker".into(),
                container_id: Some(ID.into())
            }
        );
        assert!(matches!(
            classify(&format!("/system.slice/docker-{ID}.scope")),
            WorkloadKind::Container { runtime, .. } if runtime == "docker"
        ));
        assert!(matches!(
            classify(&format!("/machine.slice/libpod-{ID}.scope")),
            WorkloadKind::Container { runtime, .. } if runtime == "podman"
        ));
        assert_eq!(
            classify("/watertight/sb-12"),
            WorkloadKind::WatertightSandbox
        );
        assert_eq!(
            classify("/system.slice/ssh.service"),
            WorkloadKind::SystemdUnit {
                unit: "ssh.service".into()
            }
        );
        assert_eq!(classify("/"), WorkloadKind::HostProcesses);
        assert_eq!(classify("/process_api/71aa"), WorkloadKind::Cgroup);
    }
}
