//! The report, its four renderings and the --fail-on gate, on a small hand-made record set (always
//! runs) and on the shared records (a SKIP when absent; a failure in CI).

use std::fs;
use watertight_kernel_audit::hardening::{CheckSeverity, CheckStatus, HardeningCheck};
use watertight_kernel_audit::report::Decision;
use watertight_kernel_audit::{
    audit, render, AuditInput, CveDatabase, FailOn, Format, KernelRelease, TierMaps,
};
use watertight_report::{Report as _, Severity};

/// `--fail-on` at `severity` (None: never), optionally counting only reachable CVEs.
fn gate(
    report: &watertight_kernel_audit::KernelReport,
    at: Option<Severity>,
    reachable_only: bool,
) -> (u8, usize) {
    let mut r = report.clone();
    r.gate_reachable_only = reachable_only;
    let fail_on = at.map_or(FailOn::Never, FailOn::At);
    (r.exit_code(fail_on), r.gated(fail_on))
}

fn record(id: &str, files: &[&str], severity: Option<(&str, f32)>, fix_61: &str) -> String {
    let metrics = match severity {
        Some((s, score)) => format!(
            r#""metrics":[{{"cvssV3_1":{{"baseScore":{score},"baseSeverity":"{s}","vectorString":"CVSS:3.1/AV:L"}}}}],"#
        ),
        None => String::new(),
    };
    let files = files
        .iter()
        .map(|f| format!("\"{f}\""))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        r#"{{"containers":{{"cna":{{"title":"title of {id}",{metrics}"affected":[
{{"defaultStatus":"affected","programFiles":[{files}],"versions":[
{{"version":"5.0","status":"affected"}},
{{"version":"0","lessThan":"5.0","status":"unaffected","versionType":"semver"}},
{{"version":"{fix_61}","lessThanOrEqual":"6.1.*","status":"unaffected","versionType":"semver"}},
{{"version":"6.2","lessThanOrEqual":"*","status":"unaffected","versionType":"original_commit_for_fix"}}]}}]}}}},
"cveMetadata":{{"cveId":"{id}","state":"PUBLISHED"}}}}"#
    )
}

/// Three CVEs affecting 6.1.5: a critical reachable one fixed in 6.1.8, a high netfilter one
/// (unreachable) fixed in 6.1.20, an unscored ext4 one fixed in 6.1.8.
fn small_db(dir: &std::path::Path) -> CveDatabase {
    fs::write(
        dir.join("CVE-2024-1.json"),
        record(
            "CVE-2024-1",
            &["fs/namei.c"],
            Some(("CRITICAL", 9.8)),
            "6.1.8",
        ),
    )
    .unwrap();
    fs::write(
        dir.join("CVE-2024-2.json"),
        record(
            "CVE-2024-2",
            &["net/netfilter/nf_tables_api.c"],
            Some(("HIGH", 7.8)),
            "6.1.20",
        ),
    )
    .unwrap();
    fs::write(
        dir.join("CVE-2024-3.json"),
        record("CVE-2024-3", &["fs/ext4/inode.c"], None, "6.1.8"),
    )
    .unwrap();
    CveDatabase::from_records_dir(dir).unwrap()
}

fn failing_check(severity: CheckSeverity) -> HardeningCheck {
    HardeningCheck {
        name: "kernel.kptr_restrict".into(),
        kind: "sysctl",
        expected: ">= 1".into(),
        current: Some("0".into()),
        status: CheckStatus::Fail,
        severity,
        why: "hides \"kernel\" addresses".into(),
        breaks: None,
        note: None,
    }
}

