//! The kernel audit report: which CVEs affect the kernel, which a sandbox reaches, the upgrade that
//! helps most, and the hardening posture. It is a `watertight_report::Report`: its rows (affected
//! CVEs and failing hardening checks) feed the shared writers and the one `--fail-on` decision.

use crate::cve::{CveRecord, Severity};
use crate::database::{CveDatabase, SourceInfo};
use crate::hardening::HardeningCheck;
use crate::reachability::{IsolationTier, PerTier, Reachability, TierMaps};
use crate::version::{KernelRelease, KernelVersion};
use rayon::prelude::*;
use serde::Serialize;

/// How the CVE exposure was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// A plain upstream release: the records decide it.
    Upstream,
    /// A vendor kernel decided by its upstream part because the operator asked
    /// (`--assume-upstream`); backports make this an over-estimate.
    AssumedUpstream,
    /// A vendor kernel: backports mean the upstream number cannot decide it.
    Undecided,
    /// No CVE records or index were given.
    NoCveSource,
}

/// One affected CVE.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CveFinding {
    pub id: String,
    pub title: String,
    /// CVSS 3.1 base score, where the record has one.
    pub cvss: Option<f32>,
    pub cvss_vector: Option<String>,
    pub severity: Severity,
    /// The first release of the kernel's own stable branch that is not affected.
    pub fixed_in: Option<String>,
    /// The first mainline release with the fix.
    pub fixed_in_mainline: Option<String>,
    pub program_files: Vec<String>,
    pub reachable_from_sandbox: bool,
    /// Why a default sandbox cannot reach it (empty when reachable).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreachable_because: Vec<String>,
    /// Side by side: reachable from a namespace sandbox, from the gVisor tier, from the VM tier.
    pub reachable_from: PerTier<bool>,
    /// Why each tier cannot reach it (an empty list where it can).
    pub unreachable_because_by_tier: PerTier<Vec<String>>,
}

/// Counts for one severity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeverityCount {
    pub severity: Severity,
    pub affected: usize,
    /// Reachable from a default (namespace) sandbox.
    pub reachable: usize,
    /// Reachable per isolation tier.
    pub reachable_by_tier: PerTier<usize>,
}

/// The smallest release in the kernel's own branch that removes the most affected CVEs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UpgradeAdvice {
    pub branch: String,
    pub target: String,
    /// Affected CVEs the target no longer has.
    pub removes: usize,
    /// CVEs the target still has (including any it newly has).
    pub remaining: usize,
    /// Affected CVEs no release of this branch fixes (they need a newer branch).
    pub unfixed_in_branch: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KernelReport {
    /// The release as given (`uname -r` or `--kernel-version`).
    pub kernel_version: String,
    pub upstream_version: String,
    /// The builder named by the release suffix, for vendor kernels.
    pub vendor: Option<String>,
    pub decision: Decision,
    /// Null when the exposure could not be decided.
    pub affected_count: Option<usize>,
    /// Reachable from a default (namespace) sandbox.
    pub reachable_count: Option<usize>,
    /// Reachable per isolation tier (null when undecided).
    pub reachable_counts: Option<PerTier<usize>>,
    /// The tier `--isolation` named: the headline and `--fail-on-reachable-only` use it.
    pub isolation: IsolationTier,
    pub severity_counts: Vec<SeverityCount>,
    pub upgrade: Option<UpgradeAdvice>,
    pub notes: Vec<String>,
    pub cves: Vec<CveFinding>,
    pub hardening: Vec<HardeningCheck>,
    pub source: Option<SourceInfo>,
    /// The `--fail-on-reachable-only` policy: only CVEs reachable from the `isolation` tier count
    /// toward `--fail-on` (failing hardening checks always do). Not part of the output.
    #[serde(skip)]
    pub gate_reachable_only: bool,
}

/// What to audit.
pub struct AuditInput<'a> {
    pub release: &'a KernelRelease,
    /// Decide a vendor kernel by its upstream part anyway.
    pub assume_upstream: bool,
    pub database: Option<&'a CveDatabase>,
    pub reachability: &'a TierMaps,
    /// The tier the report is about (`--isolation`): what `--fail-on-reachable-only` counts.
    pub isolation: IsolationTier,
    pub hardening: Vec<HardeningCheck>,
}

