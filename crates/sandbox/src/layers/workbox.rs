//! `--box DIR`: a host directory that is the program's working directory at [`TARGET`], the
//! only host directory it may write to.
//!
//! Ownership without chown: the supervisor attaches the directory as an idmapped mount whose
//! idmap maps the caller's uid and gid (the real ids of the `watertight` process; root's when
//! run as root) to the sandbox's host uid and gid. Through it the box appears owned by the
//! sandbox's user, and everything the program creates is stored on disk as the caller's: the
//! caller reads the results as they are, nothing is changed afterwards. The mount is nosuid and
//! nodev (and noexec under exec-time integrity, like every writable mount); a compiled program
//! can run from it.
//!
//! What a program in the box could leave for other host users: a file of the caller's with the
//! setuid or setgid bit (the mount's nosuid holds only inside). So the box's parent directory
//! must not let other users reach the box (no group or other search permission) while it runs,
//! and after the run the supervisor clears every setuid/setgid bit in the box; where it cannot
//! finish that walk, it takes every permission off the box instead (fail closed) and says so.
//!
//! Disk use: the box is the host file system's; files are the caller's on disk, so the caller's
//! quota on that file system bounds it, and each file is bounded by `limits.file_size`. For a
//! hard bound, `--box-size SIZE` ([`SizedBox`]): the box is a tmpfs of SIZE instead, mounted
//! over the directory in a mount namespace of the supervisor's own (so no host mount exists,
//! and none can outlive the supervisor), filled with a copy of the directory before the run and
//! copied back into it after. A write past SIZE fails with ENOSPC in the program; the tmpfs's
//! pages are charged to the memory cgroup of whoever writes them, so what the program writes
//! there counts against its memory limit as well.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag};

use crate::error::Error;

/// Where the box appears inside the sandbox (isolate's name for it).
pub const TARGET: &str = "/box";

/// A box directory, checked and ready to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkBox {
    /// Its absolute path on the host (no symbolic link on the way).
    pub path: PathBuf,
    /// The caller's real uid and gid: the owner of the box and of what is made in it.
    pub uid: u32,
    /// See `uid`.
    pub gid: u32,
}

fn shown(p: &Path) -> String {
    watertight_sys::text::quote(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()))
}

fn refuse(p: &Path, message: impl Into<String>) -> Error {
    Error::Box {
        path: shown(p),
        message: message.into(),
    }
}

/// `path` as an absolute path (relative to the current directory), without touching it.
pub fn absolute(path: &Path) -> Result<PathBuf, Error> {
    std::path::absolute(path).map_err(|e| refuse(path, format!("{e}; pass an absolute path")))
}

/// Makes the box (mode 0700) if it does not exist, then checks it: a directory of the caller's,
/// reached without symbolic links, in a parent other users cannot search.
pub fn prepare(path: &Path) -> Result<WorkBox, Error> {
    let abs = absolute(path)?;
    let (uid, gid) = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    match std::fs::DirBuilder::new().mode(0o700).create(&abs) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(refuse(
                path,
                format!(
                "cannot create it: {e}; pass a directory in an existing parent you can write to"
            ),
            ))
        }
    }
    let real = std::fs::canonicalize(&abs)
        .map_err(|e| refuse(path, format!("{e}; pass an existing directory")))?;
    let lexical: PathBuf = abs.components().collect();
    if real != lexical {
        return Err(refuse(
            path,
            format!(
                "reached through a symbolic link (it is {}); pass the real path",
                shown(&real)
            ),
        ));
    }
    let meta = std::fs::symlink_metadata(&real)
        .map_err(|e| refuse(path, format!("{e}; pass an existing directory")))?;
    if !meta.is_dir() {
        return Err(refuse(
            path,
            "not a directory; pass a directory (it is made if missing)",
        ));
    }
    if meta.uid() != uid {
        return Err(refuse(
            path,
            format!(
                "owned by uid {}, not by the caller (uid {uid}); pass a directory of yours (it is made if missing)",
                meta.uid()
            ),
        ));
    }
    let parent = real.parent().unwrap_or(Path::new("/"));
    let pmeta = std::fs::metadata(parent)
        .map_err(|e| refuse(path, format!("its parent {}: {e}", shown(parent))))?;
    if pmeta.mode() & 0o011 != 0 {
        return Err(refuse(
            path,
            format!(
                "its parent directory {} (mode {:04o}) lets other users reach the box, where the \
                 program can make setuid files of yours while it runs; run chmod go-x on it or \
                 put the box in a private directory",
                shown(parent),
                pmeta.mode() & 0o7777
            ),
        ));
    }
    Ok(WorkBox {
        path: real,
        uid,
        gid,
    })
}

