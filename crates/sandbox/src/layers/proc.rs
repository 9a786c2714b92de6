//! /proc layer: a fresh procfs for the sandbox's own pid namespace (so host processes are not
//! there), with the kernel's dangerous files masked and the tunables read-only, as the OCI
//! runtime-spec's maskedPaths/readonlyPaths do.

use std::path::Path;

use watertight_sys::mount::{ATTR_NODEV, ATTR_NOEXEC, ATTR_NOSUID, ATTR_RDONLY};

use crate::layers::mount::{hide_file, DirMasks, MountOp};
use crate::profile::Proc;

/// The /proc mounts under `root`: a fresh procfs, the `read_only` paths bound read-only, then
/// the `masked` ones hidden (only those the host's /proc has).
pub fn plan(proc: &Proc, root: &Path, dir_masks: &mut DirMasks) -> Vec<MountOp> {
    let inside = |p: &Path| root.join(p.strip_prefix("/").unwrap_or(p));
    let mut ops = vec![MountOp::Proc {
        target: inside(Path::new("/proc")),
    }];
    // Read-only first: its attributes apply recursively, and a mask under a read-only path
    // (/proc/sys/...) made before it would become nodev, which makes its /dev/null unopenable.
    for path in &proc.read_only {
        if Path::new(path).exists() {
            ops.push(MountOp::Bind {
                source: inside(path),
                target: inside(path),
                attrs: ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC,
            });
        }
    }
    // The host's /proc tells files from directories: the new procfs has the same layout.
    for path in &proc.masked {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => ops.push(dir_masks.hide(&inside(path))),
            Ok(_) => ops.extend(hide_file(&inside(path))),
            Err(_) => {}
        }
    }
    ops
}
