//! ed25519 signing keys for manifests.
//!
//! File formats (interoperable with OpenSSL: `openssl pkey -in release.key -pubout`):
//! - private key: PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), file mode 0600, refused on load
//!   when group or others can access it;
//! - public key: SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
//!
//! A key is named by its fingerprint: `sha256:` and the hex SHA-256 of the 32 raw public key bytes.

use crate::{Error, Result};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, Verifier};
use sha2::{Digest, Sha256};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A private ed25519 key that signs manifests.
pub struct SigningKey(ed25519_dalek::SigningKey);

/// A public ed25519 key that verifies manifests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secret material.
        write!(f, "SigningKey({})", self.verifying_key().fingerprint())
    }
}

impl SigningKey {
    /// A fresh key from the kernel's random source.
    pub fn generate() -> Result<Self> {
        let mut seed = [0u8; 32];
        let mut filled = 0;
        // Blocks only until the kernel's generator is seeded (which the call itself hastens).
        while filled < seed.len() {
            match rustix::rand::getrandom(
                &mut seed[filled..],
                rustix::rand::GetRandomFlags::empty(),
            ) {
                Ok(n) => filled += n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::Random(e.to_string())),
            }
        }
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// The key from its 32-byte seed (tests and deterministic fixtures).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.verifying_key())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        self.0.sign(message)
    }

    /// The ed25519 signature of `message`, for other crates' signature formats (signed BPF
    /// objects, watertight-bpf); they put a format prefix of their own in `message`.
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// PKCS#8 PEM text of the private key: version 1, the seed alone. Version 2 (RFC 5958, with
    /// the public key, ed25519-dalek's own encoding) is what OpenSSL 3.0 cannot read
    /// (`openssl pkey`: "unsupported"); both versions load ([`SigningKey::from_pem`]).
    pub fn to_pem(&self) -> String {
        ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: self.0.to_bytes(),
            public_key: None,
        }
        .to_pkcs8_pem(LineEnding::LF)
        .map(|pem| pem.to_string())
        .expect("an ed25519 key always encodes as PKCS#8")
    }

    /// Parses PKCS#8 PEM text; `origin` names the source in errors.
    pub fn from_pem(pem: &str, origin: &Path) -> Result<Self> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            .map(Self)
            .map_err(|e| Error::KeyFormat {
                path: origin.to_path_buf(),
                what: "private",
                reason: e.to_string(),
            })
    }

    /// Loads a private key file, refusing one that group or others can access.
    pub fn load(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|source| Error::KeyRead {
            path: path.to_path_buf(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(Error::KeyPermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let text = read_key_text(path)?;
        Self::from_pem(&text, path)
    }

    /// Writes `path` (mode 0600) and `path.pub`; refuses to overwrite either.
    /// Returns the public key's path.
    pub fn save(&self, path: &Path) -> Result<PathBuf> {
        let pub_path = public_key_path(path);
        for p in [path, pub_path.as_path()] {
            if p.symlink_metadata().is_ok() {
                return Err(Error::KeyExists {
                    path: p.to_path_buf(),
                });
            }
        }
        write_new(path, self.to_pem().as_bytes(), 0o600)?;
        if let Err(e) = write_new(&pub_path, self.verifying_key().to_pem().as_bytes(), 0o644) {
            // Leave no half-written key pair behind.
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(pub_path)
    }
}

impl VerifyingKey {
    /// SubjectPublicKeyInfo PEM text.
    pub fn to_pem(&self) -> String {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .expect("an ed25519 public key always encodes as SPKI")
    }

    /// Parses SubjectPublicKeyInfo PEM text; `origin` names the source in errors.
    pub fn from_pem(pem: &str, origin: &Path) -> Result<Self> {
        ed25519_dalek::VerifyingKey::from_public_key_pem(pem.trim())
            .map(Self)
            .map_err(|e| {
                let reason = if pem.contains("PRIVATE KEY") {
                    "this is a private key; pass the .pub file".to_string()
                } else {
                    e.to_string()
                };
                Error::KeyFormat {
                    path: origin.to_path_buf(),
                    what: "public",
                    reason,
                }
            })
    }

    /// Reads a public key file (SubjectPublicKeyInfo PEM).
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_pem(&read_key_text(path)?, path)
    }

    /// Writes the public key to `path`; refuses to overwrite a file.
    pub fn save(&self, path: &Path) -> Result<()> {
        if path.symlink_metadata().is_ok() {
            return Err(Error::KeyExists {
                path: path.to_path_buf(),
            });
        }
        write_new(path, self.to_pem().as_bytes(), 0o644)
    }

    /// `sha256:<hex>` of the raw 32-byte key.
    pub fn fingerprint(&self) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(self.0.as_bytes())))
    }

    /// Whether `signature` (64 bytes) is this key's ed25519 signature of `message`, checked as
    /// strictly as manifests are ([`SigningKey::sign_bytes`]'s counterpart).
    pub fn verify_bytes(&self, message: &[u8], signature: &[u8]) -> bool {
        Signature::from_slice(signature).is_ok_and(|s| self.verify(message, &s))
    }

    pub(crate) fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        self.0.verify_strict(message, signature).is_ok()
            && self.0.verify(message, signature).is_ok()
    }
}

/// `release.key` → `release.key.pub`.
pub fn public_key_path(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_os_string();
    name.push(".pub");
    PathBuf::from(name)
}

fn read_key_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| Error::KeyRead {
        path: path.to_path_buf(),
        source,
    })?;
    // Key files are small; anything large is not a key and not worth parsing.
    if bytes.len() > 16 * 1024 {
        return Err(Error::KeyFormat {
            path: path.to_path_buf(),
            what: "PEM",
            reason: format!("{} bytes is too large for a key file", bytes.len()),
        });
    }
    String::from_utf8(bytes).map_err(|_| Error::KeyFormat {
        path: path.to_path_buf(),
        what: "PEM",
        reason: "not text".into(),
    })
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let err = |source| Error::KeyWrite {
        path: path.to_path_buf(),
        source,
    };
    // create_new + mode at open: the secret is never readable by others, not even briefly.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    file.write_all(contents).map_err(err)?;
    file.sync_all().map_err(err)
}
