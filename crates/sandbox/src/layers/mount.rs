//! Mount layer: the sandbox's file system, built in a private mount namespace.
//!
//! The supervisor plans every mount before fork (`plan`): a flat list of `MountOp`s that unit
//! tests can read. The sandbox's pid 1 applies them in order (`apply`):
//! 1. every mount private, so nothing propagates to or from the host;
//! 2. a fresh tmpfs as the new root (host-directory root), or an overlay of `--rootfs` with a
//!    tmpfs upper layer (read-only unless the profile makes the root writable);
//! 3. the host directories and user binds, read-only unless asked otherwise, always nosuid/nodev;
//! 4. host secrets hidden; /proc, /dev, /tmp, /run/secrets (their own modules plan those);
//! 5. pivot_root into the new root and detach the old one, then the root itself read-only.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use watertight_sys::mount::{ATTR_NODEV, ATTR_NOEXEC, ATTR_NOSUID, ATTR_RDONLY};

use crate::error::Error;
use crate::profile::{HostSockets, Profile};
use crate::syscall::Syscall;

/// Where the new root is assembled in the sandbox's own mount namespace before pivot_root. It
/// must exist on the host (the supervisor creates it); nothing is ever mounted there on the host.
pub const STAGE: &str = "/run/watertight/stage";

/// One step of building the sandbox's file system.
#[derive(Debug, Clone, PartialEq)]
pub enum MountOp {
    /// Change the propagation of `path` (and everything below it) to private.
    MakePrivate {
        /// Mount point whose subtree stops propagating (`/` first of all).
        path: PathBuf,
    },
    /// A tmpfs with `size` bytes, the root directory's `mode`, and `flags` (MS_NOSUID ...).
    Tmpfs {
        /// Where it is mounted: the stage (a new root), or /tmp, /dev, /dev/shm, /run/secrets or
        /// the first hidden directory under the new root.
        target: PathBuf,
        /// Size limit in bytes (tmpfs `size=`).
        size: u64,
        /// Permission bits of the tmpfs's root directory (tmpfs `mode=`).
        mode: u32,
        /// Mount flags (`MS_NOSUID`, `MS_NODEV`, `MS_NOEXEC` ...).
        flags: MsFlags,
    },
    /// An overlay: `lower` read-only below, `upper`/`work` on a tmpfs.
    Overlay {
        /// The read-only tree the overlay shows through (the root directory, bound).
        lower: PathBuf,
        /// Where writes land: a directory on the stage tmpfs, gone with the sandbox (pid 1 keeps
        /// it open for the forensic capture).
        upper: PathBuf,
        /// overlayfs's scratch directory, on the same tmpfs as `upper`.
        work: PathBuf,
        /// Mount point of the merged tree (the new root).
        target: PathBuf,
    },
    /// A directory and its missing parents.
    MkdirAll {
        /// Directory to create.
        path: PathBuf,
        /// Permission bits of every directory created.
        mode: u32,
    },
    /// An empty file (a mount point for a file bind).
    Touch {
        /// File to create; an existing one is kept.
        path: PathBuf,
    },
    /// A symbolic link (e.g. /bin -> usr/bin of a merged-/usr host, reproduced in the new root).
    Symlink {
        /// What the link points to, as stored in it.
        target: PathBuf,
        /// Path of the link itself.
        link: PathBuf,
    },
    /// A recursive bind mount, then `attrs` (ATTR_RDONLY ...) on the whole bound tree.
    Bind {
        /// The tree to bind: a host path, or one already under the new root (a /proc path made
        /// read-only, the shared empty tmpfs of [`DirMasks`]).
        source: PathBuf,
        /// Where it appears, under the new root.
        target: PathBuf,
        /// Mount attributes (`ATTR_*` bits) set recursively after the bind; 0 for none.
        attrs: u64,
    },
    /// A fresh procfs for the sandbox's pid namespace.
    Proc {
        /// /proc under the new root.
        target: PathBuf,
    },
    /// A private devpts instance with at most `max` pseudo-terminals: the kernel's pty count
    /// (kernel.pty.max) is host-wide, so without `max=` one sandbox could open them all.
    Devpts {
        /// /dev/pts under the new root.
        target: PathBuf,
        /// Most pseudo-terminals the instance hands out (`profile.dev.max_ptys`).
        max: u32,
    },
    /// A file with the given contents (secrets), created exclusively.
    WriteFile {
        /// File to create; it must not exist.
        path: PathBuf,
        /// Permission bits (0o400 for a secret).
        mode: u32,
        /// The bytes written.
        contents: Vec<u8>,
    },
    /// Set attributes on an existing mount (not recursive).
    SetAttributes {
        /// The mount to change, e.g. /run/secrets once written, `/` after pivot_root.
        target: PathBuf,
        /// Mount attributes (`ATTR_*` bits) to set.
        attrs: u64,
    },
    /// pivot_root into `new_root` and detach the old root.
    PivotRoot {
        /// The assembled root (the stage, or the overlay on it) to pivot into.
        new_root: PathBuf,
    },
    /// Detached mount tree number `tree` (prepared by the supervisor before fork: a bind source
    /// made an idmapped mount, see `layers/sockets.rs`) moved into place at `target`.
    AttachTree {
        /// Index into the supervisor's detached trees (`Plan::bind_trees`).
        tree: usize,
        /// Where the tree appears, under the new root.
        target: PathBuf,
    },
}

