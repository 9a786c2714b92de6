//! Names of live containers from their runtime's metadata, where it is there and readable:
//! Docker's `config.v2.json` (`Name`; a Kubernetes container's labels under cri-dockerd),
//! Podman's `containers.json` (containers/storage), containerd's task bundles (`config.json`
//! with the CRI annotations), CRI-O's `config.json` annotations. A container is then reported
//! as `docker container web (3f1c2a9b8e7d)` or `shop/Pod/web-7d9f container app (3f1c2a9b8e7d)`
//! instead of its cgroup path.
//!
//! Every read is of a regular file at most [`MAX_FILE`] bytes (Podman's `containers.json`
//! [`MAX_INDEX`]), whose real path stays inside the runtime's state directory (a symlink that
//! leads out is not followed), opened without following a last symlink and without blocking.
//! Anything missing, unreadable or not as expected only means no name: the audit goes on.

use serde_json::Value;
use std::collections::HashMap;
use std::fs;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use watertight_model::WorkloadKind;

/// The largest per-container metadata file read.
const MAX_FILE: u64 = 1 << 20;
/// The largest containers/storage index (`containers.json`, every container of the host) read.
const MAX_INDEX: u64 = 16 << 20;
/// containerd namespaces looked into for a task bundle.
const MAX_NAMESPACES: usize = 64;

const DOCKER: &str = "var/lib/docker/containers";
/// containers/storage (Podman, CRI-O): the graph root and the run root, each with one
/// `<driver>-containers` directory per storage driver.
const STORAGE_ROOTS: [&str; 2] = ["run/containers/storage", "var/lib/containers/storage"];
const STORAGE_DRIVERS: [&str; 4] = ["overlay", "vfs", "btrfs", "zfs"];
const CONTAINERD_TASKS: &str = "run/containerd/io.containerd.runtime.v2.task";

/// Reads `rel` below `dir` (the runtime's state directory), at most `cap` bytes: `None` when
/// anything is missing, the real path leaves `dir`, it is no regular file, or it is larger.
fn read_inside(dir: &Path, rel: &Path, cap: u64) -> Option<Vec<u8>> {
    let base = fs::canonicalize(dir).ok()?;
    let real = fs::canonicalize(base.join(rel)).ok()?;
    if !real.starts_with(&base) || real == base {
        return None;
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&real)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.size() > cap {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= cap).then_some(bytes)
}

fn read_json(dir: &Path, rel: &Path, cap: u64) -> Option<Value> {
    serde_json::from_slice(&read_inside(dir, rel, cap)?).ok()
}

/// A name as printed: one line, no control characters, at most 253 characters (a DNS name's
/// length, the longest Kubernetes name).
fn clean(name: &str) -> Option<String> {
    let name = name.trim_start_matches('/');
    if name.is_empty() {
        return None;
    }
    Some(name.chars().filter(|c| !c.is_control()).take(253).collect())
}

/// `NAMESPACE/Pod/POD container NAME` from the Kubernetes names a runtime keeps (`sandbox` for
/// a pod's sandbox, which has no container name).
fn kubernetes(
    namespace: Option<&str>,
    pod: Option<&str>,
    container: Option<&str>,
) -> Option<String> {
    let pod = clean(pod?)?;
    let namespace = namespace
        .and_then(clean)
        .unwrap_or_else(|| "default".into());
    Some(match container.and_then(clean) {
        Some(c) => format!("{namespace}/Pod/{pod} container {c}"),
        None => format!("{namespace}/Pod/{pod} sandbox"),
    })
}

fn text<'a>(map: &'a Value, key: &str) -> Option<&'a str> {
    map.get(key)?.as_str()
}

/// Container names looked up under one host root (`/`, or the host's root mounted elsewhere,
/// as the DaemonSet does at `/host`); Podman's index is read once.
pub(super) struct RuntimeNames {
    root: PathBuf,
    podman: Option<HashMap<String, String>>,
}

impl RuntimeNames {
    pub(super) fn new(root: &Path) -> RuntimeNames {
        RuntimeNames {
            root: root.to_path_buf(),
            podman: None,
        }
    }

    /// The display name of the container in cgroup `path` of `kind`, with its short id; `None`
    /// for anything else, for a runtime's monitor (conmon) and for a cgroup below the
    /// container's own.
    pub(super) fn name(&mut self, path: &str, kind: &WorkloadKind) -> Option<String> {
        let (runtime, id, in_pod) = match kind {
            WorkloadKind::Container {
                runtime,
                container_id: Some(id),
            } => (runtime.as_str(), id.as_str(), false),
            WorkloadKind::KubernetesContainer {
                runtime,
                container_id: Some(id),
                ..
            } => (runtime.as_str(), id.as_str(), true),
            _ => return None,
        };
        let last = path.rsplit('/').next().unwrap_or("");
        if !last.contains(id) || last.contains("conmon") {
            return None;
        }
        let name = match (runtime, in_pod) {
            ("docker", _) => self.docker(id),
            ("podman", false) => self.podman(id).map(|n| format!("podman container {n}")),
            ("containerd", _) => self.containerd(id),
            ("cri-o", _) => self.crio(id),
            _ => None,
        }?;
        Some(format!("{name} ({})", &id[..id.len().min(12)]))
    }

