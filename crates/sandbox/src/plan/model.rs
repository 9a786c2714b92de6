//! The plan rendered as the auditor's model (`watertight_model::Workload`, origin
//! `SelfDescribed`): what watertight applies is checked by the very rules `watertight audit`
//! applies to containers and pods (`watertight profile explain`), and compared with what the
//! auditor measures of a live sandbox from /proc.

use std::path::{Path, PathBuf};

use watertight_model::{
    CapSet, Capabilities, IdMapping, Mount, NamespaceKind, NamespaceState, Namespaces, Propagation,
    Seccomp, SeccompMode, Subject, User, Workload, WorkloadKind, DEFAULT_DEVICE_NODES,
    PROC_MASKED_PATHS,
};
use watertight_sys::mount::ATTR_RDONLY;

use super::Plan;
use crate::layers::bpf;
use crate::layers::mount::{MountOp, STAGE};

/// The token `--bpf-observe` gives, as the auditor's model has it (helpers are not vetted:
/// docs/bpf-observe.md).
fn bpf_token() -> watertight_model::BpfToken {
    let option = |key: &str| -> Vec<String> {
        bpf::DELEGATION
            .iter()
            .find(|(k, _)| k.to_bytes() == key.as_bytes())
            .map(|(_, v)| v.to_string_lossy().split(':').map(String::from).collect())
            .unwrap_or_default()
    };
    watertight_model::BpfToken {
        mount: bpf::MOUNT_POINT.into(),
        commands: option("delegate_cmds"),
        maps: option("delegate_maps"),
        programs: option("delegate_progs"),
        attach_types: option("delegate_attachs"),
        helpers_vetted: bpf::HELPERS_VETTED,
    }
}

impl Plan {
    /// This plan as the auditor's model of one workload with one subject (the program).
    pub fn workload(&self) -> Workload {
        let p = &self.profile;
        let ns = &p.namespaces;
        let mut namespaces = Namespaces::default();
        let state = |own: bool| {
            if own {
                NamespaceState::Isolated
            } else {
                NamespaceState::Shared
            }
        };
        for kind in [NamespaceKind::User, NamespaceKind::Pid, NamespaceKind::Mnt] {
            namespaces.set(kind, NamespaceState::Isolated);
        }
        namespaces.set(NamespaceKind::Net, state(ns.net));
        namespaces.set(NamespaceKind::Uts, state(ns.uts));
        namespaces.set(NamespaceKind::Ipc, state(ns.ipc));
        namespaces.set(NamespaceKind::Cgroup, state(ns.cgroup));
        // No time namespace: the sandbox reads the host's clocks (a documented gap).
        namespaces.set(NamespaceKind::Time, NamespaceState::Shared);

        let (mut mounts, masked) = self.rendered_mounts();
        let mut kept = CapSet::default();
        if p.bpf.observe {
            mounts.push(Mount {
                target: bpf::MOUNT_POINT.into(),
                source: "bpf".into(),
                host_path: None,
                fs_type: Some("bpf".into()),
                read_only: true,
                propagation: Propagation::Private,
            });
            (0..64u8)
                .filter(|c| crate::layers::bpf::KEPT_CAPABILITIES & (1u64 << c) != 0)
                .for_each(|c| kept.insert(c));
        }
        let subject = Subject {
            name: String::from_utf8_lossy(self.argv[0].as_bytes()).into_owned(),
            pid: None,
            namespaces,
            privileged: false,
            // Every set empty: pid 1 clears them all before the program exists; with
            // --bpf-observe but for CAP_BPF and CAP_PERFMON of the sandbox's own user
            // namespace (the token asks for them there; on the host they count for nothing).
            capabilities: Capabilities {
                effective: Some(kept),
                permitted: Some(kept),
                bounding: Some(kept),
                ..Capabilities::default()
            },
            bpf_token: p.bpf.observe.then(bpf_token),
            seccomp: Seccomp {
                mode: SeccompMode::Filter,
                profile: Some(if p.seccomp.profile.is_empty() {
                    "watertight-default".into()
                } else {
                    p.seccomp.profile.clone()
                }),
            },
            no_new_privs: Some(true),
            lsm: None,
            user: User {
                uid: Some(p.identity.uid),
                gid: Some(p.identity.gid),
                run_as_non_root: Some(p.identity.uid != 0),
            },
            // One id of the slot range, never host root (validated: host_id_base > 0).
            uid_map: Some(vec![IdMapping {
                inside: p.identity.uid,
                outside: p.identity.host_id_base,
                count: p.identity.slots,
            }]),
            mounts,
            devices: Vec::new(),
            host_ports: Vec::new(),
            sysctls: Vec::new(),
            masked_paths: Some(masked),
            readonly_rootfs: Some(p.root.source == "host" || !p.root.writable),
            service_account_token: None,
            cgroup_path: None,
            readonly_paths: Some(
                p.proc
                    .read_only
                    .iter()
                    .map(|r| r.to_string_lossy().into_owned())
                    .collect(),
            ),
            ..Subject::default()
        };
        Workload {
            plan: None,
            id: format!("watertight:{}", p.name),
            kind: WorkloadKind::WatertightSandbox,
            origin: watertight_model::Origin::SelfDescribed {
                tool: format!("watertight {}", env!("CARGO_PKG_VERSION")),
            },
            cgroup_path: None,
            subjects: vec![subject],
        }
    }