/// The planned file system plus facts the later layers need.
#[derive(Debug, Clone)]
pub struct MountPlan {
    /// Every step, in the order pid 1 applies them.
    pub ops: Vec<MountOp>,
    /// The program's working directory inside the sandbox.
    pub workdir: PathBuf,
    /// The binds of host paths pid 1 may not reach as the slot's uid (the caller's binds:
    /// profile `[[bind]]`, flags, the working directory; a root directory's entries, or the
    /// whole of it as the overlay's lower layer): their index in `ops` and whether host unix
    /// sockets under them must be made unreachable (a caller's directory, `[root] host_sockets
    /// = "mask"`). `sockets::attach_host_binds` turns each into a detached tree the supervisor
    /// makes.
    pub host_binds: Vec<(usize, bool)>,
    /// `--box`: the index in `ops` of the box's bind (one of `host_binds`), which the
    /// supervisor makes an idmapped tree owned by the caller on disk (`layers/workbox.rs`).
    pub box_bind: Option<usize>,
    /// Where the new root is assembled: [`STAGE`], or `rootless::STAGE` without root.
    pub stage: PathBuf,
}

/// Inputs that come from the command line rather than the profile.
#[derive(Debug, Clone, Default)]
pub struct MountRequest {
    /// The caller's working directory (used when the profile binds it).
    pub cwd: Option<PathBuf>,
    /// `--workdir`.
    pub workdir: Option<PathBuf>,
    /// `--box DIR`, absolute: bound writable at `/box`, the working directory unless
    /// `--workdir`. Made and checked by the supervisor before fork (`workbox::prepare`), not
    /// here.
    pub box_dir: Option<PathBuf>,
    /// `--secret NAME=FILE`, already read by the supervisor.
    pub secrets: Vec<crate::layers::secrets::Secret>,
    /// Exec-time integrity: every writable mount is noexec, so only the verified (read-only)
    /// files can be executed or mapped as code.
    pub noexec_writable: bool,
    /// Without root (`layers/rootless.rs`): the root is assembled under a tmpfs over /tmp of
    /// the sandbox's own mount namespace, since the caller cannot make [`STAGE`].
    pub rootless: bool,
}

/// Flags every writable scratch mount gets: no setuid binaries, no device nodes.
pub const SCRATCH_FLAGS: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV);

