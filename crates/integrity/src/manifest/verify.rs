//! Checking an image tree against its signed manifest.

use super::scan::{self, Found};
use super::{Entry, SignedManifest};
use crate::keys::VerifyingKey;
use crate::{Error, Result, TreeProblem};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A regular file whose content matched the manifest, with the inode that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedFile {
    /// Relative to [`VerifiedTree::root`].
    pub path: String,
    /// `st_dev` (user-space encoding) of the inode that was hashed.
    pub dev: u64,
    /// Inode number of the file that was hashed.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// The inode's change time (seconds, nanoseconds) read before hashing. Any write, truncate,
    /// chmod or chown sets it to the current time (and the kernel makes it differ from a value
    /// that was read), so the exec gate compares it to tell a verified file rewritten in place
    /// (same inode) from the one that was hashed.
    pub ctime: (i64, u32),
}

/// The outcome of a successful [`verify_tree`]. The inode generation is not read here (it needs
/// an ioctl); [`crate::ExecGate::attach`] reads `(dev, ino, generation)` from the kernel's own
/// inode for each of these files and refuses if `(dev, ino)` no longer match.
#[derive(Debug, Clone)]
pub struct VerifiedTree {
    /// The tree's root, as given.
    pub root: PathBuf,
    /// Every verified regular file, sorted by path.
    pub files: Vec<VerifiedFile>,
    /// Non-executable regular files present in the tree but absent from the manifest. They are
    /// tolerated (logs, caches) but are NOT verified: the exec gate refuses to map them as code.
    pub unlisted: Vec<String>,
}

/// Verifies the signature of `signed` with `pubkey`, then `root` against the manifest: every
/// listed path present with the same kind, mode, size, sha256 and symlink target; no unlisted
/// executable, device node, FIFO, socket or setuid/setgid file. The error names the first bad
/// path in path order and counts the others.
pub fn verify_tree(
    root: &Path,
    signed: &SignedManifest,
    pubkey: &VerifyingKey,
) -> Result<VerifiedTree> {
    let manifest = signed.verify(pubkey)?;
    let found = scan::scan(root)?;
    let mut on_disk: HashMap<&str, &Found> =
        found.iter().map(|f| (f.path.as_str(), &f.found)).collect();

    let mut problems: Vec<(String, TreeProblem)> = Vec::new();
    let mut to_hash: Vec<(&str, u64)> = Vec::new();
    let mut expected_hash: Vec<(&str, u32, u64)> = Vec::new();
    for entry in &manifest.entries {
        let path = entry.path();
        let Some(actual) = on_disk.remove(path) else {
            problems.push((path.to_string(), TreeProblem::Missing));
            continue;
        };
        let kind_changed = |actual_kind: &'static str| TreeProblem::KindChanged {
            expected: entry.kind_name(),
            actual: actual_kind,
        };
        match (entry, actual) {
            (Entry::Dir { mode, .. }, Found::Dir { mode: m }) => {
                if mode != m {
                    problems.push((
                        path.into(),
                        TreeProblem::ModeChanged {
                            expected: *mode,
                            actual: *m,
                        },
                    ));
                }
            }
            (Entry::File { mode, size, .. }, Found::File { mode: m, size: s }) => {
                if mode != m {
                    problems.push((
                        path.into(),
                        TreeProblem::ModeChanged {
                            expected: *mode,
                            actual: *m,
                        },
                    ));
                } else if size != s {
                    problems.push((
                        path.into(),
                        TreeProblem::SizeChanged {
                            expected: *size,
                            actual: *s,
                        },
                    ));
                } else {
                    to_hash.push((path, *size));
                    expected_hash.push((path, *mode, *size));
                }
            }
            (Entry::Symlink { target, .. }, Found::Symlink { target: t }) => {
                if target != t {
                    problems.push((
                        path.into(),
                        TreeProblem::TargetChanged {
                            expected: target.clone(),
                            actual: t.clone(),
                        },
                    ));
                }
            }
            (_, other) => problems.push((path.into(), kind_changed(found_kind(other)))),
        }
    }

    let mut unlisted = Vec::new();
    for f in &found {
        let Some(actual) = on_disk.get(f.path.as_str()) else {
            continue;
        };
        match actual {
            Found::Special { kind } => {
                problems.push((f.path.clone(), TreeProblem::ExtraSpecial { kind }))
            }
            Found::File { mode, .. } if mode & 0o6000 != 0 => problems.push((
                f.path.clone(),
                TreeProblem::ExtraSpecial {
                    kind: "setuid/setgid file",
                },
            )),
            Found::File { mode, .. } if mode & 0o111 != 0 => {
                problems.push((f.path.clone(), TreeProblem::ExtraExecutable))
            }
            Found::File { .. } => unlisted.push(f.path.clone()),
            // Unlisted directories and symlinks hold no code of their own.
            Found::Dir { .. } | Found::Symlink { .. } => {}
        }
    }

    let expected_sha: HashMap<&str, &str> = manifest
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::File { path, sha256, .. } => Some((path.as_str(), sha256.as_str())),
            _ => None,
        })
        .collect();
    let mut files = Vec::with_capacity(to_hash.len());
    for ((path, mode, size), hashed) in expected_hash
        .into_iter()
        .zip(scan::hash_all(root, &to_hash))
    {
        let hashed = match hashed {
            Ok(h) => h,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                problems.push((path.into(), TreeProblem::Missing));
                continue;
            }
            Err(e) => return Err(e),
        };
        let expected = expected_sha[path];
        if hashed.sha256 != expected {
            problems.push((
                path.into(),
                TreeProblem::ContentAltered {
                    expected: expected.into(),
                    actual: hashed.sha256,
                },
            ));
        } else if hashed.size != size || hashed.mode != mode {
            // Changed between the scan and the read.
            problems.push((
                path.into(),
                TreeProblem::SizeChanged {
                    expected: size,
                    actual: hashed.size,
                },
            ));
        } else {
            files.push(VerifiedFile {
                path: path.into(),
                dev: hashed.dev,
                ino: hashed.ino,
                size,
                mode,
                ctime: hashed.ctime,
            });
        }
    }

    if let Some(first) = problems
        .iter()
        .min_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()))
    {
        return Err(Error::Tree {
            root: root.to_path_buf(),
            path: first.0.clone(),
            problem: first.1.clone(),
            others: problems.len() - 1,
        });
    }
    Ok(VerifiedTree {
        root: root.to_path_buf(),
        files,
        unlisted,
    })
}

fn found_kind(found: &Found) -> &'static str {
    match found {
        Found::Dir { .. } => "directory",
        Found::File { .. } => "regular file",
        Found::Symlink { .. } => "symlink",
        Found::Special { kind } => kind,
    }
}

impl VerifiedTree {
    /// Absolute path of a verified file.
    pub fn path_of(&self, file: &VerifiedFile) -> PathBuf {
        scan::full_path(&self.root, &file.path)
    }
}
