//! Finding a cgroup v2 directory and its depth from its id (the id is the directory's inode
//! number in the cgroup2 filesystem, the value `bpf_get_current_cgroup_id` returns).

use crate::{Error, Result};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where cgroup2 is mounted: /sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid.
pub(crate) fn cgroup2_mount() -> Result<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| Error::Cgroup {
        what: "/proc/self/mountinfo".into(),
        reason: e.to_string(),
    })?;
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if right.split_whitespace().next() == Some("cgroup2") {
            if let Some(mount_point) = left.split_whitespace().nth(4) {
                return Ok(PathBuf::from(unescape_mountinfo(mount_point)));
            }
        }
    }
    Err(Error::Cgroup {
        what: "cgroup2".into(),
        reason: "no cgroup2 filesystem is mounted; mount one (mount -t cgroup2 none /sys/fs/cgroup/unified)".into(),
    })
}

fn unescape_mountinfo(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup id (inode number) and depth below the cgroup2 root of `dir`.
pub(crate) fn id_and_level(dir: &Path) -> Result<(u64, u32)> {
    let mount = cgroup2_mount()?;
    let meta = std::fs::metadata(dir).map_err(|e| Error::Cgroup {
        what: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let canonical = dir.canonicalize().map_err(|e| Error::Cgroup {
        what: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let rel = canonical.strip_prefix(&mount).map_err(|_| Error::Cgroup {
        what: dir.display().to_string(),
        reason: format!("is not beneath the cgroup2 mount {}", mount.display()),
    })?;
    let level = rel.components().count() as u32;
    Ok((meta.ino(), level))
}

/// The directory of the cgroup with id `id` (a walk of the cgroup2 tree).
pub(crate) fn find_by_id(id: u64) -> Result<PathBuf> {
    let mount = cgroup2_mount()?;
    for entry in walkdir::WalkDir::new(&mount)
        .same_file_system(true)
        .into_iter()
        .flatten()
    {
        if entry.file_type().is_dir() && entry.metadata().map(|m| m.ino() == id).unwrap_or(false) {
            return Ok(entry.into_path());
        }
    }
    Err(Error::Cgroup {
        what: format!("id {id}"),
        reason: format!("no cgroup with that id under {}; pass the inode number of the sandbox's cgroup2 directory", mount.display()),
    })
}