/// Plans the sandbox's whole file system from the profile and the command line: root, host
/// directories, binds, hidden paths, /proc, /dev, /tmp, secrets, pivot_root. Checks sources and
/// targets (errors name the path at fault); creates nothing.
pub fn plan(profile: &Profile, req: &MountRequest) -> Result<MountPlan, Error> {
    let mut ops = vec![MountOp::MakePrivate { path: "/".into() }];
    let stage = if req.rootless {
        // bubblewrap's base: a tmpfs on /tmp, in the sandbox's mount namespace only (every
        // host path bound later is opened before it hides /tmp: `pin_bind_sources`).
        ops.push(MountOp::Tmpfs {
            target: "/tmp".into(),
            size: 64 << 10,
            mode: 0o755,
            flags: SCRATCH_FLAGS | MsFlags::MS_NOEXEC,
        });
        let stage = PathBuf::from(crate::layers::rootless::STAGE);
        ops.push(MountOp::MkdirAll {
            path: stage.clone(),
            mode: 0o755,
        });
        stage
    } else {
        PathBuf::from(STAGE)
    };
    // Binds of host paths the supervisor turns into detached trees before fork (the caller's
    // binds, a root directory's entries): pid 1 runs as the slot's host uid, which may not be
    // able to reach them by path.
    let mut host_binds = Vec::new();
    let host_root = profile.root.source == "host";

    // The new root. A read-only root (the host's directories, or a root directory) is a small
    // tmpfs of mount points with each top-level entry bound read-only onto it: the sandbox sees
    // the very inodes the host has (which exec-time integrity keys on). A writable root directory
    // is an overlay with a throwaway tmpfs upper layer instead.
    let read_only_rootfs = !host_root && !profile.root.writable;
    let root = if host_root || read_only_rootfs {
        // Only mount points and symlinks live on this tmpfs; it becomes read-only after pivot.
        if !host_root {
            check_rootfs(Path::new(&profile.root.source))?;
        }
        ops.push(MountOp::Tmpfs {
            target: stage.clone(),
            size: 1 << 20,
            mode: 0o755,
            flags: SCRATCH_FLAGS,
        });
        stage.clone()
    } else {
        let rootfs = PathBuf::from(&profile.root.source);
        check_rootfs(&rootfs)?;
        let upper_size = profile.tmp.size.bytes();
        ops.push(MountOp::Tmpfs {
            target: stage.clone(),
            size: upper_size,
            mode: 0o755,
            flags: SCRATCH_FLAGS,
        });
        for d in ["upper", "work", "root", "lower"] {
            ops.push(MountOp::MkdirAll {
                path: stage.join(d),
                mode: 0o755,
            });
        }
        // The lower layer is a tree the supervisor made (pid 1 is the slot's uid and may not
        // reach the root directory by its host path); the overlay takes it where it is attached.
        host_binds.push((ops.len(), false));
        ops.push(MountOp::Bind {
            source: rootfs,
            target: stage.join("lower"),
            attrs: ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV,
        });
        ops.push(MountOp::Overlay {
            lower: stage.join("lower"),
            upper: stage.join("upper"),
            work: stage.join("work"),
            target: stage.join("root"),
        });
        stage.join("root")
    };
    if host_root && profile.root.writable {
        return Err(Error::Config(
            "root.writable = true needs a root directory (--rootfs DIR); with the host's root use /tmp for writes".into(),
        ));
    }
    let inside = |p: &Path| root.join(p.strip_prefix("/").unwrap_or(p));

    // (host path, path inside) of every top-level entry bound read-only into the root.
    let mut entries: Vec<(PathBuf, PathBuf)> = Vec::new();
    if host_root {
        entries.extend(
            profile
                .root
                .host_dirs
                .iter()
                .map(|d| (d.clone(), d.clone())),
        );
    } else if read_only_rootfs {
        let rootfs = PathBuf::from(&profile.root.source);
        let dir = std::fs::read_dir(&rootfs)
            .map_err(|e| Error::io(format!("read root directory {}", rootfs.display()), e))?;
        let mut names: Vec<_> = dir.flatten().map(|e| e.file_name()).collect();
        names.sort();
        for name in names {
            // The sandbox gets its own /proc, /dev and /tmp.
            if name == "proc" || name == "dev" || name == "tmp" {
                continue;
            }
            entries.push((rootfs.join(&name), Path::new("/").join(&name)));
        }
    }
    for (source, target) in &entries {
        let Ok(meta) = std::fs::symlink_metadata(source) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(source)
                .map_err(|e| Error::io(format!("read link {}", source.display()), e))?;
            ops.push(MountOp::Symlink {
                target: link,
                link: inside(target),
            });
            continue;
        }
        if meta.is_dir() {
            ops.push(MountOp::MkdirAll {
                path: inside(target),
                mode: 0o755,
            });
        } else if meta.is_file() {
            ops.push(MountOp::Touch {
                path: inside(target),
            });
        } else {
            continue; // device nodes, sockets, FIFOs at the top level are never shown
        }
        if !host_root {
            host_binds.push((ops.len(), false));
        }
        ops.push(MountOp::Bind {
            source: source.clone(),
            target: inside(target),
            attrs: ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV,
        });
    }
    for d in ["/proc", "/dev", "/tmp", "/run"] {
        ops.push(MountOp::MkdirAll {
            path: inside(Path::new(d)),
            mode: 0o755,
        });
    }
    if profile.bpf.observe {
        // The delegated bpffs is attached here after pivot_root (layers/bpf.rs); a root
        // directory that brings its own /sys must have the directory already.
        ops.push(MountOp::MkdirAll {
            path: inside(Path::new(crate::layers::bpf::MOUNT_POINT)),
            mode: 0o755,
        });
    }

    // Host secrets hidden: /dev/null over files, an empty read-only tmpfs over dirs.
    let mut dir_masks = DirMasks::default();
    for path in &profile.root.hide {
        let on_host = if host_root {
            path.clone()
        } else {
            PathBuf::from(&profile.root.source).join(path.strip_prefix("/").unwrap_or(path))
        };
        match std::fs::symlink_metadata(&on_host) {
            Ok(m) if m.is_dir() => ops.push(dir_masks.hide(&inside(path))),
            Ok(m) if m.is_file() => ops.extend(hide_file(&inside(path))),
            _ => {}
        }
    }

    ops.extend(crate::layers::proc::plan(
        &profile.proc,
        &root,
        &mut dir_masks,
    ));
    ops.extend(crate::layers::dev::plan(&profile.dev, &root));
    ops.push(MountOp::Tmpfs {
        target: inside(Path::new("/tmp")),
        size: profile.tmp.size.bytes(),
        mode: 0o1777,
        flags: if req.noexec_writable {
            SCRATCH_FLAGS | MsFlags::MS_NOEXEC
        } else {
            SCRATCH_FLAGS
        },
    });
    // User binds, then the caller's working directory: after the scratch mounts, so a bind
    // whose target is under /tmp (or a working directory there) is not hidden by them.
    let mut binds: Vec<(PathBuf, PathBuf, bool)> = profile
        .binds
        .iter()
        .map(|b| (b.source.clone(), b.target.clone(), b.read_only))
        .collect();
    let mut workdir = req.workdir.clone();
    if host_root && profile.root.bind_cwd {
        if let Some(cwd) = &req.cwd {
            let covered =
                cwd == Path::new("/") || profile.root.host_dirs.iter().any(|d| cwd.starts_with(d));
            if !covered && !binds.iter().any(|(_, t, _)| cwd.starts_with(t)) {
                binds.push((cwd.clone(), cwd.clone(), true));
            }
            if req.box_dir.is_none() {
                workdir.get_or_insert_with(|| cwd.clone());
            }
        }
    }
    for (source, target, read_only) in &binds {
        let meta = std::fs::metadata(source).map_err(|e| {
            Error::Config(format!(
                "bind source {}: {e} (it must exist on the host)",
                shown(source)
            ))
        })?;
        if !target.is_absolute() {
            return Err(Error::Config(format!(
                "bind target {} must be an absolute path",
                shown(target)
            )));
        }
        if meta.is_dir() {
            ops.push(MountOp::MkdirAll {
                path: inside(target),
                mode: 0o755,
            });
        } else {
            if let Some(parent) = target.parent() {
                ops.push(MountOp::MkdirAll {
                    path: inside(parent),
                    mode: 0o755,
                });
            }
            ops.push(MountOp::Touch {
                path: inside(target),
            });
        }
        let attrs = if *read_only {
            ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV
        } else if req.noexec_writable {
            ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC
        } else {
            ATTR_NOSUID | ATTR_NODEV
        };
        host_binds.push((
            ops.len(),
            meta.is_dir() && profile.root.host_sockets == HostSockets::Mask,
        ));
        ops.push(MountOp::Bind {
            source: source.clone(),
            target: inside(target),
            attrs,
        });
    }

    // The box: the one writable host directory, nosuid and nodev (noexec under integrity); the
    // supervisor attaches it as a tree idmapped to the caller (`layers/workbox.rs`).
    let mut box_bind = None;
    if let Some(dir) = &req.box_dir {
        let target = inside(Path::new(crate::layers::workbox::TARGET));
        ops.push(MountOp::MkdirAll {
            path: target.clone(),
            mode: 0o755,
        });
        box_bind = Some(ops.len());
        host_binds.push((ops.len(), profile.root.host_sockets == HostSockets::Mask));
        ops.push(MountOp::Bind {
            source: dir.clone(),
            target,
            attrs: if req.noexec_writable {
                ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC
            } else {
                ATTR_NOSUID | ATTR_NODEV
            },
        });
        workdir.get_or_insert_with(|| PathBuf::from(crate::layers::workbox::TARGET));
    }

    ops.extend(crate::layers::secrets::plan(
        &req.secrets,
        &root,
        profile.identity.uid,
    )?);

    // Private again: binds of host mounts made above must not carry any propagation peer.
    ops.push(MountOp::MakePrivate { path: root.clone() });
    ops.push(MountOp::PivotRoot { new_root: root });
    if !profile.root.writable || host_root {
        ops.push(MountOp::SetAttributes {
            target: "/".into(),
            attrs: ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV,
        });
    }

    let workdir = workdir.unwrap_or_else(|| PathBuf::from("/tmp"));
    if !workdir.is_absolute() {
        return Err(Error::Config(format!(
            "workdir {} must be an absolute path",
            shown(&workdir)
        )));
    }
    Ok(MountPlan {
        ops,
        workdir,
        host_binds,
        box_bind,
        stage,
    })
}

