//! One kernel CVE as the audit needs it, and the decision "is upstream version V affected".
//!
//! The kernel CNA writes two `affected` entries per record (see SOURCE.md next to the records):
//! one with `defaultStatus: "unaffected"` listing stable-only affected ranges, and one with
//! `defaultStatus: "affected"` whose `unaffected` statements carve out where the bug is absent
//! (before it was introduced) or fixed (in stable branch X.Y from a release on, in mainline from a
//! release on). A version is affected when a stable-only range holds it, or when some entry
//! defaults to affected and no carve-out applies.

use crate::version::KernelVersion;
use serde::{Deserialize, Serialize};
use std::fmt;

/// CVSS 3.1 qualitative severity, plus `Unscored` for records without a CVSS 3.1 metric (most of
/// the CNA's records carry none). Ordered from least to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The record carries no CVSS 3.1 metric.
    Unscored,
    /// CVSS "none" (score 0.0).
    None,
    /// CVSS 0.1 to 3.9.
    Low,
    /// CVSS 4.0 to 6.9.
    Medium,
    /// CVSS 7.0 to 8.9.
    High,
    /// CVSS 9.0 to 10.0.
    Critical,
}

impl Severity {
    /// Every severity, most severe first (the order of report summaries).
    pub const ALL: [Severity; 6] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::None,
        Severity::Unscored,
    ];

    /// The lowercase name, as in reports and `--fail-on`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unscored => "unscored",
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Reads a CVSS `baseSeverity` (any case).
    pub fn from_cvss(text: &str) -> Option<Severity> {
        match text.to_ascii_lowercase().as_str() {
            "none" => Some(Severity::None),
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The record's CVSS 3.1 base metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cvss {
    /// The base score, 0.0 to 10.0.
    pub score: f32,
    /// The qualitative severity the record gives.
    pub severity: Severity,
    /// The CVSS vector string, e.g. `CVSS:3.1/AV:L/...`.
    pub vector: String,
}

/// `low <= v < high`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRange {
    /// First version in the range.
    pub low: KernelVersion,
    /// First version past the range.
    pub high: KernelVersion,
}

impl VersionRange {
    /// Whether `v` lies in the range.
    pub fn contains(&self, v: &KernelVersion) -> bool {
        self.low <= *v && *v < self.high
    }
}

/// "Fixed in stable branch `branch` (written `X.Y.*`) from `fixed` on."
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchFix {
    /// The stable branch, e.g. 6.1.
    pub branch: KernelVersion,
    /// The first release of that branch with the fix.
    pub fixed: KernelVersion,
}

impl BranchFix {
    /// True when `v` is in this fix's stable branch at or after the fixing release. The branch is
    /// the written `X.Y.*` prefix, narrowed for 2.6.x-era four-part releases (whose branches were
    /// 2.6.32.y) to the fixing release's own branch.
    pub fn covers(&self, v: &KernelVersion) -> bool {
        v.starts_with(&self.branch) && v.branch() == self.fixed.branch() && *v >= self.fixed
    }
}

/// Everything the records say about which upstream versions carry the bug.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AffectRule {
    /// Some `affected` entry defaults to affected (false for stable-only bugs never in mainline).
    pub default_affected: bool,
    /// Stable-only affected ranges (from the `defaultStatus: "unaffected"` entry).
    pub affected_ranges: Vec<VersionRange>,
    /// Unaffected ranges, usually `0 <= v < introduced`.
    pub unaffected_ranges: Vec<VersionRange>,
    /// Fixed in a stable branch from a release on.
    pub branch_fixes: Vec<BranchFix>,
    /// Fixed in mainline from a release on (`original_commit_for_fix`).
    pub mainline_fixes: Vec<KernelVersion>,
    /// The mainline release that introduced the bug, where stated.
    pub introduced: Vec<KernelVersion>,
}

impl AffectRule {
    /// Is upstream version `v` affected?
    pub fn is_affected(&self, v: &KernelVersion) -> bool {
        if self.affected_ranges.iter().any(|r| r.contains(v)) {
            return true;
        }
        if !self.default_affected {
            return false;
        }
        if self.unaffected_ranges.iter().any(|r| r.contains(v)) {
            return false;
        }
        if self.branch_fixes.iter().any(|f| f.covers(v)) {
            return false;
        }
        !self.mainline_fixes.iter().any(|m| v >= m)
    }

    /// The first release after `v` in `v`'s own stable branch that is not affected, if the records
    /// name one. Status changes only at the boundaries the record names, so checking those
    /// boundaries in order finds it.
    pub fn fixed_in_branch(&self, v: &KernelVersion) -> Option<KernelVersion> {
        let branch = v.branch();
        let mut candidates: Vec<KernelVersion> = self
            .branch_fixes
            .iter()
            .map(|f| f.fixed)
            .chain(self.affected_ranges.iter().map(|r| r.high))
            .chain(self.unaffected_ranges.iter().map(|r| r.low))
            .chain(self.mainline_fixes.iter().copied())
            .filter(|c| c > v && c.branch() == branch)
            .collect();
        candidates.sort();
        candidates.into_iter().find(|c| !self.is_affected(c))
    }

    /// The earliest mainline release that carries the fix.
    pub fn fixed_in_mainline(&self) -> Option<KernelVersion> {
        self.mainline_fixes.iter().min().copied()
    }
}

