//! The BPF exec gate: inside one cgroup v2 subtree, SIGKILL any task that executes or maps as code
//! a file whose `(dev, ino, generation)` is not in the verified set, and report it.
//!
//! Programs (bpf/exec_gate.bpf.c): `wt_exec` (tp_btf/sched_process_exec), `wt_sys_enter`
//! (tp_btf/sys_enter: mmap/mprotect/pkey_mprotect with PROT_EXEC), `wt_collect` (iter/task_file,
//! run once at attach to read the kernel's own keys for the verified files). Maps: `wt_config`,
//! `wt_allowed`, `wt_events` (ring buffer). Dropping the gate closes every link, program and map
//! (no bpffs pins), so nothing stays in the kernel.

mod cgroup;
mod event;
pub(crate) mod object;

pub use event::{ExecEvent, ExecWhat};

use crate::manifest::verify::VerifiedTree;
use crate::{Error, Result};
use libbpf_rs::{Link, MapCore, MapFlags, Object, RingBuffer, RingBufferBuilder};
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many verified files are held open at once while their keys are read.
const OPEN_BATCH: usize = 256;
/// Size of `struct wt_fd_key` written by the iterator.
const FD_KEY_SIZE: usize = 48;

/// A loaded and attached exec gate. Drop detaches and unloads everything.
pub struct ExecGate {
    // Field order is drop order: stop reading events, detach, then free programs and maps.
    ring: RingBuffer<'static>,
    // Held only for their Drop: closing the links detaches, closing the object frees programs
    // and maps.
    _links: Vec<Link>,
    _object: Object,
    events: Arc<Mutex<Vec<ExecEvent>>>,
    cgroup_id: u64,
    allowed_keys: usize,
}

impl std::fmt::Debug for ExecGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecGate")
            .field("cgroup_id", &self.cgroup_id)
            .field("allowed_keys", &self.allowed_keys)
            .finish()
    }
}

/// One key as the kernel sees it: (`s_dev`, `i_ino`, `i_generation`), and the inode's change
/// time (the allowed map's value: a verified inode whose ctime moved was rewritten).
#[derive(Debug, Clone, Copy)]
struct KernelKey {
    dev: u32,
    ino: u64,
    generation: u32,
    ctime: (i64, u32),
}

impl ExecGate {
    /// Gates the cgroup v2 with id `cgroup_v2_id` (the inode number of its directory) and all
    /// its descendants, allowing exactly the files of `tree`.
    pub fn attach(cgroup_v2_id: u64, tree: &VerifiedTree) -> Result<ExecGate> {
        let dir = cgroup::find_by_id(cgroup_v2_id)?;
        Self::attach_to_cgroup_dir(&dir, tree)
    }

    /// Like [`ExecGate::attach`], naming the cgroup by its directory in the cgroup2 mount.
    pub fn attach_to_cgroup_dir(cgroup_dir: &Path, tree: &VerifiedTree) -> Result<ExecGate> {
        let (cgroup_id, level) = cgroup::id_and_level(cgroup_dir)?;
        if level == 0 {
            return Err(Error::Cgroup {
                what: cgroup_dir.display().to_string(),
                reason: "is the cgroup2 root; gating it would gate the whole host: pass the sandbox's own cgroup".into(),
            });
        }
        let mut open = object::open(object::EXEC_GATE_OBJECT, "open object")?;
        // Room for the tree four times over: sparse hash map, plus a second view of the same files
        // added with `allow_tree` (overlayfs: merged and lower); 64 is the floor.
        let capacity = (tree.files.len() * 4).max(64) as u32;
        if let Some(mut map) = open.maps_mut().find(|m| m.name() == "wt_allowed") {
            map.set_max_entries(capacity)
                .map_err(|e| object::bpf_error("size wt_allowed", e))?;
        }
        let object = object::load(open, "load programs (verifier)")?;

        // Idle configuration: the programs below do nothing until the cgroup id is written.
        write_config(&object, 0, level)?;
        let keys = kernel_keys(&object, tree)?;
        let allowed = find_map(&object, "wt_allowed")?;
        for key in &keys {
            allowed
                .update(&key_bytes(key), &stamp_bytes(key), MapFlags::ANY)
                .map_err(|e| object::bpf_error("fill wt_allowed", e))?;
        }

        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let ring = {
            let map = find_map(&object, "wt_events")?;
            let mut builder = RingBufferBuilder::new();
            builder
                .add(&map, move |raw: &[u8]| {
                    if let Some(ev) = ExecEvent::parse(raw) {
                        sink.lock().unwrap_or_else(|p| p.into_inner()).push(ev);
                    }
                    0
                })
                .map_err(|e| object::bpf_error("ring buffer", e))?;
            builder
                .build()
                .map_err(|e| object::bpf_error("ring buffer", e))?
        };

        let mut links = Vec::new();
        for name in ["wt_exec", "wt_sys_enter"] {
            let prog = object
                .progs_mut()
                .find(|p| p.name() == name)
                .ok_or(Error::Bpf {
                    step: "find program",
                    reason: format!("{name} missing from the object"),
                })?;
            links.push(prog.attach().map_err(|e| object::bpf_error("attach", e))?);
        }
        // Armed last: from here on every exec and PROT_EXEC mapping in the cgroup is checked.
        write_config(&object, cgroup_id, level)?;
        Ok(ExecGate {
            ring,
            _links: links,
            _object: object,
            events,
            cgroup_id,
            allowed_keys: keys.len(),
        })
    }