fn check_rootfs(rootfs: &Path) -> Result<(), Error> {
    let meta = std::fs::metadata(rootfs).map_err(|e| {
        Error::Config(format!(
            "root directory {}: {e} (pass an existing directory to --rootfs)",
            shown(rootfs)
        ))
    })?;
    if !meta.is_dir() {
        return Err(Error::Config(format!(
            "root {} is not a directory (--rootfs takes a directory)",
            shown(rootfs)
        )));
    }
    Ok(())
}

/// Ops that hide a file: the host's /dev/null bound over it.
pub fn hide_file(target: &Path) -> Vec<MountOp> {
    // No mount attributes (as runc masks): a character device cannot be executed or setuid,
    // and what is written to /dev/null is gone; that saves a mount_setattr per masked file.
    vec![MountOp::Bind {
        source: "/dev/null".into(),
        target: target.to_path_buf(),
        attrs: 0,
    }]
}

/// Hides directories behind one empty, read-only, one-page tmpfs: the first hidden directory
/// gets the tmpfs, every later one a bind of it. A tmpfs mounted read-only has a read-only
/// superblock, so no bind of it can be written either, and an empty file system holds nothing
/// to execute or open as a device; each bind saves a superblock's setup and teardown.
#[derive(Debug, Default)]
pub struct DirMasks {
    first: Option<PathBuf>,
}

