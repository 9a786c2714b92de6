//! Upstream kernel version numbers, and `uname -r` strings that may carry a distro suffix.

use crate::error::KernelAuditError;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;

/// The most parts a kernel version has: 2.6.32.71 (the 2.6 era used four).
pub const MAX_PARTS: usize = 4;

/// An upstream kernel version: up to four numeric parts, compared numerically part by part with
/// missing parts read as zero (6.1 == 6.1.0), while remembering how many parts were written so it
/// prints back as it was read.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct KernelVersion {
    parts: [u32; MAX_PARTS],
    len: u8,
}

impl KernelVersion {
    /// Builds a version from its parts (1 to 4 of them).
    pub fn from_parts(parts: &[u32]) -> Option<Self> {
        if parts.is_empty() || parts.len() > MAX_PARTS {
            return None;
        }
        let mut all = [0; MAX_PARTS];
        all[..parts.len()].copy_from_slice(parts);
        Some(Self {
            parts: all,
            len: parts.len() as u8,
        })
    }

    /// Parses a strict upstream version: 1 to 4 dot-separated decimal numbers, nothing else.
    pub fn parse(text: &str) -> Result<Self, KernelAuditError> {
        Self::parse_strict(text).ok_or_else(|| KernelAuditError::BadVersion {
            input: text.to_string(),
        })
    }

    fn parse_strict(text: &str) -> Option<Self> {
        let mut parts = [0u32; MAX_PARTS];
        let mut len = 0;
        for piece in text.split('.') {
            if len == MAX_PARTS
                || piece.is_empty()
                || piece.len() > 9
                || !piece.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            parts[len] = piece.parse().ok()?;
            len += 1;
        }
        Some(Self {
            parts,
            len: len as u8,
        })
    }

    /// The parts as written.
    pub fn parts(&self) -> &[u32] {
        &self.parts[..self.len as usize]
    }

    /// The first number (6 in 6.1.100).
    pub fn major(&self) -> u32 {
        self.parts[0]
    }

    /// The stable branch this version belongs to: 6.1.100 -> 6.1; for the 2.x era, whose stable
    /// series were 2.6.32.y, the first three parts (2.6.32.71 -> 2.6.32).
    pub fn branch(&self) -> KernelVersion {
        let n = if self.parts[0] < 3 { 3 } else { 2 };
        Self::from_parts(&self.parts[..n]).expect("2 or 3 parts are valid")
    }

    /// True when `self` starts with every part of `prefix` (padding `self` with zeros).
    pub fn starts_with(&self, prefix: &KernelVersion) -> bool {
        prefix
            .parts()
            .iter()
            .zip(self.parts.iter())
            .all(|(a, b)| a == b)
    }
}

impl PartialEq for KernelVersion {
    fn eq(&self, other: &Self) -> bool {
        self.parts == other.parts
    }
}
impl Eq for KernelVersion {}

impl PartialOrd for KernelVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for KernelVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts.cmp(&other.parts)
    }
}

