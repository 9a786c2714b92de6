//! On-disk cache of compiled filters, so the supervisor skips libseccomp on the hot start path.
//!
//! Key: SHA-256 of (format version, canonical profile JSON, compile options, libseccomp version,
//! machine architecture, kernel major.minor). Entry file `<key>.bpf`:
//! `b"WTSECBPF"` | version u32 LE | flags u32 LE | instruction count u32 LE |
//! SHA-256 of the program bytes | program (8 bytes per instruction).
//! Entries are written to a temp file in the same directory and renamed into place, so readers
//! see a whole entry or none; a truncated, mismatched or corrupt entry is ignored and rewritten.
//! The directory must belong to the current user and not be writable by group or others: a
//! filter read from a directory someone else can write would be theirs, not ours.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::compile::{program_from_bytes, CompileOptions, CompiledFilter, INSN_LEN, MAX_INSNS};
use crate::error::Error;
use crate::profile::Profile;

/// Where watertight keeps compiled filters by default.
pub const DEFAULT_CACHE_DIR: &str = "/run/watertight/seccomp-cache";

const MAGIC: &[u8; 8] = b"WTSECBPF";
/// Bump when the entry layout OR what `compile` emits for the same input changes (the key covers
/// the crate version, but not unreleased changes made during development).
const FORMAT_VERSION: u32 = 2;
const HEADER_LEN: usize = 8 + 4 + 4 + 4 + 32;

/// Whether [`compile_cached`] found the entry or compiled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Found, read and checked; nothing was compiled.
    Hit,
    /// Compiled and stored (also when a corrupt entry was replaced).
    Miss,
}

/// [`Profile::compile`] through a cache directory (created 0700 if missing).
pub fn compile_cached(
    profile: &Profile,
    opts: &CompileOptions,
    cache_dir: &Path,
) -> Result<CompiledFilter, Error> {
    compile_cached_with_outcome(profile, opts, cache_dir).map(|(filter, _)| filter)
}

/// Like [`compile_cached`], also telling whether the cache was hit.
pub fn compile_cached_with_outcome(
    profile: &Profile,
    opts: &CompileOptions,
    cache_dir: &Path,
) -> Result<(CompiledFilter, CacheOutcome), Error> {
    prepare_dir(cache_dir)?;
    let key = cache_key(profile, opts);
    let path = cache_dir.join(format!("{key}.bpf"));
    if let Some(filter) = read_entry(&path) {
        return Ok((filter, CacheOutcome::Hit));
    }
    let filter = profile.compile(opts)?;
    write_entry(cache_dir, &path, &filter)?;
    Ok((filter, CacheOutcome::Miss))
}

/// A digest of this crate's source (recorded by the build script): it fixes the built-in
/// profiles, so it names them in [`compile_cached_keyed`].
pub const SOURCE_DIGEST: &str = env!("WATERTIGHT_SECCOMP_SOURCE_DIGEST");

/// Like [`compile_cached`] for a profile whose content `identity` fixes (a built-in profile: its
/// name and [`SOURCE_DIGEST`]; a constant JSON text: the text). On a hit the profile is never
/// built nor serialised, which is most of a cached compile's cost; `build` runs only on a miss.
pub fn compile_cached_keyed(
    identity: &[u8],
    build: impl FnOnce() -> Result<Profile, Error>,
    opts: &CompileOptions,
    cache_dir: &Path,
) -> Result<CompiledFilter, Error> {
    prepare_dir(cache_dir)?;
    let mut hasher = key_hasher();
    hasher.update(b"keyed\0");
    hasher.update(identity);
    hasher.update(b"\0");
    let key = finish_key(hasher, opts);
    let path = cache_dir.join(format!("{key}.bpf"));
    if let Some(filter) = read_entry(&path) {
        return Ok(filter);
    }
    let filter = build()?.compile(opts)?;
    write_entry(cache_dir, &path, &filter)?;
    Ok(filter)
}

fn key_hasher() -> Sha256 {
    let mut hasher = Sha256::new();
    // The crate version: a new release may compile the same profile differently.
    hasher.update(
        format!(
            "watertight-seccomp-cache v{FORMAT_VERSION} {}\0",
            env!("CARGO_PKG_VERSION")
        )
        .as_bytes(),
    );
    hasher
}

