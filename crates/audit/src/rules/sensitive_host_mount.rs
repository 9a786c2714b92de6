//! `sensitive-host-mount`: the workload sees a sensitive host path (the root filesystem, /proc,
//! /sys, /dev, /etc, kubelet or runtime state, a container runtime's socket).

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};
use watertight_model::{NamespaceKind, NamespaceState, DEFAULT_DEVICE_NODES};

pub const INFO: RuleInfo = RuleInfo {
    id: "sensitive-host-mount",
    severity: Severity::Critical,
    title: "Mounts a sensitive host path",
    help: "Remove the host mount; use a volume, a projected secret or a narrower read-only path.",
};

/// Control sockets of container runtimes: whoever reaches one controls every container.
pub const RUNTIME_SOCKETS: [&str; 13] = [
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/run/crio/crio.sock",
    "/var/run/cri-dockerd.sock",
    "/run/cri-dockerd.sock",
    "/run/podman/podman.sock",
    "/var/run/podman/podman.sock",
    "/run/k3s/containerd/containerd.sock",
    "/var/run/dockershim.sock",
    "/run/dockershim.sock",
];

/// Host trees whose contents (any part of them) give away the host.
const SENSITIVE_TREES: [(&str, Severity); 10] = [
    ("/proc", Severity::Critical),
    ("/sys", Severity::High),
    ("/dev", Severity::High),
    ("/etc", Severity::High),
    ("/boot", Severity::High),
    ("/root", Severity::High),
    // Every pod's volumes on the node: its secrets, service-account tokens and config maps
    // (`/var/lib/kubelet/pods/<uid>/volumes/...`), and the kubelet's own client certificate
    // (`/var/lib/kubelet/pki`). Writable, it also plants files in other pods' volumes:
    // critical; read-only, high (every secret readable).
    ("/var/lib/kubelet", Severity::Critical),
    ("/var/lib/docker", Severity::High),
    ("/var/lib/containerd", Severity::High),
    ("/var/log", Severity::Medium),
];

/// What in the host's /etc is secret to other users (password hashes, sudo rules, host keys,
/// TLS private keys): with each masked, a read-only /etc is a low finding.
pub use watertight_model::ETC_CREDENTIALS;

/// Subtrees that runtimes create per workload (its own hosts file, secrets, token): mounting
/// them is how containers get their own files, not a leak.
const PER_WORKLOAD_TREES: [&str; 5] = [
    "/var/lib/kubelet/pods/",
    "/var/lib/docker/containers/",
    "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/",
    "/var/lib/docker/volumes/",
    "/var/lib/docker/overlay2/",
];

fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn is_under(path: &str, tree: &str) -> bool {
    path == tree || (path.starts_with(tree) && path.as_bytes().get(tree.len()) == Some(&b'/'))
}

/// How sensitive a host path is, if at all.
pub fn sensitivity(host_path: &str) -> Option<Severity> {
    let path = normalize(host_path);
    if path == "/" {
        return Some(Severity::Critical);
    }
    // The socket itself, or a directory holding it (/var/run, /run/containerd, ...).
    if RUNTIME_SOCKETS.iter().any(|s| is_under(s, &path)) {
        return Some(Severity::Critical);
    }
    if PER_WORKLOAD_TREES
        .iter()
        .any(|t| path.starts_with(t) && path.len() > t.len())
    {
        return None;
    }
    SENSITIVE_TREES
        .iter()
        // /var exposes /var/lib/kubelet: a parent of a sensitive tree counts too.
        .filter(|(tree, _)| is_under(&path, tree) || is_under(tree, &path))
        .map(|(_, s)| *s)
        .max()
}

/// Host device nodes that hold no host data and behave the same at any path: the OCI
/// runtime-spec's default devices and `/dev/ptmx` (the pty multiplexer). A runtime in a user
/// namespace (Podman rootless, bubblewrap, `watertight run`) cannot mknod them and binds the
/// host's nodes instead, and `/dev/null` bound over a file is how every runtime masks it (OCI
/// `maskedPaths`). Reading or writing them changes no host file: not a host path exposed.
/// (The host's `/dev/pts` is not here: it holds the host's terminals; a devpts instance of the
/// workload's own has no host path.)
fn is_safe_device_node(host_path: &str) -> bool {
    DEFAULT_DEVICE_NODES.contains(&host_path) || host_path == "/dev/ptmx"
}

/// The host's IPC objects as files: with the host IPC namespace they are that namespace's
/// (its finding names them), not a second finding.
pub const HOST_IPC_MOUNTS: [&str; 2] = ["/dev/shm", "/dev/mqueue"];

