//! Fuzzing without nightly: proptest throws random and mutated inputs, seeded from real samples,
//! at every parser of the auditor and asserts each returns (Ok or Err) without panicking.

use proptest::prelude::*;
use std::path::Path;
use watertight_audit::fleet::parse_report;
use watertight_audit::sources::host::{
    classify, parse_cgroup, parse_id_map, parse_mountinfo, parse_status,
};
use watertight_audit::sources::{docker, k8s, oci};
use watertight_audit::{audit_workloads, Format};

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(rel),
    )
    .unwrap()
}

fn samples() -> Vec<String> {
    let mut v = vec![
        fixture("docker/leaky.json"),
        fixture("docker/hardened.json"),
        fixture("oci/runc-default/config.json"),
        fixture("oci/leaky/config.json"),
        "Name:\tsleep\nUid:\t0\t0\t0\t0\nCapEff:\t000001fffeffffff\nSeccomp:\t2\nKthread:\t0\n".into(),
        "0::/system.slice/docker-ab.scope\n9:name=systemd:/\n4:memory:/x\n".into(),
        "36 35 98:0 /mnt\\040x /mnt2 ro,noatime master:1 shared:7 - ext3 /dev/root rw\n".into(),
        "0 100000 65536\n".into(),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  hostNetwork: true\n  containers:\n  - name: c\n    image: x\n    securityContext:\n      privileged: true\n      capabilities:\n        add: [SYS_ADMIN]\n    volumeMounts:\n    - name: sock\n      mountPath: /var/run/docker.sock\n      mountPropagation: Bidirectional\n  volumes:\n  - name: sock\n    hostPath:\n      path: /var/run/docker.sock\n".into(),
    ];
    // Kubernetes YAML as kubectl reads it (YAML 1.1 scalars, unknown fields, schema errors set
    // aside, Lists, rendered output): the kubectl-yaml corpus.
    for f in [
        "kubectl-yaml/calico-node.yaml",
        "kubectl-yaml/yaml11-booleans.yaml",
        "kubectl-yaml/typo.yaml",
        "kubectl-yaml/schema-error.yaml",
        "kubectl-yaml/list.yaml",
        "kubectl-yaml/rendered/helm-template.yaml",
    ] {
        v.push(fixture(f));
    }
    let mut report = watertight_audit::Report::new("host");
    report.node = Some("n1".into());
    v.push(report.render(Format::Json));
    v
}

/// A sample with random bytes flipped, cut, or spliced.
fn mutated() -> impl Strategy<Value = String> {
    let samples = samples();
    (
        0..samples.len(),
        proptest::collection::vec((any::<u16>(), any::<u8>()), 0..8),
        any::<u16>(),
    )
        .prop_map(move |(i, edits, cut)| {
            let mut bytes = samples[i].clone().into_bytes();
            for (pos, b) in edits {
                if !bytes.is_empty() {
                    let p = pos as usize % bytes.len();
                    bytes[p] = b;
                }
            }
            if cut % 3 == 0 && !bytes.is_empty() {
                bytes.truncate(cut as usize % bytes.len());
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
}

fn any_input() -> impl Strategy<Value = String> {
    prop_oneof![
        mutated(),
        ".{0,400}",
        "[{}\\[\\]\":,0-9a-zA-Z /\\\\-]{0,200}"
    ]
}

fn every_parser(text: &str) {
    let path = Path::new("fuzz.json");
    if let Ok(ws) = docker::parse(text, path) {
        let _ = audit_workloads(&ws);
    }
    if let Ok(w) = oci::parse(text, path) {
        let _ = audit_workloads(&[w]);
    }
    if let Ok(r) = parse_report(text, path) {
        for f in [
            Format::Table,
            Format::Json,
            Format::Sarif,
            Format::Prometheus,
        ] {
            let _ = r.render(f);
        }
    }
    let _ = parse_status(text);
    let _ = parse_cgroup(text);
    let _ = classify(text);
    let _ = parse_id_map(text);
    let _ = parse_mountinfo(text);
    let (workloads, _, _) = watertight_pss::parse_documents(text, Path::new("fuzz.yaml"));
    let models: Vec<_> = workloads.iter().map(k8s::to_workload).collect();
    let _ = audit_workloads(&models);
    // The YAML 1.1 reader and the lenient decode behind `audit k8s -`: every message one line.
    let audited = k8s::audit_text(
        text,
        Path::new("<stdin>"),
        watertight_pss::Level::Restricted,
        watertight_pss::Version::Latest,
    );
    for e in audited.errors.iter().chain(&audited.warnings) {
        let line = e.line();
        assert!(!line.chars().any(char::is_control), "{line:?}");
    }
    let _ = audit_workloads(&audited.workloads);
    // Located findings point inside the text (YAML breaks lines at \n, \r or both).
    let lines = 1 + text.matches(['\n', '\r']).count();
    for f in audited.rule_findings().iter().chain(&audited.pss_findings) {
        if let Some(line) = f.line {
            assert!((1..=lines).contains(&line), "{f:?}");
            assert!(f.column.is_some_and(|c| c >= 1), "{f:?}");
            assert!(f.field.is_some(), "{f:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic(text in any_input()) {
        every_parser(&text);
    }
}

#[test]
fn samples_parse() {
    // The seeds themselves are valid for their parser (so mutations start from real input).
    let s = samples();
    assert!(docker::parse(&s[0], Path::new("a")).is_ok());
    assert!(oci::parse(&s[2], Path::new("b")).is_ok());
    assert_eq!(parse_status(&s[4]).name, "sleep");
    assert_eq!(parse_mountinfo(&s[6]).len(), 1);
    let (ws, errs, _) = watertight_pss::parse_documents(&s[8], Path::new("p.yaml"));
    assert!(errs.is_empty() && ws.len() == 1, "{errs:?}");
    let f = audit_workloads(&[k8s::to_workload(&ws[0])]);
    assert!(f.iter().any(|f| f.rule == "privileged"));
    let audited = k8s::audit_text(
        &s[9],
        Path::new("c.yaml"),
        watertight_pss::Level::Baseline,
        watertight_pss::Version::Latest,
    );
    assert!(audited.errors.is_empty() && audited.workloads.len() == 1);
    assert!(parse_report(&s[15], Path::new("r.json")).is_ok());
}
