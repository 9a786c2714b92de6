//! Choice of isolation by risk: run workloads on a kernel of their own (gVisor or a VM) when the
//! node's kernel has more than a set number of published CVEs, of at least a set severity, that a
//! namespace sandbox can reach. Decided from the same report `audit kernel` prints, once per
//! batch (the running kernel does not change under it).
//!
//! An exposure that cannot be decided (a vendor kernel without `assume_upstream`) counts as over
//! the threshold: not knowing the risk is no reason to take it.
//!
//! The policy file (TOML, docs/isolation.md):
//!
//! ```toml
//! escalate_above = 20        # more than 20 reachable CVEs ...
//! min_severity = "high"      # ... of severity high or critical ...
//! escalate_to = "gvisor"     # ... and jobs run under gVisor instead of namespaces
//! cve_index = "kernel-cves.idx"   # or cve_db = "/srv/vulns/cve/published"
//! # kernel_version = "6.1.100"    # default: the running kernel
//! # assume_upstream = true        # decide a vendor kernel by its upstream part
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cve::Severity;
use crate::database::CveDatabase;
use crate::error::KernelAuditError;
use crate::reachability::{IsolationTier, TierMaps};
use crate::report::{audit, AuditInput, Decision, KernelReport};
use crate::version::KernelRelease;

/// The most bytes a policy file may have (it is a handful of keys).
const MAX_POLICY_BYTES: u64 = 64 * 1024;

/// When to leave the namespace tier, and for which one.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskPolicy {
    /// Escalate when more than this many CVEs are reachable from a namespace sandbox.
    pub escalate_above: usize,
    /// Count only CVEs of this severity or worse (`unscored` counts every CVE: most of the kernel
    /// CNA's records carry no CVSS score).
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// The tier to use instead: gvisor or vm.
    #[serde(default = "default_escalate_to")]
    pub escalate_to: IsolationTier,
    /// A compact index written by `audit kernel --index-out` (relative to the policy file).
    #[serde(default)]
    pub cve_index: Option<PathBuf>,
    /// The kernel CNA's cve/published directory (relative to the policy file).
    #[serde(default)]
    pub cve_db: Option<PathBuf>,
    /// The kernel release to judge (default: the running kernel's).
    #[serde(default)]
    pub kernel_version: Option<String>,
    /// Decide a vendor kernel by its upstream part (an over-estimate: vendors backport fixes).
    #[serde(default)]
    pub assume_upstream: bool,
}

fn default_min_severity() -> Severity {
    Severity::High
}

fn default_escalate_to() -> IsolationTier {
    IsolationTier::Gvisor
}

/// What the policy chose, and why, in words a log line and a results file can carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RiskChoice {
    /// The tier jobs without their own choice run under.
    pub tier: IsolationTier,
    /// The kernel release judged.
    pub kernel_version: String,
    /// Reachable CVEs of at least `min_severity`; None when the exposure was undecided.
    pub reachable: Option<usize>,
    /// The policy's threshold.
    pub escalate_above: usize,
    /// One sentence: the count, the threshold and the tier, or why it was undecided.
    pub reason: String,
}

