//! The published entry of a running container (`watertight_model::RunningContainer` under
//! [`RUNNING_CONTAINERS_DIR`]), for `watertight audit host`: which process is its init and
//! which floor it was started under.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use watertight_model::{
    Mount, Origin, Propagation, RunningContainer, SeccompMode, Workload, WorkloadKind,
    RUNNING_CONTAINERS_DIR,
};

use crate::error::Error;
use crate::harden::Hardening;

/// The runtime's name in published workloads.
pub const RUNTIME_NAME: &str = "watertight-runc";

/// `sha256:<hex>` of a container's plan: its config.json as the runtime applies it (after
/// `harden`), serialized with object keys sorted, so every restriction the floor added (and
/// every field of the config) changes it, and the same config always gives the same digest
/// whatever order its maps and sets were built in.
pub fn plan_digest(spec: &Spec) -> String {
    // serde_json's Value keeps objects in a BTreeMap (no `preserve_order`): keys come out sorted.
    let mut value = serde_json::to_value(spec).expect("an oci-spec Spec serializes");
    // oci-spec holds the capability sets in HashSets, which serialize in a random order; every
    // other list of the config is ordered by meaning and is kept as it is.
    if let Some(sets) = value
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    {
        for set in sets.values_mut() {
            if let Some(list) = set.as_array_mut() {
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    let canonical = serde_json::to_vec(&value).expect("a JSON value serializes");
    crate::sha256_tagged(&canonical)
}

impl Hardening {
    /// The entry to publish for container `container_id` whose init process is `init_pid`
    /// (host pid namespace), created from `bundle` with the hardened `spec`.
    pub fn running_container(
        &self,
        container_id: &str,
        init_pid: u32,
        bundle: &Path,
        spec: &Spec,
        plan_digest: Option<String>,
    ) -> Result<RunningContainer, Error> {
        check_id(container_id)?;
        let init_start_time =
            process_start_time(Path::new("/proc"), init_pid).map_err(|message| {
                Error::InitProcess {
                    container_id: container_id.into(),
                    pid: init_pid,
                    message,
                }
            })?;
        Ok(RunningContainer {
            container_id: container_id.into(),
            init_pid,
            init_start_time,
            bundle: bundle.into(),
            floor_digest: self.floor_digest.clone(),
            floor_version: self.floor_version.clone(),
            floor_added: self.added_strings(),
            plan_digest,
            workload: self.workload(container_id, bundle, spec),
        })
    }

    /// The hardened config as the auditor's model (the audit crate's OCI source), with what the
    /// runtime adds to it: the root file system as a mount (so `plan-drift` compares it) and
    /// the floor's filter.
    pub fn workload(&self, container_id: &str, bundle: &Path, spec: &Spec) -> Workload {
        let mut w =
            watertight_audit::sources::oci::spec_to_workload(spec, &bundle.join("config.json"));
        w.id = container_id.into();
        w.kind = WorkloadKind::Container {
            runtime: RUNTIME_NAME.into(),
            container_id: Some(container_id.into()),
        };
        w.origin = Origin::SelfDescribed {
            tool: RUNTIME_NAME.into(),
        };
        if let Some(root) = spec.root() {
            // What the runtime leaves "/" as (runc's model): rslave unless
            // linux.rootfsPropagation says otherwise.
            let root_propagation = match spec
                .linux()
                .as_ref()
                .and_then(|l| l.rootfs_propagation().as_deref())
            {
                Some("shared" | "rshared") => Propagation::Bidirectional,
                Some("private" | "rprivate") => Propagation::Private,
                Some("unbindable" | "runbindable") => Propagation::Unbindable,
                _ => Propagation::HostToContainer,
            };
            let path = if root.path().is_absolute() {
                root.path().clone()
            } else {
                bundle.join(root.path())
            };
            for subject in &mut w.subjects {
                subject.mounts.insert(
                    0,
                    Mount {
                        target: "/".into(),
                        source: path.display().to_string(),
                        host_path: Some(path.display().to_string()),
                        fs_type: None,
                        read_only: root.readonly().unwrap_or(false),
                        propagation: root_propagation,
                    },
                );
            }
        }
        if spec.process().as_ref().and_then(|p| p.terminal()) == Some(true) {
            // The runtime binds the container's terminal (a host pty) at /dev/console, writable:
            // planned, not drift.
            for subject in &mut w.subjects {
                subject.mounts.push(Mount {
                    target: "/dev/console".into(),
                    source: "devpts".into(),
                    host_path: None,
                    fs_type: Some("devpts".into()),
                    read_only: false,
                    propagation: Propagation::Private,
                });
            }
        }
        if self.seccomp.is_some() {
            for subject in &mut w.subjects {
                subject.seccomp.mode = SeccompMode::Filter;
                let own = subject.seccomp.profile.take();
                subject.seccomp.profile = Some(match own {
                    Some(own) => format!("{own}; then the watertight floor {}", self.floor_digest),
                    None => format!("the watertight floor {}", self.floor_digest),
                });
            }
        }
        w
    }
}

/// The start time of `pid` (`/proc/<pid>/stat` field 22, clock ticks after boot) under the
/// procfs at `proc_root`.
pub fn process_start_time(proc_root: &Path, pid: u32) -> Result<u64, String> {
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat"))
        .map_err(|e| e.to_string())?;
    parse_start_time(&text).ok_or_else(|| "no start time in it".to_string())
}

/// Field 22 of a stat line; the command (field 2) may hold spaces and parentheses, so fields
/// are counted after its last `)`.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // Field 3 is the first after the command: field 22 is the 20th of the rest.
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// A container id names its own file: not empty, no `/`, no leading `.` (the temporary files'
/// prefix), at most 255 bytes with the suffix.
pub(crate) fn check_id(id: &str) -> Result<(), Error> {
    let reason = if id.is_empty() {
        "it is empty"
    } else if id.contains('/') || id.contains('\0') {
        "it contains / or NUL"
    } else if id.starts_with('.') {
        "it starts with a dot"
    } else if id.len() > 200 {
        "it is longer than 200 bytes"
    } else {
        return Ok(());
    };
    Err(Error::ContainerId {
        id: id.into(),
        reason,
    })
}

/// Publishes `entry` under [`RUNNING_CONTAINERS_DIR`]; returns the file's path.
pub fn publish(entry: &RunningContainer) -> Result<PathBuf, Error> {
    publish_in(Path::new(RUNNING_CONTAINERS_DIR), entry)
}

/// Publishes `entry` under `dir` (made if absent, root's only), removing entries whose init
/// process is gone first. Whole or absent for a reader: our own state file, written to a
/// temporary name and renamed.
pub fn publish_in(dir: &Path, entry: &RunningContainer) -> Result<PathBuf, Error> {
    check_id(&entry.container_id)?;
    let path = dir.join(format!("{}.json", entry.container_id));
    let failed = |source| Error::Publish {
        path: path.clone(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(failed)?;
    remove_stale(dir, Path::new("/proc"));
    let json = serde_json::to_vec_pretty(entry)
        .map_err(|e| failed(std::io::Error::other(e.to_string())))?;
    let partial = dir.join(format!(".{}.json.partial", entry.container_id));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)?;
        f.write_all(&json)?;
        f.sync_data()?;
        std::fs::rename(&partial, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        failed(e)
    })?;
    Ok(path)
}

/// Removes the published entry of `container_id` (absent already is fine: `delete --force`
/// after a failed create).
pub fn unpublish(container_id: &str) -> Result<(), Error> {
    unpublish_in(Path::new(RUNNING_CONTAINERS_DIR), container_id)
}

/// [`unpublish`] under `dir`.
pub fn unpublish_in(dir: &Path, container_id: &str) -> Result<(), Error> {
    check_id(container_id)?;
    let path = dir.join(format!("{container_id}.json"));
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Unpublish { path, source }),
    }
}

/// The published entry `path` holds, if its init process still runs (same pid, same start
/// time) under the procfs at `proc_root`.
pub fn read_live(path: &Path, proc_root: &Path) -> Option<RunningContainer> {
    use std::io::Read;
    let mut text = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(4 << 20)
        .read_to_end(&mut text)
        .ok()?;
    let entry: RunningContainer = serde_json::from_slice(&text).ok()?;
    (process_start_time(proc_root, entry.init_pid).ok()? == entry.init_start_time).then_some(entry)
}

/// Removes entries whose init process is gone (a runtime killed before `delete`), and
/// temporary files of dead writers' (older than a minute).
fn remove_stale(dir: &Path, proc_root: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let stale = if name.starts_with('.') && name.ends_with(".json.partial") {
            e.metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 60)
        } else if name.ends_with(".json") {
            // Unreadable or malformed entries are left for an operator to see.
            std::fs::read(e.path())
                .ok()
                .and_then(|t| serde_json::from_slice::<RunningContainer>(&t).ok())
                .is_some_and(|entry| {
                    process_start_time(proc_root, entry.init_pid).ok()
                        != Some(entry.init_start_time)
                })
        } else {
            false
        };
        if stale {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_counted_after_the_command() {
        let stat =
            "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time("4242 (x) S 1"), None);
        let me = process_start_time(Path::new("/proc"), std::process::id()).unwrap();
        assert!(me > 0);
    }

    #[test]
    fn ids_that_cannot_name_their_own_file_are_refused() {
        for bad in ["", "a/b", ".hidden", "..", &"x".repeat(201)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        for good in ["abc", "a.b-c_d+e", "0123456789abcdef"] {
            assert!(check_id(good).is_ok(), "{good:?}");
        }
    }
}