/// Builds the report.
pub fn audit(input: AuditInput<'_>) -> KernelReport {
    let release = input.release;
    let v = release.upstream;
    let mut notes = Vec::new();
    let decision = match (input.database, release.is_upstream(), input.assume_upstream) {
        (None, _, _) => {
            notes.push(
                "no CVE source given: pass --cve-db DIR or --cve-index FILE to check CVE exposure"
                    .into(),
            );
            Decision::NoCveSource
        }
        (Some(_), true, _) => Decision::Upstream,
        (Some(_), false, true) => {
            notes.push(format!(
                "{} is a vendor kernel ({}); decided by its upstream part {} as asked (--assume-upstream): vendor backports may have fixed some of these",
                release.release,
                release.vendor.as_deref().unwrap_or("unknown vendor"),
                v
            ));
            Decision::AssumedUpstream
        }
        (Some(_), false, false) => {
            notes.push(format!(
                "{} is a vendor kernel ({}): vendors backport fixes without changing the upstream number {}, so the upstream records cannot decide it; check the vendor's advisories, or pass --assume-upstream to decide by the upstream part anyway",
                release.release,
                release.vendor.as_deref().unwrap_or("unknown vendor"),
                v
            ));
            Decision::Undecided
        }
    };
    if let Some(db) = input.database {
        if db.source.skipped_count > 0 {
            notes.push(format!(
                "{} record file(s) were skipped as unreadable or malformed (listed under source.skipped)",
                db.source.skipped_count
            ));
        }
    }

    let mut report = KernelReport {
        kernel_version: release.release.clone(),
        upstream_version: v.to_string(),
        vendor: release.vendor.clone(),
        decision,
        affected_count: None,
        reachable_count: None,
        reachable_counts: None,
        isolation: input.isolation,
        severity_counts: Vec::new(),
        upgrade: None,
        notes,
        cves: Vec::new(),
        hardening: input.hardening,
        source: input.database.map(|db| db.source.clone()),
        gate_reachable_only: false,
    };
    let db = match (input.database, decision) {
        (Some(db), Decision::Upstream | Decision::AssumedUpstream) => db,
        _ => return report,
    };

    let affected = db.affecting(&v);
    let fixes: Vec<Option<KernelVersion>> = affected
        .par_iter()
        .map(|r| r.rule.fixed_in_branch(&v))
        .collect();
    let mut findings: Vec<CveFinding> = affected
        .par_iter()
        .zip(fixes.par_iter())
        .map(|(r, fix)| finding(r, *fix, input.reachability))
        .collect();
    // Most severe first, then by id.
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| crate::cve::cve_sort_key(&a.id).cmp(&crate::cve::cve_sort_key(&b.id)))
    });
    let count = |tier: IsolationTier, severity: Option<Severity>| {
        findings
            .iter()
            .filter(|f| *f.reachable_from.get(tier) && severity.is_none_or(|s| f.severity == s))
            .count()
    };
    let reachable = count(IsolationTier::Namespaces, None);
    report.reachable_counts = Some(PerTier::from_fn(|tier| count(tier, None)));
    report.severity_counts = Severity::ALL
        .iter()
        .map(|&s| SeverityCount {
            severity: s,
            affected: findings.iter().filter(|f| f.severity == s).count(),
            reachable: count(IsolationTier::Namespaces, Some(s)),
            reachable_by_tier: PerTier::from_fn(|tier| count(tier, Some(s))),
        })
        .collect();
    report.upgrade = upgrade_advice(db, &v, &affected, &fixes);
    report.affected_count = Some(findings.len());
    report.reachable_count = Some(reachable);
    report.cves = findings;
    report
}

fn finding(r: &CveRecord, fixed_in: Option<KernelVersion>, maps: &TierMaps) -> CveFinding {
    let by_tier = maps.classify(r);
    let reasons = |reach: &Reachability| match reach {
        Reachability::Reachable => Vec::new(),
        Reachability::Unreachable(reasons) => reasons.clone(),
    };
    CveFinding {
        id: r.id.clone(),
        title: r.title.clone(),
        cvss: r.cvss.as_ref().map(|c| c.score),
        cvss_vector: r.cvss.as_ref().map(|c| c.vector.clone()),
        severity: r.severity(),
        fixed_in: fixed_in.map(|f| f.to_string()),
        fixed_in_mainline: r.rule.fixed_in_mainline().map(|f| f.to_string()),
        program_files: r.program_files.clone(),
        reachable_from_sandbox: by_tier.namespaces.is_reachable(),
        unreachable_because: reasons(&by_tier.namespaces),
        reachable_from: PerTier::from_fn(|tier| by_tier.get(tier).is_reachable()),
        unreachable_because_by_tier: PerTier::from_fn(|tier| reasons(by_tier.get(tier))),
    }
}