    /// Also allows the files of `tree` (verified separately). On overlayfs the sandbox sees the
    /// overlay inodes (verify the merged mount and attach with that tree) while mappings of
    /// them are backed by the lower inodes, which `mprotect` sees: allow the lower tree too.
    /// Returns how many new keys were added.
    pub fn allow_tree(&mut self, tree: &VerifiedTree) -> Result<usize> {
        let keys = kernel_keys(&self._object, tree)?;
        let allowed = find_map(&self._object, "wt_allowed")?;
        for key in &keys {
            allowed
                .update(&key_bytes(key), &stamp_bytes(key), MapFlags::ANY)
                .map_err(|e| {
                    object::bpf_error(
                        "fill wt_allowed (map full: attach with the larger tree first)",
                        e,
                    )
                })?;
        }
        let before = self.allowed_keys;
        self.allowed_keys = allowed.keys().count();
        Ok(self.allowed_keys - before)
    }

    /// Refusals reported since the last call (non-blocking).
    pub fn poll_events(&mut self) -> Vec<ExecEvent> {
        // consume() drains whatever is in the ring now; an error only means nothing was read.
        let _ = self.ring.consume();
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Waits up to `timeout` for at least one event, then returns all pending ones.
    pub fn wait_events(&mut self, timeout: Duration) -> Vec<ExecEvent> {
        let _ = self.ring.poll(timeout);
        self.poll_events()
    }

    /// The gated cgroup's id.
    pub fn cgroup_id(&self) -> u64 {
        self.cgroup_id
    }

    /// How many `(dev, ino, generation)` keys are allowed (one per verified inode; overlayfs
    /// files also have their backing inode).
    pub fn allowed_keys(&self) -> usize {
        self.allowed_keys
    }
}

fn find_map<'o>(object: &'o Object, name: &str) -> Result<libbpf_rs::Map<'o>> {
    object.maps().find(|m| m.name() == name).ok_or(Error::Bpf {
        step: "find map",
        reason: format!("{name} missing from the object"),
    })
}

fn write_config(object: &Object, cgroup_id: u64, level: u32) -> Result<()> {
    let mut value = Vec::with_capacity(16);
    value.extend_from_slice(&cgroup_id.to_ne_bytes());
    value.extend_from_slice(&level.to_ne_bytes());
    value.extend_from_slice(&0u32.to_ne_bytes()); // reserved
    find_map(object, "wt_config")?
        .update(&0u32.to_ne_bytes(), &value, MapFlags::ANY)
        .map_err(|e| object::bpf_error("write wt_config", e))
}

fn stamp_bytes(key: &KernelKey) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[0..8].copy_from_slice(&key.ctime.0.to_ne_bytes());
    out[8..12].copy_from_slice(&key.ctime.1.to_ne_bytes());
    out
}