/// `path` below `base` (or equal): the rest, starting with `/` or empty.
fn rest_below<'a>(path: &'a str, base: &str) -> Option<&'a str> {
    if base == "/" {
        return Some(path);
    }
    let rest = path.strip_prefix(base)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if !cx.expects_isolation() {
        return;
    }
    // Mounts in target order, so a tree's top comes before its submounts.
    let mut mounts: Vec<_> = cx
        .subject
        .mounts
        .iter()
        .filter_map(|m| m.host_path.as_ref().map(|h| (m, normalize(h))))
        .collect();
    mounts.sort_by_key(|m| m.0.target.len());
    // (host path, target, index into `found`) of reported trees.
    let mut trees: Vec<(String, String, usize)> = Vec::new();
    let mut found: Vec<Finding> = Vec::new();
    for (mount, host_path) in mounts {
        if is_safe_device_node(&host_path) {
            continue;
        }
        if HOST_IPC_MOUNTS.contains(&host_path.as_str())
            && cx.subject.namespaces.get(NamespaceKind::Ipc) == NamespaceState::Shared
        {
            continue; // part of shared-host-namespace[ipc]
        }
        let Some(mut severity) = sensitivity(&host_path) else {
            continue;
        };
        let is_socket = RUNTIME_SOCKETS.iter().any(|s| is_under(s, &host_path));
        // Read-only helps, except for a socket: connecting needs no write permission on the mount.
        if mount.read_only && !is_socket {
            severity = severity.lowered();
        }
        // The host's /etc read-only with its credentials masked (as `watertight run` shows it,
        // for the host's users, libraries' configuration and certificates): what is left is
        // what any local user of the host may read.
        let credentials_masked = host_path == "/etc"
            && mount.read_only
            && ETC_CREDENTIALS.iter().all(|c| {
                let inside = format!("{}/{c}", normalize(&mount.target).trim_end_matches('/'));
                cx.subject
                    .masked_paths
                    .as_ref()
                    .is_some_and(|m| m.iter().any(|p| normalize(p) == inside))
            });
        if credentials_masked {
            severity = Severity::Low;
        }
        // A submount that continues an already reported host tree at the same relative place
        // (the host's own /proc under an exposed host /) is part of that finding.
        let target = normalize(&mount.target);
        let parent = trees.iter().find(|(h, t, _)| {
            matches!(
                (rest_below(&host_path, h), rest_below(&target, t)),
                (Some(a), Some(b)) if a == b
            )
        });
        if let Some((_, _, idx)) = parent {
            let f = &mut found[*idx];
            f.severity = f.severity.max(severity);
            f.paths.push(host_path.clone());
            continue;
        }
        let access = if credentials_masked {
            "read-only, its credentials masked"
        } else if mount.read_only {
            "read-only"
        } else {
            "read-write"
        };
        let what = if is_socket {
            " (a container runtime socket: control of every container on the node)"
        } else {
            ""
        };
        let mut f = cx.finding(
            &INFO,
            severity,
            format!(
                "mounts host path {host_path} at {} {access}{what}",
                mount.target
            ),
        );
        f.paths = vec![host_path.clone(), mount.target.clone()];
        trees.push((host_path, target, found.len()));
        found.push(f);
    }
    for mut f in found {
        if f.paths.len() > 2 {
            f.message.push_str(&format!(
                ", with {} sensitive host submounts",
                f.paths.len() - 2
            ));
        }
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::*;
    use watertight_model::Mount;

    #[test]
    fn sensitivity_of_paths() {
        assert_eq!(sensitivity("/"), Some(Severity::Critical));
        assert_eq!(
            sensitivity("/var/run/docker.sock"),
            Some(Severity::Critical)
        );
        assert_eq!(sensitivity("/var/run"), Some(Severity::Critical));
        assert_eq!(sensitivity("/var/run/"), Some(Severity::Critical));
        assert_eq!(sensitivity("/etc/ssl"), Some(Severity::High));
        assert_eq!(sensitivity("/var"), Some(Severity::Critical));
        assert_eq!(sensitivity("/var/lib/kubelet"), Some(Severity::Critical));
        assert_eq!(
            sensitivity("/var/lib/kubelet/pods"),
            Some(Severity::Critical)
        );
        assert_eq!(
            sensitivity("/var/lib/kubelet/pods/"),
            Some(Severity::Critical)
        );
        assert_eq!(sensitivity("/var/lib/docker"), Some(Severity::High));
        assert_eq!(sensitivity("/var/lib/kubelet/pods/u1/volumes/x"), None);
        assert_eq!(sensitivity("/var/lib/docker/containers/abc/hosts"), None);
        assert_eq!(sensitivity("/data"), None);
        assert_eq!(sensitivity("/etcd"), None);
        assert_eq!(sensitivity("/procfs"), None);
    }

    #[test]
    fn read_only_lowers_except_sockets() {
        let (w, mut s) = isolated_container();
        s.mounts = vec![
            Mount {
                target: "/host-etc".into(),
                source: "/etc".into(),
                host_path: Some("/etc".into()),
                read_only: true,
                ..Mount::default()
            },
            Mount {
                target: "/var/run/docker.sock".into(),
                source: "/var/run/docker.sock".into(),
                host_path: Some("/var/run/docker.sock".into()),
                read_only: true,
                ..Mount::default()
            },
        ];
        let f = run(&w, s);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].severity, Severity::Medium);
        assert_eq!(f[1].severity, Severity::Critical);
    }

    #[test]
    fn read_only_etc_is_low_only_with_every_credential_masked() {
        let (w, mut s) = isolated_container();
        s.mounts = vec![Mount {
            target: "/etc".into(),
            source: "/etc".into(),
            host_path: Some("/etc".into()),
            read_only: true,
            ..Mount::default()
        }];
        let all: Vec<String> = ETC_CREDENTIALS
            .iter()
            .map(|c| format!("/etc/{c}"))
            .collect();
        s.masked_paths = Some(all.clone());
        let f = run(&w, s.clone());
        assert_eq!(f[0].severity, Severity::Low, "{}", f[0].message);
        assert!(f[0].message.contains("credentials masked"));
        // One left visible (the host's ssh keys): medium again.
        s.masked_paths = Some(all.into_iter().filter(|p| p != "/etc/ssh").collect());
        assert_eq!(run(&w, s.clone())[0].severity, Severity::Medium);
        // Writable: high whatever is masked.
        s.mounts[0].read_only = false;
        assert_eq!(run(&w, s)[0].severity, Severity::High);
    }

    fn mount(host: &str, target: &str, read_only: bool) -> Mount {
        Mount {
            target: target.into(),
            source: host.into(),
            host_path: Some(host.into()),
            read_only,
            ..Mount::default()
        }
    }

    #[test]
    fn writable_kubelet_pods_are_critical_read_only_high() {
        let (w, mut s) = isolated_container();
        s.mounts = vec![mount("/var/lib/kubelet/pods", "/pods", false)];
        assert_eq!(run(&w, s.clone())[0].severity, Severity::Critical);
        s.mounts[0].read_only = true;
        assert_eq!(run(&w, s.clone())[0].severity, Severity::High);
        // One pod's own directory is how it gets its volumes: no finding.
        s.mounts = vec![mount("/var/lib/kubelet/pods/u1/volumes/x", "/x", false)];
        assert_eq!(run(&w, s), vec![]);
    }

    #[test]
    fn default_device_nodes_and_dev_null_masks_are_not_host_paths() {
        let (w, mut s) = isolated_container();
        // What a runtime in a user namespace binds (Podman rootless, bubblewrap, watertight).
        s.mounts = ["null", "zero", "full", "random", "urandom", "tty", "ptmx"]
            .iter()
            .map(|d| mount(&format!("/dev/{d}"), &format!("/dev/{d}"), false))
            .collect();
        // Masks: /dev/null over a file.
        s.mounts.push(mount("/dev/null", "/proc/kcore", false));
        s.mounts.push(mount("/dev/null", "/etc/shadow", false));
        assert_eq!(run(&w, s.clone()), vec![]);
        // Any other host device node, or the host's terminals, still is.
        s.mounts.push(mount("/dev/sda", "/dev/sda", false));
        s.mounts.push(mount("/dev/pts", "/dev/pts", false));
        let f = run(&w, s);
        assert_eq!(f.len(), 2, "{f:#?}");
        assert!(f.iter().all(|f| f.severity == Severity::High));
    }

    #[test]
    fn host_dev_shm_is_the_ipc_finding_with_the_host_ipc_namespace() {
        let (w, mut s) = isolated_container();
        s.mounts = vec![mount("/dev/shm", "/dev/shm", false)];
        // Own IPC namespace but the host's /dev/shm: a channel to the host, reported here.
        let f = run(&w, s.clone());
        assert_eq!(rules(&f), vec!["sensitive-host-mount"]);
        // The host's IPC namespace: one finding, the namespace's, naming /dev/shm.
        s.namespaces.set(NamespaceKind::Ipc, NamespaceState::Shared);
        let f = run(&w, s);
        assert_eq!(rules(&f), vec!["shared-host-namespace"], "{f:#?}");
        assert!(f[0].message.contains("/dev/shm"), "{}", f[0].message);
        assert_eq!(f[0].paths, vec!["/dev/shm"]);
    }
}
