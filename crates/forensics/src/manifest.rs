//! The bundle manifest and its signature file: a canonical line format, so the signature covers
//! exactly one possible encoding of each manifest.
//!
//! `manifest` (UTF-8, `\n` line ends, final newline, nothing else):
//! ```text
//! watertight-evidence-manifest 1
//! sandbox <sandbox id>
//! created <RFC 3339 UTC time>
//! signer sha256:<hex of the signing public key>
//! truncated <evidence budget in bytes>          (only when the budget cut the evidence short)
//! file <sha256 hex> <size in bytes> <relative path>
//! ...
//! ```
//! File lines are sorted by path (bytewise, no duplicates); paths use only `A-Za-z0-9._-` and `/`
//! between non-empty components that are not `.` or `..`.
//!
//! `manifest.sig`:
//! ```text
//! ed25519 sha256:<hex of the signing public key>
//! <base64 of the 64-byte ed25519 signature over the manifest's exact bytes>
//! ```

use base64::Engine;

/// The manifest's file name in a bundle.
pub const MANIFEST_FILE: &str = "manifest";
/// The signature's file name in a bundle.
pub const SIGNATURE_FILE: &str = "manifest.sig";
const HEADER: &str = "watertight-evidence-manifest 1";

/// One file of the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the bundle directory.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: [u8; 32],
}

/// The signed list of every file of a bundle, with its size and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The sandbox the bundle is of.
    pub sandbox_id: String,
    /// RFC 3339 UTC time of the capture.
    pub created: String,
    /// `sha256:<hex>` fingerprint of the signing public key.
    pub signer: String,
    /// The evidence budget, when it was reached: the bundle holds less than the sandbox had.
    pub truncated: Option<u64>,
    /// Sorted by path.
    pub files: Vec<FileEntry>,
}

/// A parse failure: the 1-based line and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The 1-based line.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl Manifest {
    /// The canonical bytes that are signed.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::with_capacity(128 + self.files.len() * 100);
        out.push_str(HEADER);
        out.push('\n');
        for (key, value) in [
            ("sandbox", &self.sandbox_id),
            ("created", &self.created),
            ("signer", &self.signer),
        ] {
            out.push_str(key);
            out.push(' ');
            out.push_str(value);
            out.push('\n');
        }
        if let Some(limit) = self.truncated {
            out.push_str("truncated ");
            out.push_str(&limit.to_string());
            out.push('\n');
        }
        for f in &self.files {
            out.push_str("file ");
            out.push_str(&hex::encode(f.sha256));
            out.push(' ');
            out.push_str(&f.size.to_string());
            out.push(' ');
            out.push_str(&f.path);
            out.push('\n');
        }
        out.into_bytes()
    }

    /// Parses the canonical encoding, refusing anything `encode` would not produce.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ParseError> {
        let err = |line: usize, reason: String| ParseError { line, reason };
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            err(line + 1, "not UTF-8".into())
        })?;
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| err(text.lines().count().max(1), "no final newline".into()))?;
        let mut lines = body.split('\n').enumerate().map(|(i, l)| (i + 1, l));

        match lines.next() {
            Some((_, HEADER)) => {}
            Some((n, other)) => {
                return Err(err(n, format!("expected {HEADER:?}, found {other:?}")));
            }
            None => return Err(err(1, "empty".into())),
        }
        let mut field = |key: &str| -> Result<String, ParseError> {
            let (n, line) = lines
                .next()
                .ok_or_else(|| err(0, format!("missing {key:?} line")))?;
            let value = line
                .strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(' '))
                .ok_or_else(|| err(n, format!("expected the {key:?} line")))?;
            if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(err(n, format!("{key} value must be one non-empty word")));
            }
            Ok(value.to_string())
        };
        let sandbox_id = field("sandbox")?;
        let created = field("created")?;
        let signer = field("signer")?;

        let mut lines = lines.peekable();
        let mut truncated = None;
        if let Some((n, rest)) = lines
            .peek()
            .and_then(|(n, l)| l.strip_prefix("truncated ").map(|r| (*n, r)))
        {
            truncated = Some(parse_size(rest).ok_or_else(|| {
                err(
                    n,
                    "truncated: the budget must be a decimal number without sign or leading zeros"
                        .into(),
                )
            })?);
            lines.next();
        }
        let mut files: Vec<FileEntry> = Vec::new();
        for (n, line) in lines {
            let rest = line
                .strip_prefix("file ")
                .ok_or_else(|| err(n, "expected a \"file\" line".into()))?;
            let mut parts = rest.splitn(3, ' ');
            let (Some(hash), Some(size), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(err(n, "expected: file <sha256> <size> <path>".into()));
            };
            let sha256 = parse_sha256(hash)
                .ok_or_else(|| err(n, "sha256 must be 64 lowercase hex digits".into()))?;
            let size = parse_size(size).ok_or_else(|| {
                err(
                    n,
                    "size must be a decimal number without sign or leading zeros".into(),
                )
            })?;
            check_path(path).map_err(|reason| err(n, format!("path {path:?}: {reason}")))?;
            if let Some(prev) = files.last() {
                if prev.path.as_str() >= path {
                    return Err(err(n, format!("path {path:?} is out of order or repeated")));
                }
            }
            files.push(FileEntry {
                path: path.to_string(),
                size,
                sha256,
            });
        }
        Ok(Manifest {
            sandbox_id,
            created,
            signer,
            truncated,
            files,
        })
    }
}

