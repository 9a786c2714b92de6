//! One error variant per step that can fail: reading the ELF, its sections, its BTF, the policy
//! file, the key material and the signature file. Each message is one line naming what is wrong;
//! callers that read from a file prefix its path (the CLI does).

use std::path::PathBuf;

/// Everything vetting, policy loading, signing and verifying can refuse.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not an ELF file at all, or its headers do not parse.
    #[error("not a readable ELF object: {0}")]
    Elf(String),
    /// An ELF file for another machine than BPF (EM_BPF, 247).
    #[error(
        "not a BPF object: ELF machine is {0} (expected EM_BPF; compile with clang -target bpf)"
    )]
    NotBpf(String),
    /// A 32-bit or big-endian ELF: clang's BPF objects are ELF64 little-endian (bpfel).
    #[error("unsupported BPF ELF layout: {0} (expected ELF64 little-endian, clang -target bpf)")]
    Layout(String),
    /// A section's contents, a symbol or a relocation that does not fit the object.
    #[error("malformed section {section}: {reason}")]
    Section {
        /// The section's name (or index when it has none).
        section: String,
        /// What does not fit.
        reason: String,
    },
    /// The `.BTF` section is malformed.
    #[error("malformed .BTF section: {0}")]
    Btf(String),
    /// An object file could not be read ([`crate::vet_file`]).
    #[error("{path}: cannot read the BPF object: {source}")]
    ObjectRead {
        /// The object file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An object file is not a BPF object it can vet ([`crate::vet_file`]): the inner error
    /// says what is wrong.
    #[error("{path}: {source}")]
    Object {
        /// The object file.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<Error>,
    },
    /// The policy file could not be read.
    #[error("{path}: cannot read the policy: {source}")]
    PolicyRead {
        /// The policy file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The policy file is not a valid policy (TOML syntax, an unknown key, a wrong value).
    #[error("{path}: {message}")]
    Policy {
        /// The policy file.
        path: PathBuf,
        /// The key, the line and what is wrong.
        message: String,
    },
    /// The object is refused by the policy, so it is not signed.
    #[error("refused by the policy ({count} refusal(s)), not signed; first: {first}")]
    Refused {
        /// How many refusals.
        count: usize,
        /// The first refusal, as one line.
        first: String,
    },
    /// The signature file does not parse.
    #[error("not a watertight BPF signature file: {0}")]
    SignatureFormat(String),
    /// The signature does not hold for these bytes and this key.
    #[error("signature refused: {0}")]
    SignatureMismatch(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
