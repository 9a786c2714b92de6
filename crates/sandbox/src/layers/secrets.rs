//! Secrets layer: `--secret NAME=FILE` appears read-only at /run/secrets/NAME on a tmpfs that
//! exists only in the sandbox's private mount namespace. The supervisor reads the host file
//! before fork; the sandbox writes it into memory-backed storage, then makes the tmpfs
//! read-only. Because every mount in the sandbox is private (made so before and after the
//! binds), this tmpfs can never propagate to the host, whatever a bind mount's propagation was.
//!
//! The host file is read by root, so the path is untrusted input even when the caller is not:
//! a submitter may control a directory on it. The file is opened once, with `openat2`
//! `RESOLVE_NO_SYMLINKS` (a symbolic link anywhere in the path, the last component or a
//! directory, is refused: pass the real path) and `O_PATH` (opening never has a side effect:
//! no device is opened, no FIFO blocks). That one descriptor is checked (a regular file, at most
//! the size limit) and read through (`/proc/self/fd/N` reopens the same inode): nothing can
//! swap the file between the check and the read. The size limit bounds the supervisor's memory
//! and the tmpfs: [`DEFAULT_SIZE_LIMIT`] per secret, raised with `--secret-size-limit`.

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::mount::MsFlags;
use watertight_sys::mount::{ATTR_NODEV, ATTR_NOEXEC, ATTR_NOSUID, ATTR_RDONLY};
use watertight_sys::text::quote;

use crate::error::Error;
use crate::layers::mount::{MountOp, SCRATCH_FLAGS};

/// Bytes one secret may hold unless the caller raises it (`--secret-size-limit`).
pub const DEFAULT_SIZE_LIMIT: u64 = 1 << 20;

/// One `--secret NAME=FILE`, read by the supervisor before fork.
#[derive(Debug, Clone)]
pub struct Secret {
    /// The file name under /run/secrets: a plain name (UTF-8, no '/' or control characters).
    pub name: String,
    /// The host file's bytes, at most the size limit.
    pub contents: Vec<u8>,
}

/// Reads `NAME=FILE` into a secret of at most `size_limit` bytes; the error names the secret,
/// what is wrong and the fix.
pub fn parse(spec: &OsStr, size_limit: u64) -> Result<Secret, Error> {
    let bytes = spec.as_bytes();
    let Some(eq) = bytes.iter().position(|&b| b == b'=') else {
        return Err(Error::Config(format!(
            "--secret {}: expected NAME=HOSTFILE",
            quote(bytes)
        )));
    };
    let (name, file) = (&bytes[..eq], Path::new(OsStr::from_bytes(&bytes[eq + 1..])));
    let name = match std::str::from_utf8(name) {
        Ok(n)
            if !n.is_empty()
                && !n.contains('/')
                && n != "."
                && n != ".."
                && n.len() <= 255
                && !n.chars().any(char::is_control) =>
        {
            n
        }
        _ => {
            return Err(Error::Config(format!(
                "--secret {}: NAME must be a plain file name (UTF-8, no '/' or control characters)",
                quote(bytes)
            )))
        }
    };
    let contents = read_regular(file, size_limit).map_err(|why| {
        Error::Config(format!(
            "--secret {}: {} {why}",
            quote(name.as_bytes()),
            quote(file.as_os_str().as_bytes())
        ))
    })?;
    Ok(Secret {
        name: name.into(),
        contents,
    })
}

/// The contents of the regular file at `path` (no symbolic link on the way), at most `limit`
/// bytes; otherwise the rest of a sentence after the path: what is wrong and the fix.
fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
    let fd = nix::fcntl::openat2(nix::fcntl::AT_FDCWD, path, how).map_err(|e| match e {
        nix::errno::Errno::ELOOP => "is a symbolic link or has one in its path (secrets are never read through symlinks): pass the real path (realpath FILE)".to_string(),
        nix::errno::Errno::ENOSYS => "cannot be opened safely: this kernel lacks openat2 (Linux 5.6 or later is needed for --secret)".to_string(),
        e => format!("cannot be opened: {} (pass an existing regular file)", e.desc()),
    })?;
    let pinned = std::fs::File::from(fd);
    let meta = pinned
        .metadata()
        .map_err(|e| format!("cannot be examined: {e}"))?;
    let ft = meta.file_type();
    let kind = if ft.is_file() {
        None
    } else if ft.is_symlink() {
        Some("a symbolic link (secrets are never read through symlinks): pass the real path (realpath FILE)")
    } else if ft.is_dir() {
        Some("a directory: pass a regular file")
    } else if ft.is_char_device() || ft.is_block_device() {
        Some("a device: pass a regular file")
    } else if ft.is_fifo() {
        Some("a FIFO: pass a regular file")
    } else {
        Some("a socket: pass a regular file")
    };
    if let Some(kind) = kind {
        return Err(format!("is {kind}"));
    }
    let too_big = |n: u64| {
        format!("is {n} bytes or more, over the secret size limit of {limit} bytes: raise it with --secret-size-limit SIZE")
    };
    if meta.len() > limit {
        return Err(too_big(meta.len()));
    }
    // The very inode checked above (an O_PATH descriptor cannot be read from): the magic link
    // names it, not the path.
    let file = std::fs::File::open(format!("/proc/self/fd/{}", pinned.as_raw_fd()))
        .map_err(|e| format!("cannot be read: {e}"))?;
    // The size can grow after the check, or be wrong (procfs): never read past the limit.
    let mut contents = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut contents)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if contents.len() as u64 > limit {
        return Err(too_big(limit + 1));
    }
    Ok(contents)
}

