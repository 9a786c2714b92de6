//! The compact index shipped to nodes instead of 150 MB of JSON records.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! offset  size  field
//!      0     8  magic "WTKCVIDX"
//!      8     4  format version (1)
//!     12     8  body length in bytes
//!     20     4  CRC-32 (IEEE) of the body
//!     24     n  body: postcard encoding of IndexBody
//! ```
//!
//! The body holds only what the audit needs (id, title, CVSS, program files, release-number
//! statements); git ranges, descriptions and references are left out. A wrong magic, an unknown
//! format version, a short file or a checksum mismatch are rejected before decoding.

use crate::cve::CveRecord;
use crate::error::KernelAuditError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The first eight bytes of every index file.
pub const MAGIC: &[u8; 8] = b"WTKCVIDX";
/// The index format this build writes and reads; any other is refused.
pub const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 24;

/// What an index holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexBody {
    /// Where the records came from (the directory given to `--cve-db` when it was built).
    pub built_from: String,
    /// Record files that were skipped when it was built.
    pub skipped_files: u64,
    /// Published CVEs, sorted by id.
    pub records: Vec<CveRecord>,
}

/// Encodes an index into bytes.
pub fn encode(body: &IndexBody) -> Vec<u8> {
    let payload = postcard::to_stdvec(body).expect("encoding to a Vec cannot fail");
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Decodes index bytes; `path` only names the file in errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<IndexBody, KernelAuditError> {
    let corrupt = |reason: String| KernelAuditError::IndexCorrupt {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < HEADER_LEN {
        return Err(corrupt(format!(
            "file is {} bytes, shorter than the {HEADER_LEN}-byte header",
            bytes.len()
        )));
    }
    if &bytes[..8] != MAGIC {
        return Err(corrupt("wrong magic (not an index file)".into()));
    }
    let le_u32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let version = le_u32(8);
    if version != FORMAT_VERSION {
        return Err(corrupt(format!(
            "format version {version}, this watertight reads version {FORMAT_VERSION}"
        )));
    }
    let length = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let body = &bytes[HEADER_LEN..];
    if body.len() as u64 != length {
        return Err(corrupt(format!(
            "body is {} bytes, header says {length} (truncated or appended to)",
            body.len()
        )));
    }
    let expected = le_u32(20);
    let actual = crc32fast::hash(body);
    if expected != actual {
        return Err(corrupt(format!(
            "checksum mismatch (header {expected:08x}, body {actual:08x})"
        )));
    }
    postcard::from_bytes(body).map_err(|e| corrupt(format!("body does not decode: {e}")))
}

/// Writes an index file (atomically: a temporary file in the same directory, then rename).
pub fn write(path: &Path, body: &IndexBody) -> Result<u64, KernelAuditError> {
    let bytes = encode(body);
    let err = |source| KernelAuditError::IndexWrite {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "index".into());
    let tmp = path.with_file_name(format!(".{file_name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(err)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(bytes.len() as u64)
}

/// Reads an index file.
pub fn read(path: &Path) -> Result<IndexBody, KernelAuditError> {
    let bytes = std::fs::read(path).map_err(|source| KernelAuditError::IndexRead {
        path: path.to_path_buf(),
        source,
    })?;
    decode(&bytes, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cve::{AffectRule, Cvss, Severity, VersionRange};
    use crate::version::KernelVersion;

    fn sample() -> IndexBody {
        let v = |s| KernelVersion::parse(s).unwrap();
        IndexBody {
            built_from: "test".into(),
            skipped_files: 1,
            records: vec![CveRecord {
                id: "CVE-2024-1".into(),
                title: "netfilter: \"quoted\" é".into(),
                cvss: Some(Cvss {
                    score: 7.8,
                    severity: Severity::High,
                    vector: "CVSS:3.1/AV:L".into(),
                }),
                program_files: vec!["net/netfilter/x.c".into()],
                rule: AffectRule {
                    default_affected: true,
                    affected_ranges: vec![VersionRange {
                        low: v("2.6.32.70"),
                        high: v("2.6.33"),
                    }],
                    mainline_fixes: vec![v("6.8")],
                    ..AffectRule::default()
                },
            }],
        }
    }

    #[test]
    fn round_trips() {
        let body = sample();
        let bytes = encode(&body);
        assert_eq!(&bytes[..8], MAGIC);
        let back = decode(&bytes, Path::new("x.idx")).unwrap();
        assert_eq!(back, body);
        assert_eq!(
            back.records[0].rule.affected_ranges[0].low.to_string(),
            "2.6.32.70"
        );
    }

    #[test]
    fn rejects_corruption() {
        let bytes = encode(&sample());
        let p = Path::new("x.idx");
        let msg = |b: &[u8]| decode(b, p).unwrap_err().to_string();
        assert!(msg(&bytes[..10]).contains("shorter than"));
        assert!(msg(b"NOTANIDXxxxxxxxxxxxxxxxxxxxxxxxxxxx").contains("wrong magic"));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        assert!(msg(&flipped).contains("checksum mismatch"));
        assert!(msg(&bytes[..bytes.len() - 1]).contains("truncated"));
        let mut future = bytes.clone();
        future[8] = 9;
        assert!(msg(&future).contains("format version 9"));
        // Every message names the file and the fix.
        assert!(msg(&flipped).contains("x.idx") && msg(&flipped).contains("--index-out"));
    }
}
