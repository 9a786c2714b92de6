//! `watertight audit kernel` end to end: the binary on the shared kernel CNA records and on its own
//! index, the formats, exit codes, vendor kernels and bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn watertight() -> Command {
    Command::new(env!("CARGO_BIN_EXE_watertight"))
}

/// The kernel CNA's published records in ../shared (a SKIP without them; a failure in CI).
fn records() -> Option<PathBuf> {
    watertight_testkit::require_shared(
        &watertight_testkit::this_test(),
        "kernel-vulns/cve/published",
    )
}

fn run(args: &[&str]) -> Output {
    watertight()
        .args(["audit", "kernel"])
        .args(args)
        .output()
        .expect("run watertight")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_of(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)))
}

#[test]
fn known_answers_from_records_and_index_agree() {
    let Some(db) = records() else { return };
    let db = db.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("kernel-cves.idx");
    let index = index.to_str().unwrap();

    let built = run(&["--cve-db", db, "--index-out", index]);
    assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    assert!(stdout(&built).contains("14626 CVEs"), "{}", stdout(&built));
    let size = std::fs::metadata(index).unwrap().len();
    assert!(size < 4 << 20, "index is {size} bytes");

    for (version, expected) in [
        ("6.1.100", 5369),
        ("6.6.50", 5640),
        ("5.15.0", 8060),
        ("6.18.44", 211),
    ] {
        let common = [
            "--kernel-version",
            version,
            "--format",
            "json",
            "--no-hardening",
            "--fail-on",
            "never",
        ];
        let from_records = run(&[&["--cve-db", db][..], &common].concat());
        let from_index = run(&[&["--cve-index", index][..], &common].concat());
        assert_eq!(
            from_records.status.code(),
            Some(0),
            "{}",
            stderr(&from_records)
        );
        assert_eq!(from_index.status.code(), Some(0), "{}", stderr(&from_index));
        let a = json_of(&from_records);
        let b = json_of(&from_index);
        assert_eq!(a["affected_count"], expected, "{version} from records");
        assert_eq!(b["affected_count"], expected, "{version} from index");
        assert_eq!(a["kernel_version"], version);
        assert_eq!(a["cves"], b["cves"], "{version}");
        assert_eq!(a["upgrade"], b["upgrade"], "{version}");
        assert_eq!(a["cves"].as_array().unwrap().len(), expected);
    }
}

#[test]
fn exit_codes_follow_fail_on() {
    let Some(db) = records() else { return };
    let db = db.to_str().unwrap();
    let base = [
        "--cve-db",
        db,
        "--kernel-version",
        "6.18.44",
        "--no-hardening",
    ];
    let code = |extra: &[&str]| {
        let o = run(&[&base[..], extra].concat());
        assert!(o.stdout.len() > 100, "{}", stderr(&o));
        o.status.code()
    };
    // 6.18.44 has high-severity CVEs (checked in the JSON), so high fails and never passes.
    let json = json_of(&run(&[
        &base[..],
        &["--format", "json", "--fail-on", "never"],
    ]
    .concat()));
    let highs = json["cves"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["severity"] == "high" || c["severity"] == "critical")
        .count();
    assert!(highs > 0);
    assert_eq!(code(&["--fail-on", "high"]), Some(1));
    assert_eq!(code(&["--fail-on", "never"]), Some(0));
    assert_eq!(code(&["--fail-on", "low", "--format", "sarif"]), Some(1));
}

#[test]
fn every_format_renders() {
    let Some(db) = records() else { return };
    let db = db.to_str().unwrap();
    let base = [
        "--cve-db",
        db,
        "--kernel-version",
        "6.18.44",
        "--fail-on",
        "never",
    ];
    let table = run(&[&base[..], &["--format", "table"]].concat());
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    let text = stdout(&table);
    assert!(
        text.contains("211 published kernel CVEs affect this kernel;")
            && text.contains("reachable from a default watertight sandbox"),
        "{text}"
    );
    assert!(text.contains("Hardening:"), "{text}");

    let sarif = json_of(&run(&[&base[..], &["--format", "sarif"]].concat()));
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["runs"][0]["tool"]["driver"]["name"], "watertight");
    assert!(sarif["runs"][0]["results"].as_array().unwrap().len() >= 211);

    let prom = stdout(&run(&[&base[..], &["--format", "prometheus"]].concat()));
    assert!(prom.contains("watertight_kernel_cves_affected_total{kernel=\"6.18.44\"} 211\n"));

    let json = json_of(&run(&[&base[..], &["--format", "json"]].concat()));
    assert!(!json["hardening"].as_array().unwrap().is_empty());
    let cve = &json["cves"][0];
    for key in [
        "id",
        "cvss",
        "severity",
        "fixed_in",
        "reachable_from_sandbox",
    ] {
        assert!(cve.get(key).is_some(), "{key}");
    }
}