/// Among the releases of `v`'s branch that fix some affected CVE, the one removing the most
/// affected CVEs (the smallest such release on a tie). `fixes[i]` is `affected[i]`'s first fixed
/// release in the branch.
pub fn upgrade_advice(
    db: &CveDatabase,
    v: &KernelVersion,
    affected: &[&CveRecord],
    fixes: &[Option<KernelVersion>],
) -> Option<UpgradeAdvice> {
    let unfixed = fixes.iter().filter(|f| f.is_none()).count();
    let mut fixed_by: Vec<KernelVersion> = fixes.iter().flatten().copied().collect();
    fixed_by.sort_unstable();
    let mut candidates = fixed_by.clone();
    candidates.dedup();
    // A CVE is affected at every release between `v` and its first fix, so at most
    // `#{fix <= T}` CVEs are gone at T. That bound grows with T, so evaluating candidates from the
    // newest down can stop as soon as the bound falls below the best exact count (a later stable
    // backport can re-introduce a bug, hence the exact count).
    let mut best: Option<(KernelVersion, usize)> = None;
    for target in candidates.iter().rev() {
        let bound = fixed_by.partition_point(|f| f <= target);
        if best.is_some_and(|(_, removes)| bound < removes) {
            break;
        }
        let removes = affected
            .iter()
            .filter(|r| !r.rule.is_affected(target))
            .count();
        if best.is_none_or(|(_, b)| removes >= b) {
            best = Some((*target, removes));
        }
    }
    let (target, removes) = best?;
    Some(UpgradeAdvice {
        branch: v.branch().to_string(),
        target: target.to_string(),
        removes,
        remaining: db.affected_count(&target),
        unfixed_in_branch: unfixed,
    })
}

/// A CVE's CVSS 3.1 severity on the one report scale: by name, `NONE` as `Info`, and an unscored
/// CVE (an unknown risk) as `Low`.
impl From<Severity> for watertight_report::Severity {
    fn from(s: Severity) -> Self {
        use watertight_report::Severity as Scale;
        match s {
            Severity::Unscored | Severity::Low => Scale::Low,
            Severity::None => Scale::Info,
            Severity::Medium => Scale::Medium,
            Severity::High => Scale::High,
            Severity::Critical => Scale::Critical,
        }
    }
}

impl watertight_report::Report for KernelReport {
    fn command(&self) -> &str {
        "kernel"
    }

    fn rows(&self) -> Vec<watertight_report::Row> {
        crate::format::sarif::rows(self)
    }

    fn write_table(&self, out: &mut String) {
        crate::format::table::write(self, out);
    }

    fn write_metrics(&self, out: &mut watertight_report::Exposition) {
        crate::format::prometheus::write(self, out);
    }

    fn sarif_properties(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut props = serde_json::Map::new();
        props.insert("kernel_version".into(), self.kernel_version.clone().into());
        props.insert("decision".into(), serde_json::json!(self.decision));
        props.insert(
            "affected_count".into(),
            serde_json::json!(self.affected_count),
        );
        props.insert(
            "reachable_count".into(),
            serde_json::json!(self.reachable_count),
        );
        props.insert(
            "reachable_counts".into(),
            serde_json::json!(self.reachable_counts),
        );
        props.insert("isolation".into(), serde_json::json!(self.isolation));
        props.insert("notes".into(), serde_json::json!(self.notes));
        props
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use watertight_report::Severity as Scale;

    #[test]
    fn cvss_severities_map_onto_the_one_scale() {
        assert_eq!(Scale::from(Severity::Unscored), Scale::Low);
        assert_eq!(Scale::from(Severity::None), Scale::Info);
        assert_eq!(Scale::from(Severity::Critical), Scale::Critical);
        // The mapping keeps the order of every scored severity.
        let scored = [
            Severity::None,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ];
        for pair in scored.windows(2) {
            assert!(Scale::from(pair[0]) < Scale::from(pair[1]));
        }
    }
}