/// One published kernel CVE.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CveRecord {
    /// `CVE-2024-26581`.
    pub id: String,
    /// The record's title: subsystem and a one-line summary.
    pub title: String,
    /// The CVSS 3.1 metric, when the record has one.
    pub cvss: Option<Cvss>,
    /// Source files the fix touches (`net/netfilter/nft_set_rbtree.c`), deduplicated.
    pub program_files: Vec<String>,
    /// Which versions are affected and which are fixed.
    pub rule: AffectRule,
}

impl CveRecord {
    /// The record's severity (`Unscored` without CVSS).
    pub fn severity(&self) -> Severity {
        self.cvss
            .as_ref()
            .map_or(Severity::Unscored, |c| c.severity)
    }

    /// A sort key that orders CVE ids by year, then number (CVE-2024-9999 < CVE-2024-10000).
    pub fn sort_key(&self) -> (u32, u64, &str) {
        cve_sort_key(&self.id)
    }
}

pub(crate) fn cve_sort_key(id: &str) -> (u32, u64, &str) {
    let mut parts = id.splitn(3, '-').skip(1);
    let year = parts.next().and_then(|y| y.parse().ok()).unwrap_or(0);
    let number = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    (year, number, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KernelVersion {
        KernelVersion::parse(s).unwrap()
    }
    fn range(a: &str, b: &str) -> VersionRange {
        VersionRange {
            low: v(a),
            high: v(b),
        }
    }

    /// CVE-2024-26581 as the CNA wrote it (introduced in 6.5, backported to 6.4.8 and older
    /// stable branches, fixed in several branches and in mainline 6.8).
    fn nft_rbtree() -> AffectRule {
        AffectRule {
            default_affected: true,
            affected_ranges: vec![
                range("5.4.262", "5.4.269"),
                range("5.10.190", "5.10.210"),
                range("6.1.43", "6.1.78"),
                range("6.4.8", "6.5"),
            ],
            unaffected_ranges: vec![range("0", "6.5")],
            branch_fixes: ["5.4.269", "5.10.210", "6.1.78", "6.6.17", "6.7.5"]
                .iter()
                .map(|f| BranchFix {
                    branch: v(f).branch(),
                    fixed: v(f),
                })
                .collect(),
            mainline_fixes: vec![v("6.8")],
            introduced: vec![v("6.5")],
        }
    }

    #[test]
    fn per_branch_semantics() {
        let r = nft_rbtree();
        // Before introduction and before the backport: unaffected.
        assert!(!r.is_affected(&v("6.1.42")));
        assert!(!r.is_affected(&v("6.4.7")));
        // Stable-only backport ranges.
        assert!(r.is_affected(&v("6.1.43")));
        assert!(r.is_affected(&v("6.1.77")));
        assert!(!r.is_affected(&v("6.1.78")));
        assert!(r.is_affected(&v("6.4.16")));
        // Mainline from introduction until the branch fix / mainline fix.
        assert!(r.is_affected(&v("6.5")));
        assert!(r.is_affected(&v("6.6.16")));
        assert!(!r.is_affected(&v("6.6.17")));
        assert!(r.is_affected(&v("6.7")));
        assert!(!r.is_affected(&v("6.7.5")));
        assert!(!r.is_affected(&v("6.8")));
        assert!(!r.is_affected(&v("6.18.44")));
        // A branch never fixed in stable is fixed only by moving to 6.8.
        assert_eq!(r.fixed_in_branch(&v("6.5.3")), None);
        assert_eq!(r.fixed_in_mainline(), Some(v("6.8")));
        assert_eq!(r.fixed_in_branch(&v("6.1.50")), Some(v("6.1.78")));
        assert_eq!(r.fixed_in_branch(&v("6.4.10")), None);
    }

    #[test]
    fn stable_only_bug_defaults_to_unaffected() {
        let r = AffectRule {
            affected_ranges: vec![range("6.4.5", "6.4.10")],
            ..AffectRule::default()
        };
        assert!(!r.is_affected(&v("6.4.4")));
        assert!(r.is_affected(&v("6.4.5")));
        assert!(!r.is_affected(&v("6.4.10")));
        assert!(!r.is_affected(&v("6.5")));
        assert_eq!(r.fixed_in_branch(&v("6.4.6")), Some(v("6.4.10")));
    }

    #[test]
    fn two_six_branch_fix_stays_in_its_branch() {
        // "2.6.39.2 lessThanOrEqual 2.6.*" fixes the 2.6.39 series only.
        let f = BranchFix {
            branch: v("2.6"),
            fixed: v("2.6.39.2"),
        };
        assert!(f.covers(&v("2.6.39.2")));
        assert!(f.covers(&v("2.6.39.4")));
        assert!(!f.covers(&v("2.6.39.1")));
        assert!(!f.covers(&v("2.6.32.71")));
        assert!(!f.covers(&v("3.0")));
    }

    #[test]
    fn cve_ids_sort_numerically() {
        let mut ids = ["CVE-2024-10000", "CVE-2024-9999", "CVE-2023-52433"];
        ids.sort_by_key(|id| cve_sort_key(id));
        assert_eq!(ids, ["CVE-2023-52433", "CVE-2024-9999", "CVE-2024-10000"]);
    }
}
