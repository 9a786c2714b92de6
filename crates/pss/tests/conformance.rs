//! Upstream conformance: every fixture of kubernetes/pod-security-admission's
//! test/testdata (copied under ../shared/conformance/psa) must be allowed or denied
//! as upstream expects, at its level and version; denials must include the check it names.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use watertight_pss::{active_checks, evaluate, load_path, Level, Version};

fn fixture_dir() -> PathBuf {
    watertight_testkit::shared_dir().join("conformance/psa")
}

struct Case {
    level: Level,
    version: Version,
    pass: bool,
    path: PathBuf,
    check_prefix: String,
}

fn read_manifest(dir: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("MANIFEST.tsv readable");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 5, "MANIFEST.tsv row {line:?}");
            let (level, version, expect, file, prefix) =
                (cols[0], cols[1], cols[2], cols[3], cols[4]);
            assert!(expect == "pass" || expect == "fail", "row {line:?}");
            Case {
                level: level.parse().expect("level"),
                version: version.parse().expect("version"),
                pass: expect == "pass",
                path: dir.join(level).join(version).join(expect).join(file),
                check_prefix: prefix.to_string(),
            }
        })
        .collect()
}

/// Check ids that may deny a fail fixture: the check the file is named after, and
/// any restricted check that overrides it at this level and version.
fn accepted_checks(case: &Case) -> BTreeSet<&'static str> {
    let active = active_checks(case.level, case.version);
    let named: Vec<&'static str> = watertight_pss::checks()
        .iter()
        .filter(|c| c.id.to_ascii_lowercase() == case.check_prefix)
        .map(|c| c.id)
        .collect();
    let mut accepted: BTreeSet<&'static str> = named.iter().copied().collect();
    for (check, revision) in active {
        if revision.overrides.iter().any(|o| named.contains(o)) {
            accepted.insert(check.id);
        }
    }
    accepted
}

#[test]
fn upstream_fixtures_evaluate_as_upstream() {
    // Without its fixtures this test would prove nothing: a SKIP locally, a failure in CI.
    if watertight_testkit::require_shared(
        "upstream_fixtures_evaluate_as_upstream",
        "conformance/psa/MANIFEST.tsv",
    )
    .is_none()
    {
        return;
    }
    let dir = fixture_dir();
    let cases = read_manifest(&dir);
    assert!(
        cases.len() > 1000,
        "expected the full fixture set, got {}",
        cases.len()
    );

    let mut mismatches = Vec::new();
    let (mut passes, mut fails) = (0, 0);
    for case in &cases {
        let label = format!(
            "{} {} {} {}",
            case.level,
            case.version,
            if case.pass { "pass" } else { "fail" },
            case.path.file_name().unwrap().to_string_lossy()
        );
        let report = load_path(&case.path);
        if !report.errors.is_empty() || report.workloads.len() != 1 {
            mismatches.push(format!(
                "{label}: loaded {} workloads, errors: {:?}",
                report.workloads.len(),
                report
                    .errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            ));
            continue;
        }
        let pod = &report.workloads[0];
        let result = evaluate(&pod.pod_meta, &pod.pod_spec, case.level, case.version);
        if case.pass {
            passes += 1;
            if !result.allowed {
                mismatches.push(format!("{label}: denied: {}", result.forbidden_detail()));
            }
            continue;
        }
        fails += 1;
        let accepted = accepted_checks(case);
        if accepted.is_empty() {
            mismatches.push(format!("{label}: no check named {:?}", case.check_prefix));
        } else if result.allowed {
            mismatches.push(format!("{label}: allowed, expected denial by {accepted:?}"));
        } else if !result
            .violations
            .iter()
            .any(|v| accepted.contains(v.check.as_str()))
        {
            // Some fixtures legitimately trip a second check too (a privileged
            // container also lacks allowPrivilegeEscalation=false); upstream only
            // requires the named check among the denials.
            mismatches.push(format!(
                "{label}: denied, but not by {accepted:?}: {}",
                result.forbidden_detail()
            ));
        }
    }
    println!(
        "conformance: {} cases ({passes} pass, {fails} fail), {} mismatches",
        cases.len(),
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} fixtures mismatch:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
}
