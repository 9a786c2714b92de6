//! Signed image manifests.
//!
//! Encoding (one file, two lines, both ASCII or UTF-8):
//!
//! ```text
//! {"format":"watertight-manifest/1","entries":[{"kind":"dir","path":"bin","mode":493},...]}
//! watertight-signature ed25519 sha256:<fingerprint hex> <base64 signature>
//! ```
//!
//! The first line is the canonical body: compact JSON with fields in a fixed order, entries
//! sorted by path bytes, no duplicates. The signature is ed25519 over exactly those bytes (without
//! the newline). Parsing re-encodes the body and refuses any file that is not byte-identical to its
//! canonical form, so one manifest has exactly one accepted encoding.

pub(crate) mod scan;
pub mod verify;

use crate::keys::{SigningKey, VerifyingKey};
use crate::{Error, Result};
use base64::Engine;
use scan::{Found, FoundPath};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// The `format` value of manifests this version writes and reads.
pub const FORMAT: &str = "watertight-manifest/1";
const SIGNATURE_PREFIX: &str = "watertight-signature ed25519 ";

/// One path of the image. Paths are relative to the image root, `/`-separated, UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Entry {
    /// A directory.
    Dir {
        /// Relative to the image root.
        path: String,
        /// Permission bits.
        mode: u32,
    },
    /// A regular file, with its size and content hash.
    File {
        /// Relative to the image root.
        path: String,
        /// Permission bits.
        mode: u32,
        /// Size in bytes.
        size: u64,
        /// Hex SHA-256 of the content.
        sha256: String,
    },
    /// A symbolic link.
    Symlink {
        /// Relative to the image root.
        path: String,
        /// Where it points, as stored in the link.
        target: String,
    },
}

impl Entry {
    /// The entry's path, whatever its kind.
    pub fn path(&self) -> &str {
        match self {
            Entry::Dir { path, .. } | Entry::File { path, .. } | Entry::Symlink { path, .. } => {
                path
            }
        }
    }

    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            Entry::Dir { .. } => "directory",
            Entry::File { .. } => "regular file",
            Entry::Symlink { .. } => "symlink",
        }
    }
}

/// The content of an image tree: every directory, regular file and symlink beneath its root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The format tag, [`FORMAT`]; anything else is refused.
    pub format: String,
    /// Every entry, sorted by path.
    pub entries: Vec<Entry>,
}

/// A manifest with its ed25519 signature over the exact encoded body.
#[derive(Debug, Clone)]
pub struct SignedManifest {
    body: Vec<u8>,
    manifest: Manifest,
    signer: String,
    signature: ed25519_dalek::Signature,
}

impl Manifest {
    /// Scans and hashes `root` and signs the result. Refuses (naming the file) device nodes,
    /// FIFOs, sockets and setuid/setgid files: they are not stripped, because the tree the
    /// sandbox serves would still contain them.
    pub fn create(root: &Path, key: &SigningKey) -> Result<SignedManifest> {
        Ok(Self::scan(root)?.sign(key))
    }

    /// Scans and hashes `root` (parallel over files) without signing.
    pub fn scan(root: &Path) -> Result<Manifest> {
        let found = scan::scan(root)?;
        refuse_dangerous(root, &found)?;
        let files: Vec<(&str, u64)> = found
            .iter()
            .filter_map(|f| match f.found {
                Found::File { size, .. } => Some((f.path.as_str(), size)),
                _ => None,
            })
            .collect();
        let mut hashed = scan::hash_all(root, &files).into_iter();
        let mut entries = Vec::with_capacity(found.len());
        for FoundPath { path, found } in found {
            entries.push(match found {
                Found::Dir { mode } => Entry::Dir { path, mode },
                Found::Symlink { target } => Entry::Symlink { path, target },
                Found::File { .. } => {
                    let h = hashed.next().expect("one hash per regular file")?;
                    if h.mode & 0o6000 != 0 {
                        // Became setuid between scan and hash.
                        return Err(Error::SetId {
                            path: root.join(&path),
                            mode: h.mode,
                        });
                    }
                    Entry::File {
                        path,
                        mode: h.mode,
                        size: h.size,
                        sha256: h.sha256,
                    }
                }
                Found::Special { .. } => unreachable!("refused above"),
            });
        }
        Ok(Manifest {
            format: FORMAT.into(),
            entries,
        })
    }