impl DirMasks {
    /// The op that hides the directory `target`: the shared empty tmpfs the first time, a bind of
    /// it after that.
    pub fn hide(&mut self, target: &Path) -> MountOp {
        match &self.first {
            Some(first) => MountOp::Bind {
                source: first.clone(),
                target: target.to_path_buf(),
                attrs: 0,
            },
            None => {
                self.first = Some(target.to_path_buf());
                MountOp::Tmpfs {
                    target: target.to_path_buf(),
                    size: 4096,
                    mode: 0o555,
                    flags: SCRATCH_FLAGS | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY,
                }
            }
        }
    }
}

/// Opens every bind source on the host (outside the new root) with O_PATH in the sandbox's
/// pid 1, before it takes the sandbox's uid, and returns the ops with those sources replaced by
/// `/proc/self/fd/N`. The sources left are system paths everyone may reach (/usr, /etc, /dev
/// nodes, /dev/null for masks): the caller's binds and a root directory are detached trees the
/// supervisor made (`MountOp::AttachTree`), because pid 1 is the slot's host uid (see
/// `user::NamespaceOwner`). The files must stay open until `apply` has run.
pub fn pin_bind_sources(
    ops: &[MountOp],
    stage: &Path,
) -> Result<(Vec<MountOp>, Vec<std::fs::File>), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let mut pinned: Vec<(&Path, std::fs::File)> = Vec::new();
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            MountOp::Bind {
                source,
                target,
                attrs,
            } if !source.starts_with(stage) => {
                // One handle per distinct source: /dev/null alone masks a dozen files.
                let fd = match pinned.iter().find(|(s, _)| s == source) {
                    Some((_, file)) => file.as_raw_fd(),
                    None => {
                        let file = std::fs::OpenOptions::new()
                            .read(true)
                            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
                            .open(source)
                            .map_err(|e| Error::Setup {
                                stage: crate::error::Stage::Mount,
                                message: format!("open bind source {}: {e}", shown(source)),
                            })?;
                        let fd = file.as_raw_fd();
                        pinned.push((source, file));
                        fd
                    }
                };
                out.push(MountOp::Bind {
                    source: PathBuf::from(format!("/proc/self/fd/{fd}")),
                    target: target.clone(),
                    attrs: *attrs,
                });
            }
            other => out.push(other.clone()),
        }
    }
    Ok((out, pinned.into_iter().map(|(_, file)| file).collect()))
}

/// Applies the planned ops in order (`trees`: the detached trees `AttachTree` ops name); the
/// error names the op that failed.
pub fn apply(ops: &[MountOp], trees: &[OwnedFd], sys: &impl Syscall) -> Result<(), Error> {
    for op in ops {
        apply_one(op, trees, sys).map_err(|e| Error::Setup {
            stage: crate::error::Stage::Mount,
            message: format!("{}: {e}", describe(op)),
        })?;
        if let MountOp::Overlay { upper, .. } = op {
            keep_open(upper);
        }
    }
    Ok(())
}

/// The overlay's upper layer (what the program writes outside /tmp) has no path once the old
/// root is detached; pid 1 keeps it open for the forensic capture, which reads it through
/// /proc/<pid 1>/fd (`forensic.rs`). O_PATH and close-on-exec: the program never gets it. If it
/// cannot be opened, the capture records the layer as unreadable.
fn keep_open(dir: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::IntoRawFd;
    if let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
    {
        let _ = f.into_raw_fd(); // held until pid 1 exits
    }
}

