//! The one severity scale every report uses, and the `--fail-on` threshold over it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How bad a finding is. Ordered: `Info < Low < Medium < High < Critical`.
///
/// Every result class maps onto this scale (the mapping is documented in ARCHITECTURE.md):
/// isolation findings use it as is; a kernel CVE's CVSS 3.1 `baseSeverity` maps by name, with
/// `NONE` as `Info` and an unscored CVE (an unknown risk) as `Low`; hardening checks use it as is;
/// `net check` findings get theirs from the finding kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Every severity, least severe first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The lowercase name, as JSON, labels and `--fail-on` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// One step less severe (a read-only mount of a sensitive path, for instance).
    pub fn lowered(self) -> Severity {
        match self {
            Severity::Critical => Severity::High,
            Severity::High => Severity::Medium,
            Severity::Medium => Severity::Low,
            Severity::Low | Severity::Info => Severity::Info,
        }
    }

    /// The SARIF result level: `error` for high and critical, `warning` for medium, `note` below.
    pub fn sarif_level(self) -> &'static str {
        match self {
            Severity::Critical | Severity::High => "error",
            Severity::Medium => "warning",
            Severity::Low | Severity::Info => "note",
        }
    }

    /// A representative score on GitHub's `security-severity` scale (0.0-10.0), for rules
    /// without a score of their own (a CVE brings its CVSS score).
    pub fn security_severity(self) -> &'static str {
        match self {
            Severity::Critical => "9.5",
            Severity::High => "8.0",
            Severity::Medium => "5.5",
            Severity::Low => "3.0",
            Severity::Info => "1.0",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown severity {s:?} (expected info, low, medium, high or critical)")
            })
    }
}

/// The `--fail-on` threshold: findings at or above it fail the run; `Never` (spelled `none` or
/// `never`) never fails on findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    At(Severity),
    Never,
}

impl FailOn {
    /// True when a finding of `severity` reaches the threshold.
    pub fn reached_by(self, severity: Severity) -> bool {
        match self {
            FailOn::At(threshold) => severity >= threshold,
            FailOn::Never => false,
        }
    }
}

impl FromStr for FailOn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("none") || s.eq_ignore_ascii_case("never") {
            return Ok(FailOn::Never);
        }
        s.parse::<Severity>().map(FailOn::At).map_err(|_| {
            format!(
                "unknown --fail-on {s:?} (expected info, low, medium, high, critical, or none to never fail on findings)"
            )
        })
    }
}

impl fmt::Display for FailOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailOn::At(s) => s.fmt(f),
            FailOn::Never => f.write_str("none"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
        assert_eq!("HIGH".parse::<Severity>().unwrap(), Severity::High);
        assert!("urgent".parse::<Severity>().is_err());
        assert_eq!(Severity::Info.lowered(), Severity::Info);
        assert_eq!(
            serde_json::to_string(&Severity::Medium).unwrap(),
            "\"medium\""
        );
    }

    #[test]
    fn fail_on_thresholds() {
        let high: FailOn = "high".parse().unwrap();
        assert!(high.reached_by(Severity::Critical) && high.reached_by(Severity::High));
        assert!(!high.reached_by(Severity::Medium));
        let info: FailOn = "info".parse().unwrap();
        assert!(Severity::ALL.iter().all(|s| info.reached_by(*s)));
        for never in ["none", "never", "NONE"] {
            let f: FailOn = never.parse().unwrap();
            assert_eq!(f, FailOn::Never);
            assert!(!f.reached_by(Severity::Critical));
        }
        let err = "urgent".parse::<FailOn>().unwrap_err();
        assert!(err.contains("--fail-on") && err.contains("none"), "{err}");
        assert_eq!(FailOn::At(Severity::Low).to_string(), "low");
    }
}
