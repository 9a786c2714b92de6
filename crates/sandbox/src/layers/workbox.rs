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
//! hard bound without quotas, put the box on a file system of the size wanted (a tmpfs or a loop
//! mount the grader made).

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
    watertight_sys::process::user_namespace_with_maps(
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
}
