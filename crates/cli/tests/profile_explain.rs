//! The plan is the model: `watertight profile explain` renders the plan of a sandbox on a
//! profile as the auditor's model and runs the auditor's rules on it. Every documented variant
//! of the default profile must come out with no finding at medium or above; a variant that
//! weakens isolation on purpose must not. Runs without root (nothing is created).

use std::process::Command;

fn watertight() -> Command {
    Command::new(env!("CARGO_BIN_EXE_watertight"))
}

fn default_toml() -> String {
    let o = watertight().args(["profile", "show"]).output().unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap()
}

/// The default profile with `from` replaced by `to` (each must occur).
fn variant(edits: &[(&str, &str)]) -> String {
    let mut t = default_toml();
    for (from, to) in edits {
        assert!(t.contains(from), "{from:?} not in the default profile");
        t = t.replacen(from, to, 1);
    }
    t
}

/// (exit code, the JSON document) of `profile explain` on `toml`, run from `cwd`.
fn explain(toml: &str, cwd: &std::path::Path) -> (i32, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profile.toml");
    std::fs::write(&file, toml).unwrap();
    let o = watertight()
        .current_dir(cwd)
        .args(["profile", "explain", "--format=json"])
        .arg(&file)
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code().unwrap(), doc)
}

fn findings_at_medium_or_above(doc: &serde_json::Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| matches!(f["severity"].as_str(), Some("medium" | "high" | "critical")))
        .map(|f| format!("{} {}: {}", f["severity"], f["rule"], f["message"]))
        .collect()
}

#[test]
fn every_documented_variant_audits_clean() {
    let scratch = tempfile::tempdir().unwrap();
    let rootfs = scratch.path().join("rootfs");
    let data = scratch.path().join("data");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    let rootfs_source = format!("source = {:?}", rootfs.to_str().unwrap());
    let ro_bind = format!(
        "bind = [{{ source = {:?}, target = \"/data\", read_only = true }}]",
        data.to_str().unwrap()
    );
    let rw_bind = ro_bind.replace("read_only = true", "read_only = false");
    let variants: Vec<(&str, String)> = vec![
        ("default", default_toml()),
        (
            "root directory, read-only",
            variant(&[("source = \"host\"", &rootfs_source)]),
        ),
        (
            "root directory, writable",
            variant(&[
                ("source = \"host\"", &rootfs_source),
                ("writable = false", "writable = true"),
            ]),
        ),
        ("read-only bind", variant(&[("bind = []", &ro_bind)])),
        ("writable bind", variant(&[("bind = []", &rw_bind)])),
        (
            "kill on violation",
            variant(&[("on_violation = \"deny\"", "on_violation = \"kill\"")]),
        ),
        (
            "forensic on violation",
            variant(&[("on_violation = \"deny\"", "on_violation = \"forensic\"")]),
        ),
        (
            "host sockets allowed",
            variant(&[("host_sockets = \"mask\"", "host_sockets = \"allow\"")]),
        ),
    ];
    let mut digests = std::collections::BTreeSet::new();
    for (name, toml) in &variants {
        let (code, doc) = explain(toml, scratch.path());
        assert_eq!(
            findings_at_medium_or_above(&doc),
            Vec::<String>::new(),
            "{name}"
        );
        assert_eq!(code, 0, "{name}");
        assert_eq!(
            doc["workload"]["origin"]["type"], "self-described",
            "{name}"
        );
        let digest = doc["plan_digest"].as_str().unwrap().to_string();
        assert!(digest.starts_with("sha256:"), "{name}: {digest}");
        digests.insert(digest);
    }
    // Each variant is a different policy.
    assert_eq!(digests.len(), variants.len());
}

#[test]
fn weakened_variants_are_findings() {
    let scratch = tempfile::tempdir().unwrap();
    type Edits<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&str, Edits, &str); 3] = [
        (
            "host network",
            &[("net = true", "net = false")],
            "shared-host-namespace",
        ),
        (
            "host credentials shown",
            &[("    \"/etc/shadow\",\n", "")],
            "sensitive-host-mount",
        ),
        (
            "kcore not masked",
            &[("    \"/proc/kcore\",\n", "")],
            "unmasked-proc",
        ),
    ];
    for (name, edits, rule) in cases {
        let (code, doc) = explain(&variant(edits), scratch.path());
        let found = findings_at_medium_or_above(&doc);
        assert!(found.iter().any(|f| f.contains(rule)), "{name}: {found:?}");
        assert_eq!(code, 1, "{name}: --fail-on medium");
    }
}

#[test]
fn the_same_profile_gives_the_same_digest_and_text_names_it() {
    let scratch = tempfile::tempdir().unwrap();
    let (_, a) = explain(&default_toml(), scratch.path());
    let (_, b) = explain(&default_toml(), scratch.path());
    assert_eq!(a["plan_digest"], b["plan_digest"]);
    let o = watertight()
        .current_dir(scratch.path())
        .args(["profile", "explain"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(a["plan_digest"].as_str().unwrap()), "{text}");
    assert_eq!(o.status.code(), Some(0), "{text}");
}

#[test]
fn bpf_observe_is_a_high_finding_of_its_own_and_changes_the_digest() {
    let scratch = tempfile::tempdir().unwrap();
    let (_, plain) = explain(&default_toml(), scratch.path());
    let observe = format!("{}\n[bpf]\nobserve = true\n", default_toml());
    let (code, doc) = explain(&observe, scratch.path());
    let found = findings_at_medium_or_above(&doc);
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("\"high\" \"bpf-token\"") && f.contains("every process")),
        "{found:?}"
    );
    // CAP_BPF and CAP_PERFMON are the sandbox's user namespace's: no capability finding.
    assert!(
        !found.iter().any(|f| f.contains("capabilities")),
        "{found:?}"
    );
    assert_eq!(code, 1);
    assert_ne!(doc["plan_digest"], plain["plan_digest"], "{doc}");
}