    /// The canonical body bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest always serialises")
    }

    /// Signs the encoded manifest with `key`.
    pub fn sign(self, key: &SigningKey) -> SignedManifest {
        let body = self.encode();
        let signature = key.sign(&body);
        SignedManifest {
            body,
            manifest: self,
            signer: key.verifying_key().fingerprint(),
            signature,
        }
    }

    /// Checks the rules every accepted manifest follows.
    fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::ManifestFormat { reason });
        if self.format != FORMAT {
            return bad(format!(
                "format is {:?}, this watertight reads {FORMAT:?}",
                self.format
            ));
        }
        let mut dirs: HashSet<&str> = HashSet::new();
        let mut previous: Option<&str> = None;
        for entry in &self.entries {
            let path = entry.path();
            check_path(path).or_else(|reason| bad(format!("path {path:?} {reason}")))?;
            if let Some(prev) = previous {
                if prev.as_bytes() >= path.as_bytes() {
                    return bad(format!("entries not sorted or duplicated at {path:?}"));
                }
            }
            previous = Some(path);
            if let Some((parent, _)) = path.rsplit_once('/') {
                if !dirs.contains(parent) {
                    return bad(format!("{path:?} has no directory entry for its parent"));
                }
            }
            match entry {
                Entry::Dir { mode, .. } => {
                    if *mode > 0o7777 {
                        return bad(format!("{path:?} has mode {mode:o} beyond 7777"));
                    }
                    dirs.insert(path);
                }
                Entry::File { mode, sha256, .. } => {
                    if *mode > 0o7777 || mode & 0o6000 != 0 {
                        return bad(format!(
                            "{path:?} has mode {mode:o} (setuid/setgid or beyond 7777)"
                        ));
                    }
                    if sha256.len() != 64
                        || !sha256
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                    {
                        return bad(format!(
                            "{path:?} has sha256 {sha256:?}, not 64 lowercase hex digits"
                        ));
                    }
                }
                Entry::Symlink { target, .. } => {
                    if target.is_empty() || target.contains('\0') {
                        return bad(format!(
                            "{path:?} has an empty or NUL-bearing symlink target"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A relative path: non-empty components, no `.`/`..`, no NUL, no leading or doubled `/`.
fn check_path(path: &str) -> std::result::Result<(), String> {
    if path.is_empty() {
        return Err("is empty".into());
    }
    if path.contains('\0') {
        return Err("contains NUL".into());
    }
    for component in path.split('/') {
        match component {
            "" => return Err("is absolute or has an empty component".into()),
            "." | ".." => return Err("has a . or .. component".into()),
            _ => {}
        }
    }
    Ok(())
}

fn refuse_dangerous(root: &Path, found: &[FoundPath]) -> Result<()> {
    for f in found {
        match f.found {
            Found::Special { kind } => {
                return Err(Error::SpecialFile {
                    path: root.join(&f.path),
                    kind,
                })
            }
            Found::File { mode, .. } if mode & 0o6000 != 0 => {
                return Err(Error::SetId {
                    path: root.join(&f.path),
                    mode,
                })
            }
            _ => {}
        }
    }
    Ok(())
}

impl SignedManifest {
    /// The file bytes: canonical body, newline, signature line.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.body.clone();
        out.push(b'\n');
        out.extend_from_slice(SIGNATURE_PREFIX.as_bytes());
        out.extend_from_slice(self.signer.as_bytes());
        out.push(b' ');
        out.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(self.signature.to_bytes())
                .as_bytes(),
        );
        out.push(b'\n');
        out
    }

    /// Parses and checks the structure (not the signature: see [`SignedManifest::verify`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |reason: &str| Error::ManifestFormat {
            reason: reason.to_string(),
        };
        let newline = bytes
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("no signature line (file truncated?)"))?;
        let (body, rest) = (&bytes[..newline], &bytes[newline + 1..]);
        let rest = std::str::from_utf8(rest).map_err(|_| bad("signature line is not text"))?;
        let line = rest.strip_suffix('\n').ok_or_else(|| {
            bad("signature line is not terminated by a newline (file truncated?)")
        })?;
        let line = line
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or_else(|| bad("second line is not a `watertight-signature ed25519` line"))?;
        let (signer, sig_b64) = line
            .split_once(' ')
            .ok_or_else(|| bad("signature line lacks the key fingerprint or the signature"))?;
        let hex_part = signer
            .strip_prefix("sha256:")
            .ok_or_else(|| bad("key fingerprint does not start with sha256:"))?;
        if hex_part.len() != 64
            || !hex_part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad("key fingerprint is not 64 lowercase hex digits"));
        }
        let sig_bytes = base64::engine::general_purpose::STANDARD
            .decode(sig_b64)
            .map_err(|e| bad(&format!("signature is not base64 ({e})")))?;
        let sig_bytes: [u8; 64] = sig_bytes
            .try_into()
            .map_err(|_| bad("signature is not 64 bytes"))?;
        let signature = ed25519_dalek::Signature::from_bytes(&sig_bytes);
        let manifest: Manifest = serde_json::from_slice(body)
            .map_err(|e| bad(&format!("body is not manifest JSON ({e})")))?;
        manifest.validate()?;
        if manifest.encode() != body {
            return Err(bad("body is not in canonical form (edited by hand?)"));
        }
        Ok(Self {
            body: body.to_vec(),
            manifest,
            signer: signer.to_string(),
            signature,
        })
    }

    /// Reads and parses a manifest file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            Error::ManifestFormat { reason } => Error::ManifestFormat {
                reason: format!("{}: {reason}", path.display()),
            },
            other => other,
        })
    }

    /// Checks the signature with `key` and returns the manifest it covers.
    pub fn verify(&self, key: &VerifyingKey) -> Result<&Manifest> {
        let given = key.fingerprint();
        if given != self.signer {
            return Err(Error::WrongKey {
                signer: self.signer.clone(),
                given,
            });
        }
        if !key.verify(&self.body, &self.signature) {
            return Err(Error::BadSignature { key: given });
        }
        Ok(&self.manifest)
    }

    /// The fingerprint of the key that claims to have signed this manifest (unverified).
    pub fn signer(&self) -> &str {
        &self.signer
    }

    /// The manifest WITHOUT checking its signature: for display only, never for decisions.
    pub fn unverified_manifest(&self) -> &Manifest {
        &self.manifest
    }
}