#[test]
fn report_counts_reachability_and_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let db = small_db(dir.path());
    let map = TierMaps::built_in();
    let release = KernelRelease::parse("6.1.5").unwrap();
    let report = audit(AuditInput {
        release: &release,
        assume_upstream: false,
        database: Some(&db),
        reachability: &map,
        isolation: watertight_kernel_audit::IsolationTier::Namespaces,
        hardening: vec![failing_check(CheckSeverity::Medium)],
    });
    assert_eq!(report.decision, Decision::Upstream);
    assert_eq!(report.affected_count, Some(3));
    assert_eq!(report.reachable_count, Some(2));
    // Most severe first.
    let ids: Vec<_> = report.cves.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["CVE-2024-1", "CVE-2024-2", "CVE-2024-3"]);
    let nft = &report.cves[1];
    assert!(!nft.reachable_from_sandbox);
    assert!(nft.unreachable_because[0].contains("CAP_NET_ADMIN"));
    assert_eq!(nft.fixed_in.as_deref(), Some("6.1.20"));
    assert_eq!(nft.fixed_in_mainline.as_deref(), Some("6.2"));
    assert_eq!(report.cves[2].cvss, None);
    // 6.1.20 removes all three; it is the smallest release that does.
    let up = report.upgrade.as_ref().unwrap();
    assert_eq!(
        (
            up.target.as_str(),
            up.removes,
            up.remaining,
            up.unfixed_in_branch
        ),
        ("6.1.20", 3, 0, 0)
    );

    // The gate: critical CVE -> fails at every level but never; reachable-only ignores nft.
    assert_eq!(gate(&report, Some(Severity::Critical), false).0, 1);
    assert_eq!(gate(&report, None, false), (0, 0));
    assert_eq!(gate(&report, Some(Severity::High), false), (1, 2));
    assert_eq!(gate(&report, Some(Severity::High), true), (1, 1));
    // Low counts the unscored CVE (low on the one scale) and the medium hardening check too.
    assert_eq!(gate(&report, Some(Severity::Low), false).1, 4);

    // After the upgrade nothing is affected, and only the medium check remains.
    let fixed = audit(AuditInput {
        release: &KernelRelease::parse("6.1.20").unwrap(),
        assume_upstream: false,
        database: Some(&db),
        reachability: &map,
        isolation: watertight_kernel_audit::IsolationTier::Namespaces,
        hardening: vec![failing_check(CheckSeverity::Medium)],
    });
    assert_eq!(fixed.affected_count, Some(0));
    assert_eq!(gate(&fixed, Some(Severity::High), false).0, 0);
    assert_eq!(gate(&fixed, Some(Severity::Medium), false).0, 1);
}

#[test]
fn vendor_kernels_are_undecided_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let db = small_db(dir.path());
    let map = TierMaps::built_in();
    let release = KernelRelease::parse("6.1.5-18-amd64").unwrap();
    let input = |assume| AuditInput {
        release: &release,
        assume_upstream: assume,
        database: Some(&db),
        reachability: &map,
        isolation: watertight_kernel_audit::IsolationTier::Namespaces,
        hardening: Vec::new(),
    };
    let undecided = audit(input(false));
    assert_eq!(undecided.decision, Decision::Undecided);
    assert_eq!(undecided.affected_count, None);
    assert!(undecided.cves.is_empty());
    assert!(
        undecided.notes[0].contains("Debian") && undecided.notes[0].contains("--assume-upstream")
    );
    let json: serde_json::Value = serde_json::from_str(&render(&undecided, Format::Json)).unwrap();
    assert!(json["affected_count"].is_null());

    let assumed = audit(input(true));
    assert_eq!(assumed.decision, Decision::AssumedUpstream);
    assert_eq!(assumed.affected_count, Some(3));
    assert!(assumed.notes[0].contains("backports"));
}