fn finish_key(mut hasher: Sha256, opts: &CompileOptions) -> String {
    // Every field of the options (destructured, so a new field cannot be forgotten here).
    let CompileOptions {
        violation_action,
        log_denials,
        wait_killable_recv,
        capabilities,
        exec_integrity,
    } = opts;
    hasher.update(format!("{violation_action:?}\0").as_bytes());
    hasher.update([
        u8::from(*log_denials),
        u8::from(*wait_killable_recv),
        u8::from(*exec_integrity),
    ]);
    for cap in capabilities {
        hasher.update(cap.as_bytes());
        hasher.update(b",");
    }
    hasher.update(b"\0");
    hasher.update(crate::compile::environment_fingerprint().as_bytes());
    hex(&hasher.finalize())
}

/// Hex SHA-256 naming the cache entry for (profile, opts) on this machine.
pub fn cache_key(profile: &Profile, opts: &CompileOptions) -> String {
    let mut hasher = key_hasher();
    // Stream the canonical JSON into the hash instead of building the string.
    serde_json::to_writer(&mut hasher, profile)
        .expect("serializing plain strings and integers into a hasher cannot fail");
    hasher.update(b"\0");
    finish_key(hasher, opts)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn prepare_dir(dir: &Path) -> Result<(), Error> {
    let cache_err = |problem: String| Error::Cache {
        path: dir.to_path_buf(),
        problem,
    };
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| cache_err(format!("cannot create it: {e}")))?;
        }
        Err(e) => return Err(cache_err(format!("cannot inspect it: {e}"))),
        Ok(_) => {}
    }
    let meta =
        fs::symlink_metadata(dir).map_err(|e| cache_err(format!("cannot inspect it: {e}")))?;
    if !meta.file_type().is_dir() {
        return Err(cache_err(
            "is not a directory (or is a symlink); remove it or choose another cache directory"
                .into(),
        ));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(cache_err(format!(
            "is owned by uid {} but watertight runs as uid {euid}; chown it or choose another directory",
            meta.uid()
        )));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(cache_err(format!(
            "is writable by group or others (mode {:o}); run chmod go-w on it",
            meta.permissions().mode() & 0o7777
        )));
    }
    Ok(())
}

fn read_entry(path: &Path) -> Option<CompiledFilter> {
    let bytes = fs::read(path).ok()?;
    decode_entry(&bytes)
}

/// Decode and validate an entry; `None` for anything not exactly a well-formed entry.
pub(crate) fn decode_entry(bytes: &[u8]) -> Option<CompiledFilter> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return None;
    }
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    if word(8) != FORMAT_VERSION {
        return None;
    }
    let flags = word(12);
    let count = word(16) as usize;
    if count == 0 || count > MAX_INSNS || bytes.len() != HEADER_LEN + count * INSN_LEN {
        return None;
    }
    let program_bytes = &bytes[HEADER_LEN..];
    if Sha256::digest(program_bytes).as_slice() != &bytes[20..52] {
        return None;
    }
    Some(CompiledFilter::from_parts(
        program_from_bytes(program_bytes)?,
        flags,
    ))
}

pub(crate) fn encode_entry(filter: &CompiledFilter) -> Vec<u8> {
    let program = filter.program_bytes();
    let mut out = Vec::with_capacity(HEADER_LEN + program.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&filter.flags().to_le_bytes());
    out.extend_from_slice(&(filter.program().len() as u32).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(&program));
    out.extend_from_slice(&program);
    out
}

fn write_entry(dir: &Path, path: &Path, filter: &CompiledFilter) -> Result<(), Error> {
    let io_err = |what: &str, e: std::io::Error| Error::Cache {
        path: PathBuf::from(path),
        problem: format!("{what}: {e}"),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".entry-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| io_err("cannot create a temporary entry", e))?;
    tmp.write_all(&encode_entry(filter))
        .and_then(|_| tmp.as_file().sync_data())
        .map_err(|e| io_err("cannot write the entry", e))?;
    tmp.persist(path)
        .map_err(|e| io_err("cannot rename the entry into place", e.error))?;
    Ok(())
}
