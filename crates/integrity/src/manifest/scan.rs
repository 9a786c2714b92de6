//! Walks an image tree (without following symlinks or crossing into other mounts) and hashes its
//! regular files in parallel.

use crate::hash::sha256_file;
use crate::{Error, Result};
use rayon::prelude::*;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What one path of the tree is, as seen by `lstat`.
#[derive(Debug, Clone)]
pub(crate) enum Found {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        size: u64,
    },
    Symlink {
        target: String,
    },
    /// Device node, FIFO or socket.
    Special {
        kind: &'static str,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct FoundPath {
    /// Relative to the root, `/`-separated, never empty.
    pub path: String,
    pub found: Found,
}

/// One hashed regular file, with the identity of the inode that was actually read.
#[derive(Debug, Clone)]
pub(crate) struct Hashed {
    pub sha256: String,
    pub size: u64,
    pub mode: u32,
    pub dev: u64,
    pub ino: u64,
    /// The inode's change time when it was opened for hashing (before the read).
    pub ctime: (i64, u32),
}

pub(crate) fn check_root(root: &Path) -> Result<()> {
    let meta = std::fs::metadata(root).map_err(|source| Error::Io {
        path: root.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(Error::NotADirectory {
            root: root.to_path_buf(),
        });
    }
    Ok(())
}

/// Every path beneath `root`, sorted by path bytes.
pub(crate) fn scan(root: &Path) -> Result<Vec<FoundPath>> {
    check_root(root)?;
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .same_file_system(true);
    for entry in walker {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            Error::Io {
                path,
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("filesystem loop")),
            }
        })?;
        let rel = entry
            .path()
            .strip_prefix(root)
            .expect("walkdir yields paths beneath its root");
        let path = relative_string(rel, entry.path())?;
        let meta = entry.metadata().map_err(|e| Error::Io {
            path: entry.path().to_path_buf(),
            source: e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("metadata")),
        })?;
        let ft = meta.file_type();
        let mode = meta.mode() & 0o7777;
        let found = if ft.is_dir() {
            Found::Dir { mode }
        } else if ft.is_file() {
            Found::File {
                mode,
                size: meta.len(),
            }
        } else if ft.is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(|source| Error::Io {
                path: entry.path().to_path_buf(),
                source,
            })?;
            let target = target
                .to_str()
                .ok_or_else(|| Error::NonUtf8Path {
                    path: entry.path().to_path_buf(),
                })?
                .to_string();
            Found::Symlink { target }
        } else {
            Found::Special {
                kind: special_kind(&ft),
            }
        };
        out.push(FoundPath { path, found });
    }
    out.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(out)
}

fn special_kind(ft: &std::fs::FileType) -> &'static str {
    if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

fn relative_string(rel: &Path, full: &Path) -> Result<String> {
    let mut parts = Vec::new();
    for c in rel.components() {
        let s = c.as_os_str().to_str().ok_or_else(|| Error::NonUtf8Path {
            path: full.to_path_buf(),
        })?;
        parts.push(s);
    }
    Ok(parts.join("/"))
}

/// Opens a regular file without following a symlink swapped in since the scan.
pub(crate) fn open_regular(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits() | nix::fcntl::OFlag::O_NOCTTY.bits())
        .open(path)
}

/// Hashes one file, reporting the identity and metadata of the inode actually read (fstat on the
/// open descriptor, so a rename race cannot pair one file's hash with another's inode).
pub(crate) fn hash_one(root: &Path, rel: &str) -> Result<Hashed> {
    let full = root.join(rel);
    let io = |source| Error::Io {
        path: full.clone(),
        source,
    };
    let mut file = open_regular(&full).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(Error::Io {
            path: full.clone(),
            source: std::io::Error::other("is no longer a regular file"),
        });
    }
    let (sha256, size) = sha256_file(&mut file, meta.len()).map_err(io)?;
    Ok(Hashed {
        sha256,
        size,
        mode: meta.mode() & 0o7777,
        dev: meta.dev(),
        ino: meta.ino(),
        ctime: (meta.ctime(), meta.ctime_nsec() as u32),
    })
}

/// Hashes `paths` (relative to `root`) on rayon's pool, keeping input order. Bigger files start
/// first so one large file does not finish alone at the end.
pub(crate) fn hash_all(root: &Path, paths: &[(&str, u64)]) -> Vec<Result<Hashed>> {
    let mut order: Vec<usize> = (0..paths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(paths[i].1));
    let mut results: Vec<(usize, Result<Hashed>)> = order
        .into_par_iter()
        .with_max_len(1)
        .map(|i| (i, hash_one(root, paths[i].0)))
        .collect();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

pub(crate) fn full_path(root: &Path, rel: &str) -> PathBuf {
    root.join(rel)
}