#[test]
fn renderings_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let db = small_db(dir.path());
    let map = TierMaps::built_in();
    let release = KernelRelease::parse("6.1.5").unwrap();
    let report = audit(AuditInput {
        release: &release,
        assume_upstream: false,
        database: Some(&db),
        reachability: &map,
        isolation: watertight_kernel_audit::IsolationTier::Namespaces,
        hardening: vec![failing_check(CheckSeverity::High)],
    });

    // JSON: the fields the issue names.
    let json: serde_json::Value = serde_json::from_str(&render(&report, Format::Json)).unwrap();
    assert_eq!(json["kernel_version"], "6.1.5");
    assert_eq!(json["affected_count"], 3);
    let cve = &json["cves"][0];
    for key in [
        "id",
        "cvss",
        "severity",
        "fixed_in",
        "reachable_from_sandbox",
        "title",
        "program_files",
    ] {
        assert!(cve.get(key).is_some(), "cves[].{key}");
    }
    assert_eq!(cve["severity"], "critical");
    assert_eq!(cve["fixed_in"], "6.1.8");
    assert!((cve["cvss"].as_f64().unwrap() - 9.8).abs() < 1e-6);
    assert_eq!(json["hardening"][0]["name"], "kernel.kptr_restrict");
    assert_eq!(json["hardening"][0]["status"], "fail");

    // SARIF 2.1.0: the required skeleton, one result per CVE and failing check, rules resolve.
    let sarif: serde_json::Value = serde_json::from_str(&render(&report, Format::Sarif)).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "watertight");
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    for r in results {
        assert!(rules.contains(&r["ruleId"].as_str().unwrap()));
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        assert!(!r["message"]["text"].as_str().unwrap().is_empty());
    }
    assert_eq!(results[0]["level"], "error");
    assert_eq!(results[2]["level"], "note"); // unscored: low on the one scale
    assert_eq!(results[2]["properties"]["severity"], "low");
    assert_eq!(results[2]["properties"]["cvss_severity"], "unscored");
    let driver_rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    for r in results {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(driver_rules[i]["id"], r["ruleId"]);
    }
    // A CVE's rule carries its CVSS score; the failing hardening check is a rule of its own.
    assert_eq!(driver_rules[0]["properties"]["security-severity"], "9.8");
    assert_eq!(
        results[3]["ruleId"],
        "kernel-hardening/kernel.kptr_restrict"
    );
    assert_eq!(results[3]["level"], "error");

    // Prometheus: the strict reader accepts it (HELP/TYPE per family, escaped labels).
    let prom = render(&report, Format::Prometheus);
    watertight_report::prometheus::read(&prom).unwrap();
    let mut typed = Vec::new();
    for line in prom.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.push(rest.split(' ').next().unwrap().to_string());
            assert!(rest.ends_with(" gauge"));
        } else if !line.starts_with("# HELP ") {
            let (series, value) = line.rsplit_once(' ').unwrap();
            value.parse::<f64>().unwrap();
            let name = series.split('{').next().unwrap();
            assert!(typed.iter().any(|t| t == name), "{line}");
            assert!(series.ends_with('}'), "{line}");
        }
    }
    assert!(prom.contains("watertight_kernel_cves_affected_total{kernel=\"6.1.5\"} 3\n"));
    assert!(prom.contains("watertight_kernel_cves_reachable_total{kernel=\"6.1.5\"} 2\n"));
    assert!(prom
        .contains("watertight_kernel_cves_affected{kernel=\"6.1.5\",severity=\"critical\"} 1\n"));
    assert!(prom.contains(
        "watertight_kernel_hardening_ok{kernel=\"6.1.5\",check=\"kernel.kptr_restrict\",severity=\"high\"} 0\n"
    ));

    // Table: the summary sentence and a row per CVE.
    let table = render(&report, Format::Table);
    assert!(table.contains(
        "3 published kernel CVEs affect this kernel; 2 of them reachable from a default watertight sandbox"
    ));
    assert!(table.contains("upgrade within 6.1: 6.1.20 removes 3 of 3"));
    assert!(table
        .lines()
        .any(|l| l.starts_with("CVE-2024-2") && l.contains(" no ")));
    assert!(table.contains("Hardening: 1 of 1 checks fail"));
}

#[test]
fn shared_records_report() {
    let Some(dir) =
        watertight_testkit::require_shared("shared_records_report", "kernel-vulns/cve/published")
    else {
        return;
    };
    let db = CveDatabase::from_records_dir(&dir).unwrap();
    let map = TierMaps::built_in();
    let release = KernelRelease::parse("6.18.44").unwrap();
    let report = audit(AuditInput {
        release: &release,
        assume_upstream: false,
        database: Some(&db),
        reachability: &map,
        isolation: watertight_kernel_audit::IsolationTier::Namespaces,
        hardening: Vec::new(),
    });
    assert_eq!(report.affected_count, Some(211));
    let reachable = report.reachable_count.unwrap();
    assert!(reachable > 0 && reachable < 211, "{reachable}");
    let by_severity: usize = report.severity_counts.iter().map(|c| c.affected).sum();
    assert_eq!(by_severity, 211);
    // Every CVE affected here with a fix in 6.18 names a 6.18 release.
    for c in &report.cves {
        if let Some(f) = &c.fixed_in {
            assert!(f.starts_with("6.18."), "{} {f}", c.id);
        }
    }
    let up = report.upgrade.expect("6.18 has later fixes");
    assert!(up.target.starts_with("6.18."));
    assert!(up.removes > 0 && up.remaining < 211);
    // Netfilter CVEs are affected but unreachable.
    assert!(report
        .cves
        .iter()
        .filter(|c| c
            .program_files
            .iter()
            .all(|f| f.starts_with("net/netfilter/")))
        .all(|c| !c.reachable_from_sandbox));
}
