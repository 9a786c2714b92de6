//! Kubernetes manifests read as kubectl reads them (`tests/fixtures/kubectl-yaml/`): YAML 1.1
//! scalars (`defaultMode: 0400` is 256, `privileged: on` is true), API defaults, flow style,
//! Lists, multi-document and rendered (Helm, kustomize) output, unknown fields and schema errors
//! as warnings, and a repository's other YAML/JSON files skipped, not errors.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use watertight_audit::sources::k8s::{audit_path, audit_path_excluding, audit_text, Exclude};
use watertight_audit::{audit_workloads, SkipReason};
use watertight_pss::{Level, Version};

mod common;
use common::keys;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kubectl-yaml")
        .join(rel)
}

fn has(keys: &BTreeSet<String>, want: &[&str]) {
    for w in want {
        assert!(keys.contains(*w), "missing {w:?} in {keys:#?}");
    }
}

/// The upstream check ids of the one object audited.
fn checks(audit: &watertight_audit::sources::k8s::K8sAudit) -> Vec<String> {
    assert_eq!(audit.pss.len(), 1, "{:?}", audit.pss);
    audit.pss[0]
        .violations
        .iter()
        .map(|v| v.check.clone())
        .collect()
}

#[test]
fn calico_with_an_unquoted_octal_mode_is_found_with_its_findings() {
    let audit = audit_path(
        &fixture("calico-node.yaml"),
        Level::Baseline,
        Version::Latest,
    );
    assert!(audit.errors.is_empty(), "{:?}", audit.errors);
    assert!(audit.warnings.is_empty(), "{:?}", audit.warnings);
    assert_eq!(audit.workloads.len(), 1, "the DaemonSet");
    assert_eq!(audit.skipped, 1, "the ServiceAccount");
    assert_eq!(
        checks(&audit),
        ["hostNamespaces", "hostPathVolumes", "privileged"]
    );
    let findings = audit_workloads(&audit.workloads);
    has(
        &keys(&findings),
        &[
            "calico-node privileged",
            "install-cni privileged",
            "calico-node mount-propagation",
            "calico-node shared-host-namespace[net]",
            "calico-node sensitive-host-mount",
        ],
    );
    let propagation = findings
        .iter()
        .find(|f| f.rule == "mount-propagation")
        .unwrap();
    assert!(
        propagation.message.contains("/sys/fs/bpf"),
        "{propagation:?}"
    );

    // 0400 is the octal integer 256 to kubectl, so to the loader.
    let text = std::fs::read_to_string(fixture("calico-node.yaml")).unwrap();
    let (workloads, errors, _) = watertight_pss::parse_documents(&text, Path::new("c.yaml"));
    assert!(errors.is_empty(), "{errors:?}");
    let typha = workloads[0].pod_spec.volumes.as_ref().unwrap();
    let secret = typha.iter().find(|v| v.name == "typha-ca").unwrap();
    assert_eq!(secret.secret.as_ref().unwrap().default_mode, Some(256));
}

#[test]
fn yaml_1_1_booleans_set_security_fields() {
    let audit = audit_path(
        &fixture("yaml11-booleans.yaml"),
        Level::Baseline,
        Version::Latest,
    );
    assert!(audit.errors.is_empty(), "{:?}", audit.errors);
    assert_eq!(checks(&audit), ["hostNamespaces", "privileged"]);
    let detail = &audit.pss[0].violations[0].detail;
    assert_eq!(detail, "hostNetwork=true, hostPID=true");
    let subjects = &audit.workloads[0].subjects;
    let shell = subjects.iter().find(|s| s.name == "shell").unwrap();
    let sidecar = subjects.iter().find(|s| s.name == "sidecar").unwrap();
    assert!(shell.privileged);
    assert_eq!(shell.readonly_rootfs, Some(false));
    assert_eq!(
        shell.no_new_privs,
        Some(false),
        "allowPrivilegeEscalation: YES"
    );
    assert!(!sidecar.privileged);
    assert_eq!(sidecar.readonly_rootfs, Some(true));
    assert_eq!(
        sidecar.no_new_privs,
        Some(true),
        "allowPrivilegeEscalation: NO"
    );
    assert_eq!(sidecar.user.run_as_non_root, Some(true));
}

#[test]
fn a_sourceless_volume_is_an_empty_dir_to_admission() {
    let audit = audit_path(
        &fixture("sourceless-volume.yaml"),
        Level::Restricted,
        Version::Latest,
    );
    assert!(audit.errors.is_empty(), "{:?}", audit.errors);
    assert_eq!(audit.pss.len(), 1);
    assert!(audit.pss[0].allowed, "{:?}", audit.pss[0].violations);
}

#[test]
fn flow_style_and_lists() {
    let flow = audit_path(
        &fixture("flow-style.yaml"),
        Level::Baseline,
        Version::Latest,
    );
    assert!(flow.errors.is_empty(), "{:?}", flow.errors);
    assert_eq!(checks(&flow), ["hostPorts", "privileged"]);
    has(
        &keys(&audit_workloads(&flow.workloads)),
        &["app privileged", "app host-ports"],
    );

    let list = audit_path(&fixture("list.yaml"), Level::Baseline, Version::Latest);
    assert!(list.errors.is_empty(), "{:?}", list.errors);
    assert_eq!(list.skipped, 1, "the Service");
    assert_eq!(checks(&list), ["hostNamespaces", "hostPathVolumes"]);
    has(
        &keys(&audit_workloads(&list.workloads)),
        &[
            "exporter shared-host-namespace[pid]",
            "exporter sensitive-host-mount",
        ],
    );
}