#[test]
fn vendor_kernel_needs_assume_upstream() {
    let Some(db) = records() else { return };
    let db = db.to_str().unwrap();
    let base = [
        "--cve-db",
        db,
        "--kernel-version",
        "6.1.0-18-amd64",
        "--format",
        "json",
        "--no-hardening",
        "--fail-on",
        "never",
    ];
    let undecided = json_of(&run(&base));
    assert!(undecided["affected_count"].is_null());
    assert_eq!(undecided["decision"], "undecided");
    assert_eq!(undecided["vendor"], "Debian");
    let note = undecided["notes"][0].as_str().unwrap();
    assert!(
        note.contains("--assume-upstream") && note.contains("backport"),
        "{note}"
    );

    let assumed = json_of(&run(&[&base[..], &["--assume-upstream"]].concat()));
    assert_eq!(assumed["decision"], "assumed-upstream");
    assert_eq!(assumed["upstream_version"], "6.1.0");
    assert!(assumed["affected_count"].as_u64().unwrap() > 5369);
}

#[test]
fn running_kernel_from_host_root() {
    // A fake host root: the release is read from its proc/sys/kernel/osrelease.
    let Some(db) = records() else { return };
    let root = tempfile::tempdir().unwrap();
    let kernel = root.path().join("proc/sys/kernel");
    std::fs::create_dir_all(&kernel).unwrap();
    std::fs::write(kernel.join("osrelease"), "6.6.50\n").unwrap();
    std::fs::write(kernel.join("kptr_restrict"), "0\n").unwrap();
    let o = run(&[
        "--cve-db",
        db.to_str().unwrap(),
        "--host-root",
        root.path().to_str().unwrap(),
        "--format",
        "json",
        "--fail-on",
        "never",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = json_of(&o);
    assert_eq!(j["kernel_version"], "6.6.50");
    assert_eq!(j["affected_count"], 5640);
    let kptr = j["hardening"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "kernel.kptr_restrict")
        .unwrap();
    assert_eq!(kptr["status"], "fail");
    assert_eq!(kptr["current"], "0");
}

#[test]
fn bad_input_is_a_one_line_error_with_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--cve-db", empty, "--kernel-version", "6.1.1"],
            "no CVE records",
        ),
        (
            vec!["--cve-db", "/nonexistent-wt", "--kernel-version", "6.1.1"],
            "/nonexistent-wt",
        ),
        (
            vec![
                "--cve-index",
                "/nonexistent-wt.idx",
                "--kernel-version",
                "6.1.1",
            ],
            "/nonexistent-wt.idx",
        ),
        (
            vec!["--kernel-version", "latest", "--no-hardening"],
            "is not a kernel version",
        ),
    ];
    for (args, needle) in cases {
        let o = run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(o.stdout.is_empty());
    }

    // A corrupt index file.
    let junk = tmp.path().join("junk.idx");
    std::fs::write(&junk, b"definitely not a watertight kernel CVE index").unwrap();
    let o = run(&[
        "--cve-index",
        junk.to_str().unwrap(),
        "--kernel-version",
        "6.1.1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("wrong magic"), "{}", stderr(&o));

    // A corrupt record among good ones: skipped, named on stderr, counted, the run goes on.
    let dir = tmp.path().join("records");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("CVE-2024-9.json"), b"{ not json").unwrap();
    std::fs::write(
        dir.join("CVE-2024-8.json"),
        r#"{"containers":{"cna":{"title":"x","affected":[{"defaultStatus":"affected","programFiles":["fs/a.c"],"versions":[{"version":"0","lessThan":"5.0","status":"unaffected","versionType":"semver"}]}]}},"cveMetadata":{"cveId":"CVE-2024-8","state":"PUBLISHED"}}"#,
    )
    .unwrap();
    let o = run(&[
        "--cve-db",
        dir.to_str().unwrap(),
        "--kernel-version",
        "6.1.1",
        "--format",
        "json",
        "--no-hardening",
        "--fail-on",
        "never",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("CVE-2024-9.json"), "{}", stderr(&o));
    let j = json_of(&o);
    assert_eq!(j["affected_count"], 1);
    assert_eq!(j["source"]["skipped_count"], 1);
}

#[test]
fn isolation_tiers_side_by_side() {
    let Some(db) = records() else { return };
    // One read of the records into an index; the runs below load the index (fast).
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("kernel-cves.idx");
    let index = index.to_str().unwrap();
    let built = run(&["--cve-db", db.to_str().unwrap(), "--index-out", index]);
    assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    let common = ["--cve-index", index, "--no-hardening", "--fail-on", "never"];
    // Pinned on the shared records: a namespace sandbox, the gVisor tier, the VM tier.
    for (version, affected, tiers) in [
        ("6.1.100", 5369, [2640, 959, 1008]),
        ("6.18.44", 211, [108, 33, 40]),
    ] {
        let out = run(&[
            &common[..],
            &["--kernel-version", version, "--format", "json"],
        ]
        .concat());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let r = json_of(&out);
        assert_eq!(r["affected_count"], affected);
        let counts = &r["reachable_counts"];
        assert_eq!(
            [&counts["namespaces"], &counts["gvisor"], &counts["vm"]],
            tiers.map(serde_json::Value::from).each_ref(),
            "{version}: {counts}"
        );
        // The old field is the namespace tier's.
        assert_eq!(r["reachable_count"], tiers[0]);
        assert_eq!(r["isolation"], "namespaces");
        // Per CVE, and consistent with the counts.
        let cves = r["cves"].as_array().unwrap();
        for (i, tier) in ["namespaces", "gvisor", "vm"].iter().enumerate() {
            let n = cves
                .iter()
                .filter(|c| c["reachable_from"][tier] == true)
                .count();
            assert_eq!(n, tiers[i], "{version} {tier}");
        }
        let nft = cves.iter().find(|c| {
            c["program_files"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f.as_str().unwrap().starts_with("net/netfilter/"))
        });
        if let Some(nft) = nft {
            assert_eq!(
                nft["reachable_from"],
                serde_json::json!({"namespaces": false, "gvisor": false, "vm": false})
            );
        }
    }

    // The table shows the three columns; --isolation names the tier of the headline.
    let out = run(&[
        &common[..],
        &["--kernel-version", "6.18.44", "--isolation", "gvisor"],
    ]
    .concat());
    let text = stdout(&out);
    assert!(
        text.contains("33 of them reachable from the gVisor tier"),
        "{text}"
    );
    assert!(
        text.contains("reachable by isolation tier: namespaces 108, gvisor 33, vm 40"),
        "{text}"
    );
    assert!(text.contains("NAMESPACES  GVISOR  VM"), "{text}");
    // Prometheus carries one series per tier.
    let out = run(&[
        &common[..],
        &["--kernel-version", "6.18.44", "--format", "prometheus"],
    ]
    .concat());
    let text = stdout(&out);
    assert!(
        text.contains("watertight_kernel_cves_reachable_by_isolation_total{kernel=\"6.18.44\",isolation=\"vm\"} 40"),
        "{text}"
    );
    // --fail-on-reachable-only gates on the chosen tier: fewer gating rows under gVisor.
    let gating = |tier: &str| {
        let out = run(&[
            &common[..3],
            &[
                "--kernel-version",
                "6.18.44",
                "--format",
                "sarif",
                "--fail-on",
                "critical",
                "--fail-on-reachable-only",
                "--isolation",
                tier,
            ],
        ]
        .concat());
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        json_of(&out)["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["message"]["text"]
                    .as_str()
                    .unwrap()
                    .contains("; reachable from")
            })
            .count()
    };
    let (ns, gv) = (gating("namespaces"), gating("gvisor"));
    assert!(gv < ns, "gvisor {gv} vs namespaces {ns}");

    // A tier that does not exist: one line naming the choices, exit 2.
    let bad = run(&[
        &common[..],
        &["--kernel-version", "6.18.44", "--isolation", "kvm"],
    ]
    .concat());
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("namespaces, gvisor or vm"),
        "{}",
        stderr(&bad)
    );
}