/// The user namespace of the box's idmap: the caller's uid and gid stored on disk, the sandbox's
/// host id (`host_id`, its uid and gid) seen through the mount.
pub fn idmap(b: &WorkBox, host_id: u32) -> Result<OwnedFd, Error> {
    crate::layers::user::idmap_namespace(
        &format!("{} {host_id} 1\n", b.uid),
        &format!("{} {host_id} 1\n", b.gid),
    )
    .map_err(|e| Error::io("make the box's idmap (a user namespace)", e))
}

/// What [`hand_back`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HandedBack {
    /// Files whose setuid/setgid bits were cleared.
    pub cleared: usize,
}

/// After the run (the sandbox is gone, nothing of it can change the box any more): clears
/// every setuid and setgid bit of a regular file in the box, walking by descriptor (no
/// symbolic link followed, no path length limit). When the walk cannot finish, the box is made
/// mode 0000 (fail closed: nobody but root reaches what was left) and the error says so.
pub fn hand_back(b: &WorkBox) -> Result<HandedBack, Error> {
    match clear_set_id_bits(&b.path) {
        Ok(n) => Ok(HandedBack { cleared: n }),
        Err(e) => {
            // The box is a real directory (`prepare`): its mode, never a link's target.
            let locked = std::fs::set_permissions(
                &b.path,
                std::os::unix::fs::PermissionsExt::from_mode(0o000),
            );
            Err(refuse(
                &b.path,
                format!(
                    "could not clear setuid/setgid bits in the box after the run ({e}); {}",
                    match locked {
                        Ok(()) =>
                            "its mode is now 0000: check it before use (chmod 700 to open it)",
                        Err(_) =>
                            "and could not make it mode 0000: do not let other users reach it",
                    }
                ),
            ))
        }
    }
}

fn clear_set_id_bits(root: &Path) -> nix::Result<usize> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let top: OwnedFd = nix::fcntl::open(root, flags, Mode::empty())?;
    let mut cleared = 0;
    // Directories still to walk, each as an open descriptor (bounded by the box's directories).
    let mut pending: Vec<OwnedFd> = vec![top];
    while let Some(dir_fd) = pending.pop() {
        let mut dir = nix::dir::Dir::from_fd(dir_fd.try_clone().map_err(io_errno)?)?;
        let mut subdirs = Vec::new();
        for entry in dir.iter() {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_bytes() == b"." || name.to_bytes() == b".." {
                continue;
            }
            let st = nix::sys::stat::fstatat(dir_fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
            let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            if kind == SFlag::S_IFDIR {
                subdirs.push(name.to_owned());
            } else if kind == SFlag::S_IFREG && st.st_mode & 0o6000 != 0 {
                // A regular file (checked without following links; nothing else changes it now).
                nix::sys::stat::fchmodat(
                    dir_fd.as_fd(),
                    name,
                    Mode::from_bits_truncate(st.st_mode & 0o1777),
                    FchmodatFlags::FollowSymlink,
                )?;
                cleared += 1;
            }
        }
        for name in subdirs {
            pending.push(nix::fcntl::openat(
                dir_fd.as_fd(),
                name.as_c_str(),
                flags,
                Mode::empty(),
            )?);
        }
    }
    Ok(cleared)
}