fn key_bytes(key: &KernelKey) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[0..4].copy_from_slice(&key.dev.to_ne_bytes());
    out[4..8].copy_from_slice(&key.generation.to_ne_bytes());
    out[8..16].copy_from_slice(&key.ino.to_ne_bytes());
    out
}

/// Opens every verified file, checks it is still the inode that was hashed, and reads the
/// kernel's key for it with the task_file iterator (which sees our own descriptors).
fn kernel_keys(object: &Object, tree: &VerifiedTree) -> Result<Vec<KernelKey>> {
    let iter_prog = object
        .progs_mut()
        .find(|p| p.name() == "wt_collect")
        .ok_or(Error::Bpf {
            step: "find program",
            reason: "wt_collect missing from the object".into(),
        })?;
    let mut keys: HashMap<(u32, u64, u32), KernelKey> = HashMap::new();
    for batch in tree.files.chunks(OPEN_BATCH) {
        let mut opened: Vec<(File, &crate::VerifiedFile)> = Vec::with_capacity(batch.len());
        for vf in batch {
            let path = tree.path_of(vf);
            let file =
                crate::manifest::scan::open_regular(&path).map_err(|e| Error::TreeChanged {
                    path: path.clone(),
                    what: e.to_string(),
                })?;
            let meta = file.metadata().map_err(|e| Error::TreeChanged {
                path: path.clone(),
                what: e.to_string(),
            })?;
            if (meta.dev(), meta.ino()) != (vf.dev, vf.ino) {
                return Err(Error::TreeChanged {
                    path,
                    what: format!(
                        "inode {}:{} is now {}:{}",
                        vf.dev,
                        vf.ino,
                        meta.dev(),
                        meta.ino()
                    ),
                });
            }
            opened.push((file, vf));
        }
        let link = iter_prog
            .attach()
            .map_err(|e| object::bpf_error("attach iterator", e))?;
        let mut iter =
            libbpf_rs::Iter::new(&link).map_err(|e| object::bpf_error("create iterator", e))?;
        let mut raw = Vec::new();
        iter.read_to_end(&mut raw).map_err(|e| Error::Bpf {
            step: "read iterator",
            reason: e.to_string(),
        })?;
        let by_fd: HashMap<u32, KernelKey> = raw
            .chunks_exact(FD_KEY_SIZE)
            .map(|r| {
                let u32_at =
                    |o: usize| u32::from_ne_bytes(r[o..o + 4].try_into().expect("4 bytes"));
                let u64_at =
                    |o: usize| u64::from_ne_bytes(r[o..o + 8].try_into().expect("8 bytes"));
                (
                    u32_at(0),
                    KernelKey {
                        dev: u32_at(4),
                        ino: u64_at(8),
                        generation: u32_at(16),
                        ctime: (u64_at(32) as i64, u32_at(40)),
                    },
                )
            })
            .collect();
        for (file, vf) in &opened {
            let fd = file.as_raw_fd() as u32;
            let key = by_fd.get(&fd).ok_or_else(|| Error::Bpf {
                step: "read iterator",
                reason: format!(
                    "no kernel key reported for {} (fd {fd})",
                    tree.path_of(vf).display()
                ),
            })?;
            // Cross-check: the kernel's view must be the inode user space hashed.
            if event::user_dev(key.dev) != vf.dev || key.ino != vf.ino {
                return Err(Error::TreeChanged {
                    path: tree.path_of(vf),
                    what: format!(
                        "kernel reports inode {}:{}, verification read {}:{}",
                        event::user_dev(key.dev),
                        key.ino,
                        vf.dev,
                        vf.ino
                    ),
                });
            }
            // The inode changed (written, truncated, chmod'ed) after it was hashed.
            if key.ctime != vf.ctime {
                return Err(Error::TreeChanged {
                    path: tree.path_of(vf),
                    what: format!(
                        "its inode changed after verification (ctime {}.{:09} is now {}.{:09})",
                        vf.ctime.0, vf.ctime.1, key.ctime.0, key.ctime.1
                    ),
                });
            }
            keys.insert((key.dev, key.ino, key.generation), *key);
        }
    }
    Ok(keys.into_values().collect())
}
