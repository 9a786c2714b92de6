//! Checking a bundle: the signature over the manifest's exact bytes first, then every listed
//! file's size and SHA-256 in manifest order, then that no file was added. The first problem
//! found is the error, naming its file.

use crate::error::Error;
use crate::manifest::{Manifest, SignatureFile, MANIFEST_FILE, SIGNATURE_FILE};
use crate::record::{CaptureRecord, CAPTURE_FILE};
use crate::signing;
use crate::task::TASKS_ARCHIVE;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use watertight_integrity::VerifyingKey;

/// What a successful [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The sandbox the bundle is of.
    pub sandbox_id: String,
    /// RFC 3339 UTC time of the capture.
    pub created: String,
    /// `sha256:<hex>` fingerprint of the signing key.
    pub signer: String,
    /// Files listed in the manifest, every one checked.
    pub files: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// The evidence budget, when the signed manifest says it cut the evidence short.
    pub truncated: Option<u64>,
}

/// Reads and checks `bundle/manifest` against its signature; returns the parsed manifest.
pub fn read_signed_manifest(bundle: &Path, pubkey: &VerifyingKey) -> Result<Manifest, Error> {
    let manifest_path = bundle.join(MANIFEST_FILE);
    let sig_path = bundle.join(SIGNATURE_FILE);
    if !bundle.is_dir() || manifest_path.symlink_metadata().is_err() {
        return Err(Error::NotABundle {
            path: bundle.to_path_buf(),
        });
    }
    let body = read_limited(&manifest_path, 256 << 20)?;
    let sig_bytes = read_limited(&sig_path, 4096).map_err(|e| match e {
        Error::Read { path, source } => Error::Missing {
            path,
            reason: source.to_string(),
        },
        other => other,
    })?;
    let sig = SignatureFile::parse(&sig_bytes).map_err(|reason| Error::SignatureFormat {
        path: sig_path.clone(),
        reason,
    })?;
    let given = pubkey.fingerprint();
    if sig.signer != given {
        return Err(Error::WrongKey {
            path: sig_path,
            signer: sig.signer,
            given,
        });
    }
    if !signing::verify(pubkey, &body, &sig.signature) {
        return Err(Error::BadSignature {
            manifest: manifest_path,
            signature: sig_path,
            key: given,
        });
    }
    // Signed bytes that do not parse would mean our own writer is broken; still report cleanly.
    let manifest = Manifest::parse(&body).map_err(|e| Error::ManifestFormat {
        path: manifest_path.clone(),
        line: e.line,
        reason: e.reason,
    })?;
    if manifest.signer != given {
        return Err(Error::WrongKey {
            path: manifest_path,
            signer: manifest.signer,
            given,
        });
    }
    Ok(manifest)
}

/// Checks a bundle: the signature with `pubkey`, then every file's size and hash, and that no file was added.
pub fn verify(bundle: &Path, pubkey: &VerifyingKey) -> Result<VerifyReport, Error> {
    let manifest = read_signed_manifest(bundle, pubkey)?;

    // Hash in parallel, report the first failure in manifest order.
    let results: Vec<Result<(), Error>> = manifest
        .files
        .par_iter()
        .map(|f| {
            let path = bundle.join(&f.path);
            let (size, digest) = hash_file(&path)?;
            if size != f.size {
                return Err(Error::SizeMismatch {
                    path,
                    expected: f.size,
                    actual: size,
                });
            }
            if digest != f.sha256 {
                return Err(Error::HashMismatch {
                    path,
                    expected: hex::encode(f.sha256),
                    actual: hex::encode(digest),
                });
            }
            Ok(())
        })
        .collect();
    if let Some(first) = results.into_iter().find_map(Result::err) {
        return Err(name_altered_member(bundle, first));
    }

    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    if let Some(extra) = find_unlisted(bundle, &listed)? {
        return Err(Error::Unlisted { path: extra });
    }
    Ok(VerifyReport {
        sandbox_id: manifest.sandbox_id,
        created: manifest.created,
        signer: manifest.signer,
        files: manifest.files.len(),
        bytes: manifest.files.iter().map(|f| f.size).sum(),
        truncated: manifest.truncated,
    })
}

