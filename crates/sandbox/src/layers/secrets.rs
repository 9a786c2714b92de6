//! Secrets layer: `--secret NAME=FILE` appears read-only at /run/secrets/NAME on a tmpfs that
//! exists only in the sandbox's private mount namespace. The supervisor reads the host file
//! before fork; the sandbox writes it into memory-backed storage, then makes the tmpfs
//! read-only. Because every mount in the sandbox is private (made so before and after the
//! binds), this tmpfs can never propagate to the host, whatever a bind mount's propagation was.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use watertight_sys::mount::{ATTR_NODEV, ATTR_NOEXEC, ATTR_NOSUID, ATTR_RDONLY};

use crate::error::Error;
use crate::layers::mount::{MountOp, SCRATCH_FLAGS};

#[derive(Debug, Clone)]
pub struct Secret {
    pub name: String,
    pub contents: Vec<u8>,
}

/// Reads `NAME=FILE` into a secret; the error says which part is wrong.
pub fn parse(spec: &str) -> Result<Secret, Error> {
    let (name, file) = spec
        .split_once('=')
        .ok_or_else(|| Error::Config(format!("--secret {spec:?}: expected NAME=HOSTFILE")))?;
    if name.is_empty() || name.contains('/') || name == "." || name == ".." || name.len() > 255 {
        return Err(Error::Config(format!(
            "--secret {spec:?}: NAME must be a plain file name"
        )));
    }
    let contents = std::fs::read(file)
        .map_err(|e| Error::Config(format!("--secret {name}: cannot read {file}: {e}")))?;
    Ok(Secret {
        name: name.into(),
        contents,
    })
}

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

    #[test]
    fn bad_specs_are_named() {
        assert!(parse("nope")
            .unwrap_err()
            .to_string()
            .contains("NAME=HOSTFILE"));
        assert!(parse("../x=/etc/hostname")
            .unwrap_err()
            .to_string()
            .contains("plain file name"));
        assert!(parse("k=/no/such/file")
            .unwrap_err()
            .to_string()
            .contains("/no/such/file"));
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