impl std::hash::Hash for KernelVersion {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parts.hash(state);
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.parts().iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for KernelVersion {
    type Err = KernelAuditError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A kernel release string as `uname -r` prints it, split into the upstream number and the rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KernelRelease {
    /// The string as given.
    pub release: String,
    /// The leading upstream version (6.1.0 of 6.1.0-18-amd64).
    pub upstream: KernelVersion,
    /// What follows the upstream number (`-18-amd64`), empty for a plain upstream release.
    pub suffix: String,
    /// Who built it, when the suffix says so (Debian, Ubuntu, RHEL, ...), or "unknown vendor".
    pub vendor: Option<String>,
}

impl KernelRelease {
    /// Splits a release string. Errors when it does not start with a kernel version.
    pub fn parse(text: &str) -> Result<Self, KernelAuditError> {
        let release = text.trim();
        let bad = || KernelAuditError::BadVersion {
            input: text.to_string(),
        };
        // The upstream part: digits and dots up to the first other character.
        let end = release
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(release.len());
        let number = release[..end].trim_end_matches('.');
        let upstream = KernelVersion::parse_strict(number).ok_or_else(bad)?;
        if upstream.parts().len() < 2 {
            return Err(bad());
        }
        let suffix = release[number.len()..].to_string();
        let vendor = if suffix.is_empty() {
            None
        } else {
            Some(vendor_of(&suffix).to_string())
        };
        Ok(Self {
            release: release.to_string(),
            upstream,
            suffix,
            vendor,
        })
    }

    /// True when the release is a plain upstream number, so the CNA records decide it directly.
    pub fn is_upstream(&self) -> bool {
        self.suffix.is_empty()
    }
}

/// Names the builder of a kernel from its release suffix. Vendors backport fixes without changing
/// the upstream number, so any suffix means the number alone cannot decide.
fn vendor_of(suffix: &str) -> &'static str {
    let s = suffix.to_ascii_lowercase();
    let has = |needle: &str| s.contains(needle);
    // RHEL and rebuilds (CentOS, Rocky, Alma, Oracle RHCK): `.el<digit>`.
    let rhel = s
        .match_indices(".el")
        .any(|(i, _)| s[i + 3..].starts_with(|c: char| c.is_ascii_digit()));
    if rhel {
        if has("uek") {
            "Oracle Linux (UEK)"
        } else {
            "Red Hat Enterprise Linux family"
        }
    } else if has("uek") {
        "Oracle Linux (UEK)"
    } else if has(".fc") {
        "Fedora"
    } else if has("amzn") {
        "Amazon Linux"
    } else if has("azure") {
        "Microsoft Azure kernel"
    } else if has("-generic")
        || has("-lowlatency")
        || has("-aws")
        || has("-gcp")
        || has("-gke")
        || has("-oracle")
        || has("-kvm")
        || has("ubuntu")
    {
        "Ubuntu"
    } else if has("-amd64")
        || has("-arm64")
        || has("-cloud-")
        || has("-rt-")
        || has("+deb")
        || has("-686")
        || has("bpo")
    {
        "Debian"
    } else if has("-default") || has("-azure") || has("suse") {
        "SUSE"
    } else if has("-arch") {
        "Arch Linux"
    } else if has("-rc") {
        "upstream release candidate"
    } else if has("-cos") || has("+") && has("cos") {
        "Container-Optimized OS"
    } else if has("flatcar") {
        "Flatcar"
    } else if has("talos") {
        "Talos"
    } else if has("wsl") {
        "Microsoft WSL"
    } else {
        "unknown vendor"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KernelVersion {
        KernelVersion::parse(s).unwrap()
    }

    #[test]
    fn compares_numerically_with_implied_zeros() {
        assert_eq!(v("6.1"), v("6.1.0"));
        assert!(v("6.10") > v("6.9.255"));
        assert!(v("2.6.32.71") > v("2.6.32"));
        assert!(v("2.6.32.71") < v("2.6.33"));
        assert!(v("5.15.0") < v("5.15.1"));
        assert_eq!(v("6.1.0").to_string(), "6.1.0");
        assert_eq!(v("6.1").to_string(), "6.1");
    }

    #[test]
    fn branches() {
        assert_eq!(v("6.1.100").branch(), v("6.1"));
        assert_eq!(v("6.1").branch(), v("6.1"));
        assert_eq!(v("2.6.32.71").branch(), v("2.6.32"));
        assert!(v("2.6.32.71").starts_with(&v("2.6")));
        assert!(!v("6.10.1").starts_with(&v("6.1")));
    }

    #[test]
    fn rejects_non_versions() {
        for bad in [
            "",
            "x",
            "6..1",
            "6.1.",
            "6.1.2.3.4",
            "6.1-rc1",
            " 6.1",
            "6.1a",
        ] {
            assert!(KernelVersion::parse(bad).is_err(), "{bad}");
        }
        assert!(KernelRelease::parse("6").is_err());
        assert!(KernelRelease::parse("linux").is_err());
        assert!(KernelRelease::parse("").is_err());
    }

    #[test]
    fn splits_distro_releases() {
        let r = KernelRelease::parse("6.18.44").unwrap();
        assert!(r.is_upstream());
        assert_eq!(r.vendor, None);
        let cases = [
            ("6.1.0-18-amd64", "6.1.0", "Debian"),
            ("5.15.0-91-generic", "5.15.0", "Ubuntu"),
            (
                "4.18.0-513.5.1.el8_9.x86_64",
                "4.18.0",
                "Red Hat Enterprise Linux family",
            ),
            ("5.10.215-203.850.amzn2.x86_64", "5.10.215", "Amazon Linux"),
            ("6.8.0-1014-aws", "6.8.0", "Ubuntu"),
            ("6.12.0-rc3", "6.12.0", "upstream release candidate"),
            ("6.6.30-custom", "6.6.30", "unknown vendor"),
        ];
        for (release, upstream, vendor) in cases {
            let r = KernelRelease::parse(release).unwrap();
            assert!(!r.is_upstream(), "{release}");
            assert_eq!(r.upstream, v(upstream), "{release}");
            assert_eq!(r.vendor.as_deref(), Some(vendor), "{release}");
        }
    }
}