impl RiskPolicy {
    /// Reads and checks a policy file; relative CVE paths are resolved against its directory.
    pub fn load(path: &Path) -> Result<Self, KernelAuditError> {
        let read_err = |source| KernelAuditError::PolicyRead {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(file, MAX_POLICY_BYTES + 1),
            &mut text,
        )
        .map_err(read_err)?;
        if text.len() as u64 > MAX_POLICY_BYTES {
            return Err(KernelAuditError::PolicyInvalid {
                path: path.to_path_buf(),
                reason: format!("larger than {MAX_POLICY_BYTES} bytes"),
            });
        }
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|reason| KernelAuditError::PolicyInvalid {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses policy text; `base` is where relative CVE paths start.
    pub fn parse(text: &str, base: &Path) -> Result<Self, String> {
        let mut p: RiskPolicy = toml::from_str(text).map_err(|e| {
            // toml's message spans lines (it quotes the source); the first line names the key.
            e.message().lines().next().unwrap_or("").to_string()
        })?;
        if p.escalate_to == IsolationTier::Namespaces {
            return Err(
                "escalate_to: \"namespaces\" is the tier escalation leaves; use \"gvisor\" or \"vm\""
                    .into(),
            );
        }
        match (&p.cve_index, &p.cve_db) {
            (None, None) => {
                return Err("needs cve_index = FILE (from `watertight audit kernel --cve-db DIR --index-out FILE`) or cve_db = DIR".into())
            }
            (Some(_), Some(_)) => return Err("give cve_index or cve_db, not both".into()),
            _ => {}
        }
        if let Some(v) = &p.kernel_version {
            KernelRelease::parse(v).map_err(|e| format!("kernel_version: {e}"))?;
        }
        for f in [&mut p.cve_index, &mut p.cve_db].into_iter().flatten() {
            if f.is_relative() {
                *f = base.join(&*f);
            }
        }
        Ok(p)
    }

    /// Audits the kernel (`kernel_version`, else `<host_root>/proc/sys/kernel/osrelease`) against
    /// the policy's CVE data and chooses. The parallel work runs on a pool whose threads have
    /// exited when this returns: an OCI runtime decides and then forks, which it refuses to do
    /// while other threads (and the locks they may hold) exist.
    pub fn decide(&self, host_root: &Path) -> Result<RiskChoice, KernelAuditError> {
        match rayon::ThreadPoolBuilder::new().build_scoped(
            |thread| thread.run(),
            |pool| pool.install(|| self.decide_here(host_root)),
        ) {
            Ok(r) => r,
            // No threads to be had: decide on this one.
            Err(_) => self.decide_here(host_root),
        }
    }

    fn decide_here(&self, host_root: &Path) -> Result<RiskChoice, KernelAuditError> {
        let database = match (&self.cve_index, &self.cve_db) {
            (Some(index), _) => CveDatabase::from_index(index)?,
            (None, Some(dir)) => CveDatabase::from_records_dir(dir)?,
            (None, None) => unreachable!("parse requires one CVE source"),
        };
        let text = match &self.kernel_version {
            Some(v) => v.clone(),
            None => {
                let path = host_root.join("proc/sys/kernel/osrelease");
                std::fs::read_to_string(&path)
                    .map_err(|source| KernelAuditError::Release { path, source })?
                    .trim()
                    .to_string()
            }
        };
        let release = KernelRelease::parse(&text)?;
        let report = audit(AuditInput {
            release: &release,
            assume_upstream: self.assume_upstream,
            database: Some(&database),
            reachability: &TierMaps::built_in(),
            isolation: IsolationTier::Namespaces,
            hardening: Vec::new(),
        });
        Ok(self.choose(&report))
    }

    /// The choice for an audited kernel.
    pub fn choose(&self, report: &KernelReport) -> RiskChoice {
        let severity = if self.min_severity == Severity::Unscored {
            "any severity".to_string()
        } else {
            format!("severity {} or worse", self.min_severity)
        };
        let decided = matches!(
            report.decision,
            Decision::Upstream | Decision::AssumedUpstream
        );
        let reachable = decided.then(|| {
            report
                .severity_counts
                .iter()
                .filter(|c| c.severity >= self.min_severity)
                .map(|c| *c.reachable_by_tier.get(IsolationTier::Namespaces))
                .sum::<usize>()
        });
        let (tier, reason) = match reachable {
            None => (
                self.escalate_to,
                format!(
                    "the CVE exposure of {} is undecided ({}): counted as over the threshold; set kernel_version to its upstream release or assume_upstream = true to decide it",
                    report.kernel_version,
                    match report.decision {
                        Decision::Undecided => "a vendor kernel",
                        _ => "no CVE data",
                    }
                ),
            ),
            Some(n) if n > self.escalate_above => (
                self.escalate_to,
                format!(
                    "{n} CVEs of {severity} in {} are reachable from a namespace sandbox, more than {}: {}",
                    report.kernel_version,
                    self.escalate_above,
                    self.escalate_to.as_str()
                ),
            ),
            Some(n) => (
                IsolationTier::Namespaces,
                format!(
                    "{n} CVEs of {severity} in {} are reachable from a namespace sandbox, at most {}: namespaces",
                    report.kernel_version, self.escalate_above
                ),
            ),
        };
        RiskChoice {
            tier,
            kernel_version: report.kernel_version.clone(),
            reachable,
            escalate_above: self.escalate_above,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reachability::PerTier;
    use crate::report::SeverityCount;

    fn report(decision: Decision, reachable: &[(Severity, usize)]) -> KernelReport {
        KernelReport {
            kernel_version: "6.1.100".into(),
            upstream_version: "6.1.100".into(),
            vendor: None,
            decision,
            affected_count: None,
            reachable_count: None,
            reachable_counts: None,
            isolation: IsolationTier::Namespaces,
            severity_counts: reachable
                .iter()
                .map(|&(severity, n)| SeverityCount {
                    severity,
                    affected: n * 2,
                    reachable: n,
                    reachable_by_tier: PerTier {
                        namespaces: n,
                        gvisor: n / 4,
                        vm: n / 3,
                    },
                })
                .collect(),
            upgrade: None,
            notes: Vec::new(),
            cves: Vec::new(),
            hardening: Vec::new(),
            source: None,
            gate_reachable_only: false,
        }
    }

    fn policy(text: &str) -> RiskPolicy {
        RiskPolicy::parse(text, Path::new("/etc/watertight")).unwrap()
    }

    const COUNTS: &[(Severity, usize)] = &[
        (Severity::Critical, 15),
        (Severity::High, 40),
        (Severity::Medium, 3),
        (Severity::Unscored, 53),
    ];

    #[test]
    fn counts_the_severities_at_or_above_the_minimum_and_escalates_only_above_the_threshold() {
        let r = report(Decision::Upstream, COUNTS);
        let p = policy("escalate_above = 55\ncve_index = \"k.idx\"");
        let c = p.choose(&r);
        assert_eq!((c.tier, c.reachable), (IsolationTier::Namespaces, Some(55)));
        assert!(c.reason.contains("at most 55"), "{}", c.reason);
        let p = policy("escalate_above = 54\ncve_index = \"k.idx\"");
        let c = p.choose(&r);
        assert_eq!((c.tier, c.reachable), (IsolationTier::Gvisor, Some(55)));
        assert!(c.reason.contains("more than 54"), "{}", c.reason);
        let p = policy(
            "escalate_above = 100\nmin_severity = \"unscored\"\nescalate_to = \"vm\"\ncve_index = \"k.idx\"",
        );
        let c = p.choose(&r);
        assert_eq!((c.tier, c.reachable), (IsolationTier::Vm, Some(111)));
        assert!(c.reason.contains("any severity"), "{}", c.reason);
        let p = policy("escalate_above = 14\nmin_severity = \"critical\"\ncve_index = \"k.idx\"");
        assert_eq!(p.choose(&r).reachable, Some(15));
    }

    #[test]
    fn an_undecided_kernel_escalates() {
        let p = policy("escalate_above = 1000000\ncve_db = \"/srv/cve\"");
        for d in [Decision::Undecided, Decision::NoCveSource] {
            let c = p.choose(&report(d, &[]));
            assert_eq!((c.tier, c.reachable), (IsolationTier::Gvisor, None));
            assert!(c.reason.contains("undecided"), "{}", c.reason);
        }
        let c = p.choose(&report(Decision::AssumedUpstream, &[]));
        assert_eq!((c.tier, c.reachable), (IsolationTier::Namespaces, Some(0)));
    }

    #[test]
    fn relative_cve_paths_start_at_the_policy_file() {
        let p = policy("escalate_above = 1\ncve_index = \"k.idx\"");
        assert_eq!(
            p.cve_index.as_deref(),
            Some(Path::new("/etc/watertight/k.idx"))
        );
        let p = policy("escalate_above = 1\ncve_db = \"/srv/cve\"");
        assert_eq!(p.cve_db.as_deref(), Some(Path::new("/srv/cve")));
        assert_eq!(
            (p.min_severity, p.escalate_to, p.assume_upstream),
            (Severity::High, IsolationTier::Gvisor, false)
        );
    }

    #[test]
    fn a_bad_policy_names_the_key() {
        let bad = |text: &str, says: &str| {
            let e = RiskPolicy::parse(text, Path::new(".")).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        };
        bad("cve_index = \"k\"", "escalate_above");
        bad("escalate_above = -1\ncve_index = \"k\"", "");
        bad("escalate_above = 1", "cve_index");
        bad(
            "escalate_above = 1\ncve_index = \"k\"\ncve_db = \"d\"",
            "not both",
        );
        bad(
            "escalate_above = 1\ncve_index = \"k\"\nescalate_to = \"namespaces\"",
            "escalate_to",
        );
        bad(
            "escalate_above = 1\ncve_index = \"k\"\nescalate_to = \"kvm\"",
            "kvm",
        );
        bad(
            "escalate_above = 1\ncve_index = \"k\"\nmin_severity = \"severe\"",
            "severe",
        );
        bad(
            "escalate_above = 1\ncve_index = \"k\"\nthreshold = 3",
            "threshold",
        );
        bad(
            "escalate_above = 1\ncve_index = \"k\"\nkernel_version = \"six\"",
            "kernel_version",
        );
    }

    proptest::proptest! {
        // Any text, and any mutation of a good policy: a policy or a one-line reason, no panic.
        #[test]
        fn parse_never_panics(text in "\\PC{0,200}", cut in 0usize..120, junk in "[ -~\n]{0,8}") {
            let good = "escalate_above = 20\nmin_severity = \"high\"\nescalate_to = \"gvisor\"\ncve_index = \"k.idx\"\n";
            let at = cut.min(good.len());
            let mutated = format!("{}{junk}{}", &good[..at], &good[at..]);
            for t in [text.as_str(), mutated.as_str()] {
                if let Err(e) = RiskPolicy::parse(t, Path::new(".")) {
                    proptest::prop_assert!(!e.contains('\n'), "{e}");
                }
            }
        }
    }

    #[test]
    fn load_refuses_a_missing_or_huge_file_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let e = RiskPolicy::load(&missing).unwrap_err().to_string();
        assert!(e.contains("nope.toml"), "{e}");
        let huge = dir.path().join("huge.toml");
        std::fs::write(&huge, "#".repeat(MAX_POLICY_BYTES as usize + 10)).unwrap();
        let e = RiskPolicy::load(&huge).unwrap_err().to_string();
        assert!(e.contains("huge.toml") && e.contains("larger"), "{e}");
    }
}
