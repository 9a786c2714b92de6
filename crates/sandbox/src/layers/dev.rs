//! Device layer: a minimal /dev of the host's harmless character devices, a private devpts, and
//! /dev/shm; plus the matching device-controller allowlist, so that a device node made or bound
//! in any other way still cannot be opened.

use std::path::Path;

use nix::mount::MsFlags;
use watertight_cgroups::{DeviceKind, DeviceRule};
use watertight_sys::mount::{ATTR_NOEXEC, ATTR_NOSUID, ATTR_RDONLY};

use crate::layers::mount::{MountOp, SCRATCH_FLAGS};
use crate::profile::Dev;

/// (name, major, minor) of the devices a profile may list.
const KNOWN: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// (major, minor) of a device a profile may list in `dev.devices`; None for any other name.
pub fn device_by_name(name: &str) -> Option<(u32, u32)> {
    KNOWN
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(_, ma, mi)| (ma, mi))
}

/// The /dev tmpfs itself is nodev: the device nodes are bind mounts of the host's, each its own
/// mount with its own flags, so nothing made on the tmpfs can ever be a usable device.
pub fn plan(dev: &Dev, root: &Path) -> Vec<MountOp> {
    let d = root.join("dev");
    let mut ops = vec![MountOp::Tmpfs {
        target: d.clone(),
        size: 64 << 10,
        mode: 0o755,
        flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
    }];
    for name in &dev.devices {
        let host = Path::new("/dev").join(name);
        if host.exists() {
            ops.push(MountOp::Touch { path: d.join(name) });
            // A bind of the host node: a user namespace cannot mknod, and the bind keeps only
            // this one node reachable. No mount attributes: a character device can be neither
            // executed nor setuid (so no mount_setattr per node).
            ops.push(MountOp::Bind {
                source: host,
                target: d.join(name),
                attrs: 0,
            });
        }
    }
    ops.push(MountOp::MkdirAll {
        path: d.join("pts"),
        mode: 0o755,
    });
    ops.push(MountOp::Devpts {
        max: dev.max_ptys,
        target: d.join("pts"),
    });
    ops.push(MountOp::Symlink {
        target: "pts/ptmx".into(),
        link: d.join("ptmx"),
    });
    ops.push(MountOp::MkdirAll {
        path: d.join("shm"),
        mode: 0o1777,
    });
    ops.push(MountOp::Tmpfs {
        target: d.join("shm"),
        size: dev.shm_size.bytes(),
        mode: 0o1777,
        flags: SCRATCH_FLAGS | MsFlags::MS_NOEXEC,
    });
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ops.push(MountOp::Symlink {
            target: target.into(),
            link: d.join(link),
        });
    }
    ops.push(MountOp::SetAttributes {
        target: d,
        attrs: ATTR_RDONLY | ATTR_NOSUID | ATTR_NOEXEC,
    });
    ops
}

/// The device-controller allowlist: the listed devices plus the pty master and slaves.
pub fn allowlist(dev: &Dev) -> Vec<DeviceRule> {
    let rw = |major: u32, minor: Option<u32>| DeviceRule {
        kind: DeviceKind::Char,
        major: Some(major),
        minor,
        read: true,
        write: true,
        mknod: false,
    };
    let mut rules: Vec<DeviceRule> = dev
        .devices
        .iter()
        .filter_map(|n| device_by_name(n))
        .map(|(ma, mi)| rw(ma, Some(mi)))
        .collect();
    rules.push(rw(5, Some(2))); // /dev/ptmx
    rules.push(rw(136, None)); // /dev/pts/*
    rules
}