    fn docker(&self, id: &str) -> Option<String> {
        let config = read_json(
            &self.root.join(DOCKER),
            &Path::new(id).join("config.v2.json"),
            MAX_FILE,
        )?;
        // cri-dockerd: the Kubernetes names are labels.
        if let Some(labels) = config.get("Config").and_then(|c| c.get("Labels")) {
            if let Some(name) = kubernetes(
                text(labels, "io.kubernetes.pod.namespace"),
                text(labels, "io.kubernetes.pod.name"),
                text(labels, "io.kubernetes.container.name"),
            ) {
                return Some(name);
            }
        }
        Some(format!(
            "docker container {}",
            clean(text(&config, "Name")?)?
        ))
    }

    fn podman(&mut self, id: &str) -> Option<String> {
        let root = &self.root;
        let index = self.podman.get_or_insert_with(|| {
            let mut names = HashMap::new();
            let graph = root.join(STORAGE_ROOTS[1]);
            for driver in STORAGE_DRIVERS {
                let dir = graph.join(format!("{driver}-containers"));
                let Some(Value::Array(list)) =
                    read_json(&dir, Path::new("containers.json"), MAX_INDEX)
                else {
                    continue;
                };
                for c in &list {
                    let name = c
                        .get("names")
                        .and_then(|n| n.get(0))
                        .and_then(Value::as_str)
                        .and_then(clean);
                    if let (Some(id), Some(name)) = (text(c, "id"), name) {
                        names.insert(id.to_string(), name);
                    }
                }
            }
            names
        });
        index.get(id).cloned()
    }

    /// A containerd task's bundle, in whichever namespace (`k8s.io`, `moby`, `default`).
    fn containerd(&self, id: &str) -> Option<String> {
        let tasks = self.root.join(CONTAINERD_TASKS);
        let namespaces = fs::read_dir(&tasks).ok()?;
        for ns in namespaces.flatten().take(MAX_NAMESPACES) {
            let rel = Path::new(&ns.file_name()).join(id).join("config.json");
            let Some(config) = read_json(&tasks, &rel, MAX_FILE) else {
                continue;
            };
            // The bundle is found: without annotations it names nothing.
            let a = config.get("annotations")?;
            return kubernetes(
                text(a, "io.kubernetes.cri.sandbox-namespace"),
                text(a, "io.kubernetes.cri.sandbox-name"),
                text(a, "io.kubernetes.cri.container-name"),
            )
            .or_else(|| {
                let name = clean(text(a, "nerdctl/name")?)?;
                Some(format!("containerd container {name}"))
            });
        }
        None
    }

