//! config.json `mounts` as planned operations (parsed and checked before anything exists), the
//! path resolution that keeps every destination inside the rootfs, and the container init's
//! mount steps.

use nix::mount::{mount, MsFlags};
use std::path::{Component, Path, PathBuf};

use crate::Error;

/// What a mount's fstype asks for beyond mount(2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind (or rbind) mount of `source`.
    Bind,
    /// `type: cgroup`: the container's own cgroup of every hierarchy, bound under a tmpfs
    /// (v1 or hybrid) or cgroup2 itself (pure v2).
    Cgroup,
    /// Any other filesystem, mounted with mount(2).
    Filesystem(String),
}

/// One planned mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// Where in the container (absolute, as config.json gives it).
    pub destination: String,
    /// The source: a path for binds (bundle-relative resolved), a device or name otherwise.
    pub source: Option<PathBuf>,
    /// What it is.
    pub kind: MountKind,
    /// Flags set by the options.
    pub flags: MsFlags,
    /// Propagation changes applied after the mount (MS_PRIVATE, MS_REC|MS_SLAVE, ...).
    pub propagation: Vec<MsFlags>,
    /// Options mount(2) passes as data (`mode=755`, `size=64k`, ...).
    pub data: String,
}

/// Splits mount options into flags set, propagation changes and the data string. An option
/// watertight cannot apply (`idmap`, `tmpcopyup`) is an error naming it.
pub fn parse_options(
    field: &str,
    options: &[String],
) -> Result<(MsFlags, Vec<MsFlags>, String), Error> {
    let mut flags = MsFlags::empty();
    let mut propagation = Vec::new();
    let mut data: Vec<&str> = Vec::new();
    for option in options {
        let (set, clear) = match option.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                propagation.push(propagation_flags(option).expect("listed above"));
                continue;
            }
            "idmap" | "ridmap" | "tmpcopyup" | "rro" | "rrw" | "rnosuid" | "rsuid" | "rnodev"
            | "rdev" | "rnoexec" | "rexec" | "rnoatime" | "ratime" | "rrelatime"
            | "rnorelatime" | "rstrictatime" | "rnostrictatime" | "rnosymfollow" | "rsymfollow"
            | "nosymfollow" | "symfollow" => {
                return Err(Error::unsupported(
                    format!("{field}.options: {option:?}"),
                    "remove the option",
                ))
            }
            other => {
                data.push(other);
                continue;
            }
        };
        flags.insert(set);
        flags.remove(clear);
    }
    Ok((flags, propagation, data.join(",")))
}

/// The mount(2) flags of a propagation name (`rslave` = MS_REC | MS_SLAVE), None for another
/// word.
pub fn propagation_flags(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Plans `mounts[index]`; `bundle` resolves a relative bind source.
pub fn plan_mount(
    index: usize,
    m: &oci_spec::runtime::Mount,
    bundle: &Path,
) -> Result<MountPlan, Error> {
    let field = format!("mounts[{index}]");
    let destination = m.destination().to_string_lossy().into_owned();
    if destination.is_empty() {
        return Err(Error::invalid(format!("{field}.destination"), "is empty"));
    }
    let options = m.options().clone().unwrap_or_default();
    let (flags, propagation, data) = parse_options(&field, &options)?;
    if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
        return Err(Error::unsupported(
            format!("{field}.uidMappings"),
            "idmapped mounts are not supported",
        ));
    }
    let fstype = m.typ().clone().unwrap_or_default();
    let kind = if flags.contains(MsFlags::MS_BIND) || fstype == "bind" {
        MountKind::Bind
    } else if fstype == "cgroup" || fstype == "cgroup2" {
        MountKind::Cgroup
    } else if fstype.is_empty() {
        return Err(Error::invalid(
            format!("{field}.type"),
            "is missing and the options have no bind or rbind",
        ));
    } else {
        MountKind::Filesystem(fstype)
    };
    let source = m.source().as_ref().map(|s| {
        if kind == MountKind::Bind && s.is_relative() {
            bundle.join(s)
        } else {
            s.clone()
        }
    });
    if kind == MountKind::Bind {
        match &source {
            None => {
                return Err(Error::invalid(
                    format!("{field}.source"),
                    "a bind mount needs a source",
                ))
            }
            Some(s) if !s.exists() => {
                return Err(Error::invalid(
                    format!("{field}.source"),
                    format!("{} does not exist", s.display()),
                ))
            }
            _ => {}
        }
    }
    let mut flags = flags;
    if kind == MountKind::Bind {
        flags.insert(MsFlags::MS_BIND);
    }
    Ok(MountPlan {
        destination,
        source,
        kind,
        flags,
        propagation,
        data,
    })
}

/// `root` joined with the container path `path`, every symlink on the way resolved inside
/// `root` (an absolute link target restarts at `root`, `..` stops at it), so a rootfs cannot
/// point a mount outside itself. The last component need not exist.
pub fn secure_join(root: &Path, path: &str) -> PathBuf {
    let mut resolved = PathBuf::new();
    let mut pending: Vec<std::ffi::OsString> = Path::new(path)
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&name);
        match std::fs::read_link(root.join(&candidate)) {
            Ok(target) if links < 40 => {
                links += 1;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => resolved = candidate,
        }
    }
    root.join(resolved)
}

/// mkdir -p with mode 0755.
pub fn mkdir_all(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).create(path)
}

/// Creates what a bind of `source` needs at `target`: a directory for a directory, else an empty
/// file (its parents created).
pub fn make_target(source: &Path, target: &Path) -> std::io::Result<()> {
    if source.is_dir() {
        return mkdir_all(target);
    }
    if let Some(parent) = target.parent() {
        mkdir_all(parent)?;
    }
    if target.symlink_metadata().is_err() {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(target)?;
    }
    Ok(())
}

/// The mount flags a remount must keep: in a user namespace the kernel refuses a remount that
/// would clear nosuid/nodev/noexec/atime flags locked by the mount's owner.
pub fn locked_flags(path: &Path) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out.insert(ms);
        }
    }
    out
}

/// Remounts the bind mount at `path` with `flags` (plus the flags the kernel has locked).
pub fn remount_bind(path: &Path, flags: MsFlags) -> nix::Result<()> {
    let flags = flags | locked_flags(path) | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
}

/// Flags a bind mount needs applied by a remount (mount(2) ignores them on MS_BIND).
pub const REMOUNT_FLAGS: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NOATIME)
    .union(MsFlags::MS_NODIRATIME)
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_propagation_and_data() {
        let opts: Vec<String> = [
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "rprivate",
            "ro",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (flags, prop, data) = parse_options("mounts[0]", &opts).unwrap();
        assert!(flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME | MsFlags::MS_RDONLY));
        assert_eq!(prop, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert_eq!(data, "mode=755,size=65536k");
        let err = parse_options("mounts[2]", &["idmap".to_string()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "mounts[2].options: \"idmap\": not supported by watertight-runc (remove the option)"
        );
    }

    #[test]
    fn secure_join_keeps_links_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::os::unix::fs::symlink("/real", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../etc", root.join("up")).unwrap();
        assert_eq!(secure_join(root, "/abs/x"), root.join("real/x"));
        assert_eq!(secure_join(root, "/up/passwd"), root.join("etc/passwd"));
        assert_eq!(secure_join(root, "/../../a"), root.join("a"));
    }
}