#[test]
fn rendered_helm_and_kustomize_output() {
    let text = std::fs::read_to_string(fixture("rendered/helm-template.yaml")).unwrap();
    let helm = audit_text(
        &text,
        Path::new("<stdin>"),
        Level::Baseline,
        Version::Latest,
    );
    assert!(helm.errors.is_empty(), "{:?}", helm.errors);
    assert_eq!((helm.workloads.len(), helm.skipped), (1, 2));
    assert_eq!(
        checks(&helm),
        ["capabilities_baseline", "hostNamespaces", "hostPathVolumes"]
    );
    has(
        &keys(&audit_workloads(&helm.workloads)),
        &[
            "node-agent dangerous-capabilities",
            "node-agent sensitive-host-mount",
        ],
    );
    assert_eq!(
        helm.pss[0].file,
        Path::new("<stdin>"),
        "findings name standard input"
    );

    let kustomize = audit_path(
        &fixture("rendered/kustomize-build.yaml"),
        Level::Baseline,
        Version::Latest,
    );
    assert!(kustomize.errors.is_empty(), "{:?}", kustomize.errors);
    assert_eq!(kustomize.skipped, 1, "the Namespace");
    assert_eq!(
        checks(&kustomize),
        ["appArmorProfile", "capabilities_baseline"]
    );
    has(
        &keys(&audit_workloads(&kustomize.workloads)),
        &["debug lsm-unconfined", "debug dangerous-capabilities"],
    );
}

#[test]
fn a_typo_is_a_warning_naming_the_field_meant() {
    let audit = audit_path(&fixture("typo.yaml"), Level::Baseline, Version::Latest);
    assert!(audit.errors.is_empty(), "{:?}", audit.errors);
    assert_eq!(audit.warnings.len(), 1, "{:?}", audit.warnings);
    let w = &audit.warnings[0];
    assert_eq!(w.document, Some(0));
    assert!(
        w.message
            .contains("unknown field spec.containers[0].securityContext.priviliged")
            && w.message.contains("did you mean `privileged`?"),
        "{}",
        w.message
    );
    // The API server drops it: the container is not privileged.
    assert!(audit.pss[0].allowed);
    assert!(!audit.workloads[0].subjects[0].privileged);

    // An unknown key with a newline and an escape sequence in it stays on one line.
    let evil = "apiVersion: v1\nkind: Pod\nmetadata: {name: e}\nspec:\n  containers:\n  - name: c\n    securityContext: {\"x\\n\\e[31my\": true}\n";
    let audit = audit_text(evil, Path::new("e.yaml"), Level::Baseline, Version::Latest);
    assert_eq!(audit.warnings.len(), 1, "{:?}", audit.warnings);
    let line = audit.warnings[0].line();
    assert!(line.contains("x\\n\\u{1b}[31my"), "{line}");
}

#[test]
fn a_schema_error_no_check_reads_is_a_warning_and_the_object_is_evaluated() {
    let audit = audit_path(
        &fixture("schema-error.yaml"),
        Level::Baseline,
        Version::Latest,
    );
    assert!(audit.errors.is_empty(), "{:?}", audit.errors);
    assert_eq!(checks(&audit), ["hostNamespaces"]);
    let messages: Vec<&str> = audit.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(
        messages.iter().any(|m| m.contains("at spec.replicas")),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("spec.template.spec.containers[0].resources.limits.cpu")),
        "{messages:#?}"
    );

    // A wrong type where a check reads cannot be evaluated: an error naming the field.
    let broken = audit_path(
        &fixture("broken/security-schema-error.yaml"),
        Level::Baseline,
        Version::Latest,
    );
    assert!(broken.workloads.is_empty());
    assert_eq!(broken.errors.len(), 1, "{:?}", broken.errors);
    let message = &broken.errors[0].message;
    assert!(
        message.contains("spec.containers[0].securityContext.privileged")
            && message.contains("write true or false without quotes"),
        "{message}"
    );
}

#[test]
fn a_repository_s_other_files_are_skipped_not_errors() {
    let audit = audit_path(&fixture("repo"), Level::Baseline, Version::Latest);
    assert!(audit.errors.is_empty(), "{:?}", audit.errors);
    let skipped = |reason| -> Vec<String> {
        audit
            .skipped_files
            .iter()
            .filter(|f| f.reason == reason)
            .map(|f| {
                Path::new(&f.source)
                    .strip_prefix(fixture("repo"))
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        skipped(SkipReason::NotKubernetes),
        [
            ".github/workflows/ci.yml",
            "chart/Chart.yaml",
            "chart/values.yaml",
            "docker-compose.yml",
            "package.json",
        ]
    );
    assert_eq!(
        skipped(SkipReason::Template),
        ["chart/templates/deployment.yaml"]
    );
    let names: Vec<&str> = audit.pss.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["debug", "web"]);

    let exclude = Exclude::new(&["deploy/dev/**"]).unwrap();
    let audit = audit_path_excluding(&fixture("repo"), &exclude, Level::Baseline, Version::Latest);
    let names: Vec<&str> = audit.pss.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["web"]);
    // A name glob matches anywhere; a directory named is not entered.
    let exclude = Exclude::new(&["chart", "*.json", ".github/"]).unwrap();
    let audit = audit_path_excluding(&fixture("repo"), &exclude, Level::Baseline, Version::Latest);
    let sources: Vec<&str> = audit
        .skipped_files
        .iter()
        .map(|f| f.source.as_str())
        .collect();
    assert_eq!(sources.len(), 1, "{sources:?}");
    assert!(sources[0].ends_with("docker-compose.yml"));
    assert!(
        Exclude::new(&["a[b"]).is_err(),
        "an unclosed class is no glob"
    );
}