    /// CRI-O keeps the pod's names as annotations of the OCI config, in the run root or the
    /// graph root of containers/storage.
    fn crio(&self, id: &str) -> Option<String> {
        let rel = Path::new(id).join("userdata").join("config.json");
        let mut dirs = STORAGE_ROOTS.iter().flat_map(|root| {
            STORAGE_DRIVERS
                .iter()
                .map(move |driver| self.root.join(root).join(format!("{driver}-containers")))
        });
        dirs.find_map(|dir| {
            let config = read_json(&dir, &rel, MAX_FILE)?;
            let a = config.get("annotations")?;
            kubernetes(
                text(a, "io.kubernetes.pod.namespace"),
                text(a, "io.kubernetes.pod.name"),
                text(a, "io.kubernetes.container.name"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::host::workload_kind::classify;
    use std::os::unix::fs::symlink;

    const STORAGE: &str = "var/lib/containers/storage/overlay-containers";
    const STORAGE_RUN: &str = "run/containers/storage/overlay-containers";
    const ID: &str = "3f1c2a9b8e7d6c5b4a3f1c2a9b8e7d6c5b4a3f1c2a9b8e7d6c5b4a3f1c2a9b8e";
    const ID3: &str = "bbbb2a9b8e7d6c5b4a3f1c2a9b8e7d6c5b4a3f1c2a9b8e7d6c5b4a3f1c2a9b8e";
    const ID2: &str = "aaaa2a9b8e7d6c5b4a3f1c2a9b8e7d6c5b4a3f1c2a9b8e7d6c5b4a3f1c2a9b8e";

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn name(root: &Path, path: &str) -> Option<String> {
        RuntimeNames::new(root).name(path, &classify(path))
    }

    #[test]
    fn names_from_each_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            &format!("{DOCKER}/{ID}/config.v2.json"),
            r#"{"ID":"x","Name":"/web","Config":{"Labels":{}}}"#,
        );
        assert_eq!(
            name(root, &format!("/system.slice/docker-{ID}.scope")).as_deref(),
            Some("docker container web (3f1c2a9b8e7d)")
        );
        write(
            root,
            &format!("{STORAGE}/containers.json"),
            &format!(r#"[{{"id":"{ID}","names":["db"]}},{{"id":"{ID2}","names":[]}}]"#),
        );
        assert_eq!(
            name(root, &format!("/libpod_parent/libpod-{ID}")).as_deref(),
            Some("podman container db (3f1c2a9b8e7d)")
        );
        // Another storage driver's index.
        write(
            root,
            "var/lib/containers/storage/vfs-containers/containers.json",
            &format!(r#"[{{"id":"{ID3}","names":["cache"]}}]"#),
        );
        assert_eq!(
            name(root, &format!("/libpod_parent/libpod-{ID3}")).as_deref(),
            Some("podman container cache (bbbb2a9b8e7d)")
        );
        // conmon is not the container; a nameless container keeps its path.
        assert_eq!(
            name(root, &format!("/libpod_parent/libpod-conmon-{ID}")),
            None
        );
        assert_eq!(name(root, &format!("/libpod_parent/libpod-{ID2}")), None);
        write(
            root,
            &format!("{CONTAINERD_TASKS}/k8s.io/{ID}/config.json"),
            r#"{"annotations":{"io.kubernetes.cri.container-name":"app",
                "io.kubernetes.cri.sandbox-name":"web-7d9f","io.kubernetes.cri.sandbox-namespace":"shop"}}"#,
        );
        let pod = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1a2b3c4d_1111_2222_3333_444455556666.slice";
        assert_eq!(
            name(root, &format!("{pod}/cri-containerd-{ID}.scope")).as_deref(),
            Some("shop/Pod/web-7d9f container app (3f1c2a9b8e7d)")
        );
        write(
            root,
            &format!("{STORAGE_RUN}/{ID2}/userdata/config.json"),
            r#"{"annotations":{"io.kubernetes.container.name":"side",
                "io.kubernetes.pod.name":"p","io.kubernetes.pod.namespace":"ns"}}"#,
        );
        assert_eq!(
            name(root, &format!("{pod}/crio-{ID2}.scope")).as_deref(),
            Some("ns/Pod/p container side (aaaa2a9b8e7d)")
        );
        // A name cannot add lines to a table.
        write(
            root,
            &format!("{DOCKER}/{ID2}/config.v2.json"),
            r#"{"Name":"/evil\nCRITICAL fake"}"#,
        );
        assert_eq!(
            name(root, &format!("/docker/{ID2}")).as_deref(),
            Some("docker container evilCRITICAL fake (aaaa2a9b8e7d)")
        );
    }

    #[test]
    fn no_name_without_readable_metadata_inside_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let docker = format!("/docker/{ID}");
        // Nothing there, or not JSON.
        assert_eq!(name(root, &docker), None);
        write(root, &format!("{DOCKER}/{ID}/config.v2.json"), "{not json");
        assert_eq!(name(root, &docker), None);
        // A symlink out of the runtime's directory is not followed.
        write(root, "elsewhere/config.v2.json", r#"{"Name":"/outside"}"#);
        let link = root.join(format!("{DOCKER}/{ID}/config.v2.json"));
        fs::remove_file(&link).unwrap();
        symlink(root.join("elsewhere/config.v2.json"), &link).unwrap();
        assert_eq!(name(root, &docker), None);
        // A symlink inside it is.
        write(
            root,
            &format!("{DOCKER}/real.json"),
            r#"{"Name":"/inside"}"#,
        );
        fs::remove_file(&link).unwrap();
        symlink(root.join(format!("{DOCKER}/real.json")), &link).unwrap();
        assert_eq!(
            name(root, &docker).as_deref(),
            Some("docker container inside (3f1c2a9b8e7d)")
        );
        // Too large, or no regular file (a FIFO would block a plain open).
        fs::remove_file(&link).unwrap();
        let big = format!(
            r#"{{"Name":"/big","x":"{}"}}"#,
            "a".repeat(MAX_FILE as usize)
        );
        fs::write(&link, big).unwrap();
        assert_eq!(name(root, &docker), None);
        fs::remove_file(&link).unwrap();
        let status = std::process::Command::new("mkfifo").arg(&link).status();
        if status.is_ok_and(|s| s.success()) {
            assert_eq!(name(root, &docker), None);
        }
    }
}