fn apply_one(op: &MountOp, trees: &[OwnedFd], sys: &impl Syscall) -> io::Result<()> {
    match op {
        MountOp::MakePrivate { path } => sys.mount(
            None,
            path,
            None,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None,
        ),
        MountOp::Tmpfs {
            target,
            size,
            mode,
            flags,
        } => {
            let data = format!("size={size},mode={mode:o}");
            sys.mount(
                Some(Path::new("tmpfs")),
                target,
                Some("tmpfs"),
                *flags,
                Some(&data),
            )
        }
        MountOp::Overlay {
            lower,
            upper,
            work,
            target,
        } => {
            let data = format!(
                "lowerdir={},upperdir={},workdir={}",
                lower.display(),
                upper.display(),
                work.display()
            );
            sys.mount(
                Some(Path::new("overlay")),
                target,
                Some("overlay"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(&data),
            )
        }
        MountOp::MkdirAll { path, mode } => mkdir_all(path, *mode, sys),
        MountOp::Touch { path } => match sys.write_file(path, 0o644, b"") {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            r => r,
        },
        MountOp::Symlink { target, link } => sys.symlink(target, link),
        MountOp::Bind {
            source,
            target,
            attrs,
        } => {
            sys.mount(
                Some(source),
                target,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )?;
            if *attrs == 0 {
                return Ok(());
            }
            sys.set_mount_attributes(target, true, *attrs, 0)
        }
        MountOp::Proc { target } => sys.mount(
            Some(Path::new("proc")),
            target,
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None,
        ),
        MountOp::Devpts { target, max } => sys.mount(
            Some(Path::new("devpts")),
            target,
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some(&format!("newinstance,ptmxmode=0666,mode=0620,max={max}")),
        ),
        MountOp::WriteFile {
            path,
            mode,
            contents,
        } => sys.write_file(path, *mode, contents),
        MountOp::SetAttributes { target, attrs } => {
            sys.set_mount_attributes(target, false, *attrs, 0)
        }
        MountOp::PivotRoot { new_root } => sys.pivot_root(new_root),
        MountOp::AttachTree { tree, target } => {
            let tree = trees.get(*tree).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "no such prepared mount tree")
            })?;
            sys.attach_tree(tree.as_fd(), target)
        }
    }
}

/// mkdir -p, trying the directory itself first: its parents almost always exist already, and
/// every mkdir walks the whole path.
fn mkdir_all(path: &Path, mode: u32, sys: &impl Syscall) -> io::Result<()> {
    match sys.mkdir(path, mode) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                mkdir_all(parent, mode, sys)?;
            }
            sys.mkdir(path, mode)
        }
        r => r,
    }
}

/// A path in a message: quoted, control and non-UTF-8 bytes escaped (caller-chosen names).
fn shown(p: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    watertight_sys::text::quote(p.as_os_str().as_bytes())
}