fn io_errno(e: std::io::Error) -> nix::errno::Errno {
    nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// `--box-size`: the box directory with a tmpfs of a fixed size mounted over it, in a mount
/// namespace the calling process (the supervisor, before it starts the sandbox) enters alone.
/// The directory's contents are copied in by [`SizedBox::mount`] and back by
/// [`SizedBox::copy_back`]; until then the directory itself is unchanged.
#[derive(Debug)]
pub struct SizedBox {
    /// The box directory, checked (the tmpfs is mounted there).
    pub work_box: WorkBox,
    /// The directory under the tmpfs, for the copies.
    host: OwnedFd,
}

/// Below this, a box is not worth a tmpfs (and a size in the wrong unit is likely).
pub const MIN_BOX_SIZE: u64 = 64 * 1024;

impl SizedBox {
    /// Checks the box like [`prepare`], then moves the calling process into a mount namespace
    /// of its own (nothing it mounts propagates to the host, and everything it mounts goes with
    /// it), mounts there a tmpfs of `size` bytes (mode 0700, the caller's, nosuid, nodev, one
    /// inode per 4 KiB) over the box and copies the box's contents into it. Call it while the
    /// process is single-threaded (unshare of a mount namespace is per thread).
    pub fn mount(path: &Path, size: u64) -> Result<SizedBox, Error> {
        use nix::mount::MsFlags;
        if size < MIN_BOX_SIZE {
            return Err(refuse(
                path,
                format!("--box-size {size} bytes is too small; give at least 64K (e.g. 16M)"),
            ));
        }
        if !nix::unistd::geteuid().is_root() {
            // A mount namespace of the supervisor's own needs CAP_SYS_ADMIN on the host.
            return Err(refuse(
                path,
                "--box-size needs root (its tmpfs is mounted in the supervisor's own mount \
                 namespace); without root drop --box-size: the box is then bounded by your disk \
                 quota and limits.file_size",
            ));
        }
        let work_box = prepare(path)?;
        let host: OwnedFd = nix::fcntl::open(
            &work_box.path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| refuse(path, format!("cannot open it: {e}")))?;
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
            .map_err(|e| Error::io("make the box's mount namespace", e.into()))?;
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_SLAVE,
            None::<&str>,
        )
        .map_err(|e| {
            Error::io(
                "keep the box's tmpfs off the host (mount --make-rslave /)",
                e.into(),
            )
        })?;
        let options = format!(
            "size={size},nr_inodes={},mode=0700,uid={},gid={}",
            (size / 4096).max(64),
            work_box.uid,
            work_box.gid
        );
        nix::mount::mount(
            Some("tmpfs"),
            &work_box.path,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(options.as_str()),
        )
        .map_err(|e| {
            refuse(
                path,
                format!("cannot mount a tmpfs of {size} bytes over it: {e}"),
            )
        })?;
        let sized = SizedBox { work_box, host };
        copy_tree(&sized.host_path(), &sized.work_box.path).map_err(|e| {
            refuse(
                path,
                format!("cannot copy it into its {size}-byte tmpfs: {e}; give a larger --box-size"),
            )
        })?;
        Ok(sized)
    }

    /// The directory under the tmpfs, by a path through this process's descriptor.
    fn host_path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/proc/self/fd/{}", self.host.as_raw_fd()))
    }

    /// Whether the tmpfs has no block left (a write failed, or would fail, with ENOSPC).
    pub fn full(&self) -> bool {
        nix::sys::statvfs::statvfs(&self.work_box.path).is_ok_and(|s| s.blocks_available() == 0)
    }

    /// After the run: the box directory's contents replaced by the tmpfs's (directories,
    /// regular files without setuid/setgid bits, symbolic links as links; anything else is
    /// skipped), made by the caller.
    pub fn copy_back(&self) -> Result<(), Error> {
        let host = self.host_path();
        let fail = |e: std::io::Error| {
            refuse(
                &self.work_box.path,
                format!("cannot copy the box's tmpfs back into it: {e}"),
            )
        };
        for entry in std::fs::read_dir(&host).map_err(fail)? {
            let entry = entry.map_err(fail)?;
            // Without following links: a link is removed, never what it names.
            if entry.file_type().map_err(fail)?.is_dir() {
                std::fs::remove_dir_all(entry.path()).map_err(fail)?;
            } else {
                std::fs::remove_file(entry.path()).map_err(fail)?;
            }
        }
        copy_tree(&self.work_box.path, &host).map_err(fail)
    }
}