    /// The mounts the program sees (paths inside the sandbox) and the paths masked in them.
    fn rendered_mounts(&self) -> (Vec<Mount>, Vec<String>) {
        let root = self
            .mounts
            .ops
            .iter()
            .find_map(|op| match op {
                MountOp::PivotRoot { new_root } => Some(new_root.clone()),
                _ => None,
            })
            .unwrap_or_else(|| PathBuf::from(STAGE));
        let inside = |p: &Path| -> Option<String> {
            let rest = p.strip_prefix(&root).ok()?;
            Some(Path::new("/").join(rest).to_string_lossy().into_owned())
        };
        let mut mounts = Vec::new();
        let mut masked = Vec::new();
        let private = Propagation::Private; // every mount is made private before pivot_root
        for op in &self.mounts.ops {
            match op {
                MountOp::Overlay { target, .. } if *target == root => mounts.push(Mount {
                    target: "/".into(),
                    source: "overlay".into(),
                    host_path: Some(self.profile.root.source.clone()),
                    fs_type: Some("overlay".into()),
                    read_only: false,
                    propagation: private,
                }),
                MountOp::Tmpfs { target, flags, .. } => {
                    let read_only = flags.contains(nix::mount::MsFlags::MS_RDONLY);
                    match inside(target) {
                        // An empty read-only tmpfs over a directory hides it.
                        Some(t) if read_only && t != "/" => masked.push(t),
                        Some(t) => mounts.push(Mount {
                            target: t.clone(),
                            source: "tmpfs".into(),
                            host_path: None,
                            fs_type: Some("tmpfs".into()),
                            read_only: read_only || t == "/",
                            propagation: private,
                        }),
                        None => {}
                    }
                }
                MountOp::Proc { target } => mounts.extend(inside(target).map(|t| Mount {
                    target: t,
                    source: "proc".into(),
                    host_path: None,
                    fs_type: Some("proc".into()),
                    read_only: false,
                    propagation: private,
                })),
                MountOp::Devpts { target, .. } => mounts.extend(inside(target).map(|t| Mount {
                    target: t,
                    source: "devpts".into(),
                    host_path: None,
                    fs_type: Some("devpts".into()),
                    read_only: false,
                    propagation: private,
                })),
                MountOp::Bind {
                    source,
                    target,
                    attrs,
                } => {
                    let Some(t) = inside(target) else { continue };
                    if source == Path::new("/dev/null") {
                        masked.push(t); // a file mask
                    } else if DEFAULT_DEVICE_NODES.contains(&t.as_str()) {
                        // the default device nodes: no host device
                    } else if source.starts_with(STAGE) {
                        // a read-only rebind of a path already in the sandbox (/proc/sys ...)
                    } else {
                        mounts.push(Mount {
                            target: t,
                            source: source.to_string_lossy().into_owned(),
                            host_path: Some(source.to_string_lossy().into_owned()),
                            fs_type: None,
                            read_only: attrs & ATTR_RDONLY != 0,
                            propagation: private,
                        });
                    }
                }
                _ => {}
            }
        }
        // A path the profile hides that this host lacks is not there to see either.
        let p = &self.profile;
        let hidden = p.proc.masked.iter().chain(&p.root.hide);
        masked.extend(hidden.map(|h| h.to_string_lossy().into_owned()));
        // No sysfs is mounted: what the runtimes mask under /sys (firmware tables) is not
        // there, unless a bind the caller asked for puts a host tree over it.
        for path in PROC_MASKED_PATHS.iter().filter(|p| p.starts_with("/sys/")) {
            let under = |t: &str| t != "/" && (*path == t || path.starts_with(&format!("{t}/")));
            if !mounts.iter().any(|m| under(m.target.as_str())) {
                masked.push(path.to_string());
            }
        }
        masked.sort();
        masked.dedup();
        (mounts, masked)
    }
}