fn parse_sha256(hex_text: &str) -> Option<[u8; 32]> {
    if hex_text.len() != 64
        || !hex_text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some(out)
}

fn parse_size(text: &str) -> Option<u64> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse().ok()
}

/// Bundle paths: relative, `/`-separated, components from `A-Za-z0-9._-`, never `.` or `..`.
pub fn check_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("empty");
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err("empty component (leading, trailing or doubled '/')");
        }
        if component == "." || component == ".." {
            return Err("'.' and '..' are not allowed");
        }
        if !component
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err("only A-Z a-z 0-9 . _ - and '/' are allowed");
        }
    }
    Ok(())
}

/// The parsed signature file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureFile {
    /// `sha256:<hex>` fingerprint of the signing public key.
    pub signer: String,
    /// The ed25519 signature over the manifest's bytes.
    pub signature: [u8; 64],
}

impl SignatureFile {
    /// The file's bytes: `ed25519 <signer>` and the base64 signature, one line each.
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "ed25519 {}\n{}\n",
            self.signer,
            base64::engine::general_purpose::STANDARD.encode(self.signature)
        )
        .into_bytes()
    }

    /// Parses a signature file; the error says what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<SignatureFile, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| "no final newline".to_string())?;
        let (first, second) = body
            .split_once('\n')
            .ok_or_else(|| "expected two lines".to_string())?;
        let signer = first
            .strip_prefix("ed25519 ")
            .ok_or_else(|| "first line must be \"ed25519 <key fingerprint>\"".to_string())?;
        let fingerprint_ok = signer
            .strip_prefix("sha256:")
            .and_then(parse_sha256)
            .is_some();
        if !fingerprint_ok {
            return Err("key fingerprint must be sha256:<64 lowercase hex digits>".into());
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(second)
            .map_err(|e| format!("signature is not base64: {e}"))?;
        let signature: [u8; 64] = raw
            .try_into()
            .map_err(|v: Vec<u8>| format!("signature is {} bytes, ed25519 needs 64", v.len()))?;
        let parsed = SignatureFile {
            signer: signer.to_string(),
            signature,
        };
        // Only one encoding is accepted (base64 padding variants would otherwise slip through).
        if parsed.encode() != bytes {
            return Err("not in canonical form".into());
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            sandbox_id: "sb-1".into(),
            created: "2026-11-22T10:00:00.123Z".into(),
            signer: format!("sha256:{}", "ab".repeat(32)),
            truncated: None,
            files: vec![
                FileEntry {
                    path: "events.jsonl".into(),
                    size: 0,
                    sha256: [1; 32],
                },
                FileEntry {
                    path: "tasks/12/status".into(),
                    size: 1234,
                    sha256: [0xcd; 32],
                },
            ],
        }
    }

    #[test]
    fn round_trip_is_exact() {
        let m = sample();
        let bytes = m.encode();
        assert_eq!(Manifest::parse(&bytes).unwrap(), m);
    }

    #[test]
    fn truncated_line_round_trips() {
        let mut m = sample();
        m.truncated = Some(1 << 20);
        let bytes = m.encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\nsigner sha256:") && text.contains("\ntruncated 1048576\nfile "));
        assert_eq!(Manifest::parse(&bytes).unwrap(), m);
        for bad in [
            text.replace("truncated 1048576", "truncated 01048576"),
            text.replace("truncated 1048576", "truncated"),
            text.replace("truncated 1048576\n", "") + "truncated 5\n",
        ] {
            assert!(Manifest::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_non_canonical_forms() {
        let good = String::from_utf8(sample().encode()).unwrap();
        for (bad, why) in [
            (good.trim_end().to_string(), "no final newline"),
            (good.replace("1234", "01234"), "leading zero"),
            (
                good.replace(&"cd".repeat(32), &"CD".repeat(32)),
                "upper hex",
            ),
            (good.replace("tasks/12", "tasks//12"), "empty component"),
            (good.replace("tasks/12", "../12"), "dot dot"),
            (good.replace("events.jsonl", "zz"), "order"),
            (
                good.replace("sandbox sb-1", "sandbox sb 1"),
                "space in value",
            ),
            (good.replacen('\n', "\r\n", 1), "CR"),
            (format!("{good}\n"), "blank line"),
        ] {
            assert!(Manifest::parse(bad.as_bytes()).is_err(), "{why}: {bad}");
        }
    }

    #[test]
    fn signature_file_round_trip_and_canonical() {
        let s = SignatureFile {
            signer: format!("sha256:{}", "cd".repeat(32)),
            signature: [7; 64],
        };
        let bytes = s.encode();
        assert_eq!(SignatureFile::parse(&bytes).unwrap(), s);
        let mut extra = bytes.clone();
        extra.push(b'\n');
        assert!(SignatureFile::parse(&extra).is_err());
        assert!(SignatureFile::parse(b"ed25519 sha256:xx\nAAAA\n").is_err());
    }
}