/// The tmpfs detached when the box is done with: a process that runs several steps (`batch`'s
/// step workers) would otherwise carry every earlier box's tmpfs into the next step's mount
/// namespace (each `mount` copies the current one). `run` exits right after anyway.
impl Drop for SizedBox {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.work_box.path, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Copies the tree under `from` into the existing directory `to`: directories, regular files
/// (setuid/setgid bits dropped) and symbolic links (as links, never followed); sockets and FIFOs
/// are skipped. Iterative: a deep tree cannot exhaust the stack. Directories get their modes
/// last, so that one without write permission is still filled.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut pending = vec![(from.to_path_buf(), to.to_path_buf())];
    let mut dir_modes = Vec::new();
    while let Some((src, dst)) = pending.pop() {
        for entry in std::fs::read_dir(&src)? {
            let entry = entry?;
            let (s, d) = (entry.path(), dst.join(entry.file_name()));
            let meta = std::fs::symlink_metadata(&s)?;
            let mode = meta.permissions().mode() & 0o1777;
            if meta.is_dir() {
                std::fs::DirBuilder::new().mode(0o700).create(&d)?;
                dir_modes.push((d.clone(), mode));
                pending.push((s, d));
            } else if meta.is_file() {
                std::fs::copy(&s, &d)?;
                std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode))?;
            } else if meta.file_type().is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&s)?, &d)?;
            }
        }
    }
    for (d, mode) in dir_modes.into_iter().rev() {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn private_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        d
    }

    #[test]
    fn a_missing_box_is_made_private_and_checked() {
        let d = private_dir();
        let b = prepare(&d.path().join("box")).unwrap();
        assert_eq!(b.path, std::fs::canonicalize(d.path()).unwrap().join("box"));
        let m = std::fs::metadata(&b.path).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o700);
        assert_eq!(b.uid, nix::unistd::getuid().as_raw());
    }

    #[test]
    fn a_reachable_parent_a_file_and_a_symlink_are_refused_with_the_fix() {
        let d = private_dir();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = prepare(&d.path().join("box")).unwrap_err().to_string();
        assert!(e.starts_with("--box ") && e.contains("chmod go-x"), "{e}");
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(d.path().join("file"), b"").unwrap();
        let e = prepare(&d.path().join("file")).unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");
        std::fs::create_dir(d.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", d.path().join("link")).unwrap();
        let e = prepare(&d.path().join("link")).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
    }

    #[test]
    fn hand_back_clears_set_id_bits_only() {
        let d = private_dir();
        let b = prepare(&d.path().join("box")).unwrap();
        std::fs::create_dir_all(b.path.join("a/b")).unwrap();
        for (name, mode) in [("s", 0o4755), ("a/g", 0o2755), ("a/b/plain", 0o755)] {
            std::fs::write(b.path.join(name), b"x").unwrap();
            std::fs::set_permissions(b.path.join(name), std::fs::Permissions::from_mode(mode))
                .unwrap();
        }
        std::os::unix::fs::symlink("/usr/bin/passwd", b.path.join("link")).unwrap();
        assert_eq!(hand_back(&b).unwrap(), HandedBack { cleared: 2 });
        for (name, mode) in [("s", 0o755), ("a/g", 0o755), ("a/b/plain", 0o755)] {
            let m = std::fs::metadata(b.path.join(name)).unwrap().mode() & 0o7777;
            assert_eq!(m, mode, "{name}");
        }
    }

    #[test]
    fn copy_tree_keeps_links_as_links_and_drops_set_id_bits() {
        let from = private_dir();
        let to = private_dir();
        std::fs::create_dir_all(from.path().join("ro/sub")).unwrap();
        std::fs::write(from.path().join("ro/sub/f"), b"data").unwrap();
        std::fs::write(from.path().join("s"), b"x").unwrap();
        std::fs::set_permissions(
            from.path().join("s"),
            std::fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", from.path().join("link")).unwrap();
        std::fs::set_permissions(
            from.path().join("ro"),
            std::fs::Permissions::from_mode(0o555),
        )
        .unwrap();
        copy_tree(from.path(), to.path()).unwrap();
        let t = to.path();
        assert_eq!(std::fs::read(t.join("ro/sub/f")).unwrap(), b"data");
        assert_eq!(
            std::fs::metadata(t.join("ro")).unwrap().mode() & 0o7777,
            0o555
        );
        assert_eq!(
            std::fs::metadata(t.join("s")).unwrap().mode() & 0o7777,
            0o755
        );
        assert_eq!(
            std::fs::read_link(t.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        for d in [from.path(), t] {
            std::fs::set_permissions(d.join("ro"), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}