fn describe(op: &MountOp) -> String {
    match op {
        MountOp::MakePrivate { path } => format!("make {} private", shown(path)),
        MountOp::Tmpfs { target, .. } => format!("tmpfs on {}", shown(target)),
        MountOp::Overlay { lower, target, .. } => {
            format!("overlay of {} on {}", shown(lower), shown(target))
        }
        MountOp::MkdirAll { path, .. } => format!("mkdir {}", shown(path)),
        MountOp::Touch { path } => format!("create {}", shown(path)),
        MountOp::Symlink { link, .. } => format!("symlink {}", shown(link)),
        MountOp::Bind { source, target, .. } => {
            format!("bind {} on {}", shown(source), shown(target))
        }
        MountOp::Proc { target } => format!("proc on {}", shown(target)),
        MountOp::Devpts { target, max } => format!("devpts (max {max}) on {}", shown(target)),
        MountOp::WriteFile { path, .. } => format!("write {}", shown(path)),
        MountOp::SetAttributes { target, .. } => format!("set attributes of {}", shown(target)),
        MountOp::PivotRoot { new_root } => format!("pivot_root into {}", shown(new_root)),
        MountOp::AttachTree { tree, target } => {
            format!("attach prepared tree {tree} on {}", shown(target))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::default_profile;
    use crate::syscall::recorder::Recorder;

    fn host_plan() -> MountPlan {
        plan(&default_profile(), &MountRequest::default()).unwrap()
    }

    #[test]
    fn caller_binds_are_listed_and_guarded_unless_host_sockets_are_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let mut profile = default_profile();
        profile.binds.push(crate::profile::Bind {
            source: dir.path().to_path_buf(),
            target: "/data".into(),
            read_only: true,
        });
        let p = plan(&profile, &MountRequest::default()).unwrap();
        assert_eq!(p.host_binds.len(), 1);
        let (i, guarded) = p.host_binds[0];
        assert!(guarded);
        assert!(matches!(&p.ops[i], MountOp::Bind { source, .. } if source == dir.path()));
        profile.root.host_sockets = HostSockets::Allow;
        assert_eq!(
            plan(&profile, &MountRequest::default()).unwrap().host_binds,
            vec![(i, false)]
        );
    }

    #[test]
    fn attach_tree_names_a_prepared_tree() {
        let rec = Recorder::default();
        let ops = [MountOp::AttachTree {
            tree: 0,
            target: "/stage/data".into(),
        }];
        let e = apply(&ops, &[], &rec).unwrap_err().to_string();
        assert!(e.contains("attach prepared tree 0"), "{e}");
        let tree: OwnedFd = std::fs::File::open("/").unwrap().into();
        apply(&ops, &[tree], &rec).unwrap();
        assert_eq!(rec.calls.borrow().as_slice(), ["attach_tree /stage/data"]);
    }

    #[test]
    fn hidden_dirs_share_one_read_only_tmpfs() {
        let mut masks = DirMasks::default();
        let first = masks.hide(Path::new("/s/etc/ssh"));
        assert!(
            matches!(&first, MountOp::Tmpfs { target, flags, .. } if target == Path::new("/s/etc/ssh") && flags.contains(MsFlags::MS_RDONLY | MsFlags::MS_NOEXEC))
        );
        assert_eq!(
            masks.hide(Path::new("/s/proc/acpi")),
            MountOp::Bind {
                source: "/s/etc/ssh".into(),
                target: "/s/proc/acpi".into(),
                attrs: 0,
            }
        );
    }

    #[test]
    fn everything_is_private_before_anything_is_mounted() {
        let ops = host_plan().ops;
        assert_eq!(ops[0], MountOp::MakePrivate { path: "/".into() });
    }

    #[test]
    fn host_dirs_are_read_only_nosuid_nodev() {
        for op in host_plan().ops {
            if let MountOp::Bind { source, attrs, .. } = op {
                if source.starts_with("/usr") || source.starts_with("/etc") {
                    assert_eq!(
                        attrs & (ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV),
                        ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV
                    );
                }
            }
        }
    }

    #[test]
    fn every_tmpfs_is_nosuid_nodev_and_sized() {
        for op in host_plan().ops {
            if let MountOp::Tmpfs { size, flags, .. } = op {
                assert!(size > 0);
                assert!(flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_NODEV));
            }
        }
    }

    #[test]
    fn pivot_then_root_read_only_last() {
        let ops = host_plan().ops;
        let n = ops.len();
        assert!(matches!(ops[n - 2], MountOp::PivotRoot { .. }));
        assert!(
            matches!(&ops[n - 1], MountOp::SetAttributes { target, attrs } if target == Path::new("/") && attrs & ATTR_RDONLY != 0)
        );
        assert!(matches!(&ops[n - 3], MountOp::MakePrivate { .. }));
    }

    #[test]
    fn shadow_is_hidden() {
        if !Path::new("/etc/shadow").exists() {
            return;
        }
        let target = PathBuf::from(STAGE).join("etc/shadow");
        assert!(host_plan().ops.iter().any(|op| matches!(op, MountOp::Bind { source, target: t, .. } if source == Path::new("/dev/null") && *t == target)));
    }

    #[test]
    fn a_root_directory_is_bound_from_trees_the_supervisor_makes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("init"), b"").unwrap();
        std::fs::create_dir(dir.path().join("proc")).unwrap();
        let mut profile = default_profile();
        profile.root.source = dir.path().to_str().unwrap().into();
        // Read-only: each entry (not /proc) is a tree; none is walked for sockets.
        let p = plan(&profile, &MountRequest::default()).unwrap();
        let sources: Vec<_> = p
            .host_binds
            .iter()
            .map(|&(i, guarded)| match &p.ops[i] {
                MountOp::Bind { source, .. } => (source.clone(), guarded),
                op => panic!("not a bind: {op:?}"),
            })
            .collect();
        assert_eq!(
            sources,
            vec![
                (dir.path().join("bin"), false),
                (dir.path().join("init"), false)
            ]
        );
        // Writable: the whole directory is one tree, the overlay's lower layer.
        profile.root.writable = true;
        let p = plan(&profile, &MountRequest::default()).unwrap();
        let [(i, false)] = p.host_binds[..] else {
            panic!("{:?}", p.host_binds)
        };
        let lower = Path::new(STAGE).join("lower");
        assert!(
            matches!(&p.ops[i], MountOp::Bind { source, target, .. } if source == dir.path() && *target == lower)
        );
        assert!(p.ops[i + 1..]
            .iter()
            .any(|op| matches!(op, MountOp::Overlay { lower: l, .. } if *l == lower)));
    }

    #[test]
    fn missing_rootfs_is_a_clear_error() {
        let mut p = default_profile();
        p.root.source = "/nonexistent/rootfs".into();
        let e = plan(&p, &MountRequest::default()).unwrap_err().to_string();
        assert!(
            e.contains("/nonexistent/rootfs") && e.contains("--rootfs"),
            "{e}"
        );
    }

    #[test]
    fn missing_bind_source_is_a_clear_error() {
        let mut p = default_profile();
        p.binds.push(crate::profile::Bind {
            source: "/no/such/dir".into(),
            target: "/data".into(),
            read_only: true,
        });
        let e = plan(&p, &MountRequest::default()).unwrap_err().to_string();
        assert!(e.contains("/no/such/dir"), "{e}");
    }

    fn binding_cwd() -> Profile {
        let mut p = default_profile();
        p.root.bind_cwd = true;
        p
    }

    #[test]
    fn the_caller_cwd_is_not_shown_by_default_and_the_program_starts_in_tmp() {
        let req = MountRequest {
            cwd: Some("/var/tmp".into()),
            ..Default::default()
        };
        let plan = plan(&default_profile(), &req).unwrap();
        assert_eq!(plan.workdir, Path::new("/tmp"));
        assert!(!plan.ops.iter().any(
            |op| matches!(op, MountOp::Bind { source, .. } if source == Path::new("/var/tmp"))
        ));
        assert_eq!(plan.box_bind, None);
    }

    #[test]
    fn the_box_is_a_writable_nosuid_nodev_host_bind_at_box_and_the_workdir() {
        let req = MountRequest {
            cwd: Some("/var/tmp".into()),
            box_dir: Some("/srv/grader/box".into()),
            ..Default::default()
        };
        let plan = plan(&binding_cwd(), &req).unwrap();
        assert_eq!(plan.workdir, Path::new("/box"), "the box wins over the cwd");
        let i = plan.box_bind.unwrap();
        assert!(plan.host_binds.contains(&(i, true)), "a host bind, guarded");
        let MountOp::Bind {
            source,
            target,
            attrs,
        } = &plan.ops[i]
        else {
            panic!("{:?}", plan.ops[i]);
        };
        assert_eq!(source, Path::new("/srv/grader/box"));
        assert_eq!(target, &PathBuf::from(STAGE).join("box"));
        assert_eq!(*attrs, ATTR_NOSUID | ATTR_NODEV, "writable, exec allowed");
        let pivot = plan
            .ops
            .iter()
            .position(|op| matches!(op, MountOp::PivotRoot { .. }))
            .unwrap();
        assert!(i < pivot);
        let noexec = plan_with_integrity(&req);
        let MountOp::Bind { attrs, .. } = &noexec.ops[noexec.box_bind.unwrap()] else {
            panic!()
        };
        assert_eq!(*attrs, ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC);
    }

    fn plan_with_integrity(req: &MountRequest) -> MountPlan {
        let req = MountRequest {
            noexec_writable: true,
            ..req.clone()
        };
        plan(&default_profile(), &req).unwrap()
    }

    #[test]
    fn cwd_is_bound_read_only_and_becomes_workdir() {
        let req = MountRequest {
            cwd: Some("/var/tmp".into()),
            ..Default::default()
        };
        let plan = plan(&binding_cwd(), &req).unwrap();
        assert_eq!(plan.workdir, Path::new("/var/tmp"));
        assert!(plan.ops.iter().any(|op| matches!(op, MountOp::Bind { source, attrs, .. } if source == Path::new("/var/tmp") && attrs & ATTR_RDONLY != 0)));
    }

    #[test]
    fn binds_under_tmp_come_after_the_tmp_tmpfs() {
        let checkout = tempfile::Builder::new().tempdir_in("/tmp").unwrap();
        let req = MountRequest {
            cwd: Some(checkout.path().to_path_buf()),
            ..Default::default()
        };
        let ops = plan(&binding_cwd(), &req).unwrap().ops;
        let tmp = PathBuf::from(STAGE).join("tmp");
        let tmpfs_at = ops
            .iter()
            .position(|op| matches!(op, MountOp::Tmpfs { target, .. } if *target == tmp))
            .unwrap();
        let bind_at = ops
            .iter()
            .position(|op| matches!(op, MountOp::Bind { source, .. } if source == checkout.path()))
            .unwrap();
        assert!(bind_at > tmpfs_at, "the cwd bind would be hidden by /tmp");
    }

    #[test]
    fn apply_names_the_failing_op() {
        let rec = Recorder {
            fail_at: Some(1),
            ..Default::default()
        };
        let e = apply(&host_plan().ops, &[], &rec).unwrap_err().to_string();
        assert!(e.contains("tmpfs on \"/run/watertight/stage\""), "{e}");
        assert_eq!(rec.calls.borrow().len(), 2, "stops at the first failure");
    }
}