/// The /run/secrets mounts under `root`: a noexec tmpfs sized for the secrets, each secret
/// written mode 0400 by the sandbox's uid, then the tmpfs made read-only. Nothing without
/// secrets.
pub fn plan(secrets: &[Secret], root: &Path, _uid: u32) -> Result<Vec<MountOp>, Error> {
    if secrets.is_empty() {
        return Ok(Vec::new());
    }
    let dir: PathBuf = root.join("run/secrets");
    let total: u64 = secrets.iter().map(|s| s.contents.len() as u64 + 4096).sum();
    let mut ops = vec![
        MountOp::MkdirAll {
            path: dir.clone(),
            mode: 0o755,
        },
        MountOp::Tmpfs {
            target: dir.clone(),
            size: total + 4096,
            mode: 0o755,
            flags: SCRATCH_FLAGS | MsFlags::MS_NOEXEC,
        },
    ];
    for s in secrets {
        // Created by the sandbox's own uid (the mount layer runs as it), readable only by it.
        ops.push(MountOp::WriteFile {
            path: dir.join(&s.name),
            mode: 0o400,
            contents: s.contents.clone(),
        });
    }
    ops.push(MountOp::SetAttributes {
        target: dir,
        attrs: ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC,
    });
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(spec: &str) -> Result<Secret, Error> {
        parse(OsStr::new(spec), DEFAULT_SIZE_LIMIT)
    }

    fn refusal(spec: &OsStr, limit: u64) -> String {
        parse(spec, limit).unwrap_err().to_string()
    }

    #[test]
    fn bad_specs_are_named() {
        assert!(parse_str("nope")
            .unwrap_err()
            .to_string()
            .contains("NAME=HOSTFILE"));
        assert!(parse_str("../x=/etc/hostname")
            .unwrap_err()
            .to_string()
            .contains("plain file name"));
        assert!(parse_str("a\nb=/etc/hostname")
            .unwrap_err()
            .to_string()
            .contains("plain file name"));
        assert!(parse_str("k=/no/such/file")
            .unwrap_err()
            .to_string()
            .contains("\"/no/such/file\" cannot be opened"));
    }

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::write(&real, b"abc").unwrap();
        let spec = |p: &Path| {
            let mut s = std::ffi::OsString::from("k=");
            s.push(p);
            s
        };
        assert_eq!(parse(&spec(&real), 3).unwrap().contents, b"abc");
        assert!(refusal(&spec(&real), 2).contains("over the secret size limit of 2 bytes"));

        // A symbolic link as the last component, and one among the directories.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(refusal(&spec(&link), 3).contains("symbolic link"));
        let linked_dir = dir.path().join("dirlink");
        std::os::unix::fs::symlink(dir.path(), &linked_dir).unwrap();
        assert!(refusal(&spec(&linked_dir.join("real")), 3).contains("symbolic link"));

        // Not regular files: a directory, a device, a FIFO (opening it must not block).
        assert!(refusal(&spec(dir.path()), 3).contains("is a directory"));
        assert!(refusal(&spec(Path::new("/dev/null")), 3).contains("is a device"));
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(refusal(&spec(&fifo), 3).contains("is a FIFO"));

        // A file whose size says 0 but holds more (procfs) is cut at the limit, never read whole.
        assert!(
            refusal(&spec(Path::new("/proc/cpuinfo")), 8).contains("over the secret size limit")
        );

        // A path that is not UTF-8 is read; the message shows its bytes escaped.
        let odd = dir.path().join(OsStr::from_bytes(b"\xff\xfe"));
        std::fs::write(&odd, b"x").unwrap();
        assert_eq!(parse(&spec(&odd), 3).unwrap().contents, b"x");
        assert!(refusal(&spec(&odd), 0).contains("\\xff\\xfe\" is"));
    }

    #[test]
    fn secrets_end_read_only() {
        let s = Secret {
            name: "token".into(),
            contents: b"abc".to_vec(),
        };
        let ops = plan(&[s], Path::new("/r"), 0).unwrap();
        assert!(
            matches!(ops.last(), Some(MountOp::SetAttributes { attrs, .. }) if attrs & ATTR_RDONLY != 0)
        );
    }
}
