//! Policy levels and policy versions, spelled as in the
//! `pod-security.kubernetes.io/enforce` and `enforce-version` namespace labels.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// The newest policy version any check defines a revision for. `latest` and any
/// newer version resolve to it, as upstream's registry clamps to its max version.
pub const LATEST_MINOR: u32 = 37;

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// Unrestricted: every pod is allowed.
    Privileged,
    /// Prevents known privilege escalations; allows the default pod.
    Baseline,
    /// Baseline plus current pod hardening best practice.
    Restricted,
}

impl Level {
    /// The level as the namespace label spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Level {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A level name that is none of privileged, baseline, restricted; holds the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Pod Security level {0:?}: use privileged, baseline or restricted")]
pub struct ParseLevelError(pub String);

impl FromStr for Level {
    type Err = ParseLevelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(ParseLevelError(s.to_string())),
        }
    }
}

/// A Pod Security Standards policy version: `latest` or `v1.<minor>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// The newest version upstream defines (clamped to [`LATEST_MINOR`]).
    Latest,
    /// A version `v<major>.<minor>`, as the `enforce-version` label spells it.
    V {
        /// The major version (1).
        major: u32,
        /// The minor version; above [`LATEST_MINOR`] it evaluates as the latest.
        minor: u32,
    },
}

impl Version {
    /// The policy minor version the checks are evaluated at: `latest` and versions
    /// newer than [`LATEST_MINOR`] clamp to it (upstream's `maxVersion`).
    pub fn effective_minor(self) -> u32 {
        match self {
            Version::Latest => LATEST_MINOR,
            Version::V { minor, .. } => minor.min(LATEST_MINOR),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::V { major, minor } => write!(f, "v{major}.{minor}"),
        }
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid Pod Security version {input:?}: {problem}; use \"latest\" or a version like \"v1.30\""
)]
/// A version label that is neither `latest` nor `v1.<minor>`.
pub struct ParseVersionError {
    /// The label as given.
    pub input: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl FromStr for Version {
    type Err = ParseVersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |problem| ParseVersionError {
            input: s.to_string(),
            problem,
        };
        let text = s.trim();
        if text.eq_ignore_ascii_case("latest") {
            return Ok(Version::Latest);
        }
        let digits = text
            .strip_prefix('v')
            .or_else(|| text.strip_prefix('V'))
            .unwrap_or(text);
        let (major, minor) = digits
            .split_once('.')
            .ok_or_else(|| err("expected <major>.<minor>"))?;
        let number = |part: &str| -> Result<u32, ParseVersionError> {
            // Upstream rejects leading zeros ("v1.05"); so do we.
            if part.is_empty()
                || !part.bytes().all(|b| b.is_ascii_digit())
                || (part.len() > 1 && part.starts_with('0'))
            {
                return Err(err("major and minor must be plain decimal numbers"));
            }
            part.parse().map_err(|_| err("number out of range"))
        };
        let major = number(major)?;
        let minor = number(minor)?;
        if major != 1 {
            return Err(err("only major version 1 exists"));
        }
        Ok(Version::V { major, minor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_print() {
        assert_eq!(
            "v1.30".parse::<Version>().unwrap(),
            Version::V {
                major: 1,
                minor: 30
            }
        );
        assert_eq!(
            "1.30".parse::<Version>().unwrap(),
            Version::V {
                major: 1,
                minor: 30
            }
        );
        assert_eq!("latest".parse::<Version>().unwrap(), Version::Latest);
        assert_eq!(Version::V { major: 1, minor: 0 }.to_string(), "v1.0");
        assert_eq!(Version::Latest.to_string(), "latest");
        for bad in ["", "v1", "v2.3", "v1.05", "v1.x", "1.2.3", "v1.-1", "vv1.2"] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?} should not parse");
        }
        assert_eq!(
            Version::V {
                major: 1,
                minor: 99
            }
            .effective_minor(),
            LATEST_MINOR
        );
    }

    #[test]
    fn levels_parse_and_print() {
        assert_eq!("Restricted".parse::<Level>().unwrap(), Level::Restricted);
        assert_eq!(Level::Baseline.to_string(), "baseline");
        let e = "strict".parse::<Level>().unwrap_err().to_string();
        assert!(e.contains("strict") && e.contains("restricted"), "{e}");
    }
}