/// When `tasks.tar` does not match, names the member inside it that changed, from the per-member
/// hashes in `capture.json` (which sorts before `tasks.tar`, so it was already found intact).
/// Falls back to the archive-level error when the damage is in a header or padding.
fn name_altered_member(bundle: &Path, err: Error) -> Error {
    let archive = bundle.join(TASKS_ARCHIVE);
    let at_archive = match &err {
        Error::HashMismatch { path, .. } | Error::SizeMismatch { path, .. } => *path == archive,
        _ => false,
    };
    if !at_archive {
        return err;
    }
    let Some(record) = std::fs::read(bundle.join(CAPTURE_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<CaptureRecord>(&b).ok())
    else {
        return err;
    };
    let mut expected: HashMap<String, (u64, &str)> = HashMap::new();
    for task in &record.tasks {
        for f in &task.files {
            expected.insert(
                format!("tasks/{}/{}", task.pid, f.name),
                (f.size, f.sha256.as_str()),
            );
        }
    }
    let Ok(file) = std::fs::File::open(&archive) else {
        return err;
    };
    let mut tar = tar::Archive::new(file);
    let Ok(entries) = tar.entries() else {
        return err;
    };
    for entry in entries {
        let Ok(mut entry) = entry else {
            return err;
        };
        let member = match entry.path() {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(_) => return err,
        };
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = [0u8; 16 * 1024];
        loop {
            match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    hasher.update(&buf[..n]);
                    size += n as u64;
                }
                Err(_) => return err,
            }
        }
        let reason = match expected.get(&member) {
            None => Some("is not in capture.json".to_string()),
            Some((want_size, _)) if *want_size != size => {
                Some(format!("is {size} bytes, capture.json says {want_size}"))
            }
            Some((_, want_hash)) if *want_hash != hex::encode(hasher.finalize()) => {
                Some("does not match its sha256 in capture.json".to_string())
            }
            Some(_) => None,
        };
        if let Some(reason) = reason {
            return Error::MemberMismatch {
                archive,
                member,
                reason,
            };
        }
    }
    err
}

/// Size and SHA-256 of a regular file, refusing symlinks (a swapped-in link is tampering).
fn hash_file(path: &Path) -> Result<(u64, [u8; 32]), Error> {
    let missing = |reason: String| Error::Missing {
        path: path.to_path_buf(),
        reason,
    };
    let meta = path
        .symlink_metadata()
        .map_err(|e| missing(e.to_string()))?;
    if !meta.file_type().is_file() {
        return Err(missing("not a regular file".into()));
    }
    let mut file = std::fs::File::open(path).map_err(|e| missing(e.to_string()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| missing(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hasher.finalize().into()))
}

/// The first file (sorted walk) that is neither listed nor the manifest or its signature.
fn find_unlisted(bundle: &Path, listed: &BTreeSet<&str>) -> Result<Option<PathBuf>, Error> {
    for entry in walkdir::WalkDir::new(bundle)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
    {
        let entry = entry.map_err(|e| Error::Read {
            path: e.path().unwrap_or(bundle).to_path_buf(),
            source: e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("walk error")),
        })?;
        if entry.file_type().is_dir() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(bundle)
            .expect("walkdir yields paths under its root");
        let Some(rel) = rel.to_str() else {
            return Ok(Some(entry.path().to_path_buf()));
        };
        if rel == MANIFEST_FILE || rel == SIGNATURE_FILE || listed.contains(rel) {
            continue;
        }
        return Ok(Some(entry.path().to_path_buf()));
    }
    Ok(None)
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    let file = std::fs::File::open(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(Error::Read {
            path: path.to_path_buf(),
            source: std::io::Error::other(format!("larger than {limit} bytes")),
        });
    }
    Ok(bytes)
}
