//! Docker and OCI sources end to end: fixture files -> model -> rules, with the exact expected
//! findings, and clear per-file errors for broken input.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use watertight_audit::sources::{docker, oci};
use watertight_audit::{audit_workloads, Finding, Severity};

mod common;
use common::keys;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn docker_leaky_containers_give_the_exact_findings() {
    let workloads = docker::load(&fixture("docker/leaky.json")).unwrap();
    assert_eq!(workloads.len(), 2);
    let findings = audit_workloads(&workloads);
    assert_eq!(
        keys(&findings),
        set(&[
            "node-agent privileged",
            "node-agent sensitive-host-mount",
            "node-agent mount-propagation",
            "node-agent run-as-root",
            "node-agent shared-host-namespace[net]",
            "node-agent shared-host-namespace[pid]",
            "node-agent shared-host-namespace[ipc]",
            "node-agent shared-host-namespace[uts]",
            "node-agent shared-host-namespace[user]",
            "node-agent shared-host-namespace[cgroup]",
            "web dangerous-capabilities",
            "web host-devices",
            "web host-ports",
            "web seccomp-disabled",
            // net.ipv4.ip_forward in web's own (bridge) network namespace changes only web.
            "web shared-host-namespace[user]",
        ])
    );
    let socket = findings
        .iter()
        .find(|f| f.rule == "sensitive-host-mount" && f.paths[0] == "/var/run/docker.sock")
        .unwrap();
    assert_eq!(socket.severity, Severity::Critical);
    let root = findings
        .iter()
        .find(|f| f.rule == "sensitive-host-mount" && f.paths[0] == "/")
        .unwrap();
    assert_eq!(
        root.severity,
        Severity::High,
        "read-only / is one step lower"
    );
    let bidi = findings
        .iter()
        .find(|f| f.rule == "mount-propagation" && f.severity == Severity::High)
        .unwrap();
    assert_eq!(bidi.paths, vec!["/cache"]);
    assert!(!findings.iter().any(|f| f.rule == "unsafe-sysctls"));
    for f in &findings {
        assert_eq!(
            f.file.as_deref(),
            Some(fixture("docker/leaky.json").as_path())
        );
    }
}

#[test]
fn docker_hardened_container_only_shares_the_user_namespace() {
    let workloads = docker::load(&fixture("docker/hardened.json")).unwrap();
    let findings = audit_workloads(&workloads);
    assert_eq!(keys(&findings), set(&["api shared-host-namespace[user]"]));
    assert_eq!(findings[0].severity, Severity::Low);
}

#[test]
fn docker_bad_input_names_the_file_and_the_problem() {
    let e = docker::load(&fixture("docker/truncated.json")).unwrap_err();
    assert!(e.to_string().contains("truncated.json: not JSON"), "{e}");
    let e = docker::load(&fixture("docker/wrong-type.json")).unwrap_err();
    assert!(e.to_string().contains("element 0"), "{e}");
    let e = docker::load(&fixture("does-not-exist.json")).unwrap_err();
    assert!(e.to_string().starts_with("cannot read"), "{e}");
    let e = docker::parse(
        r#"[{"Id":"sha256:abc","RepoTags":[]}]"#,
        Path::new("img.json"),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("not container `docker inspect` output"),
        "{e}"
    );
    let e = docker::parse("42", Path::new("n.json")).unwrap_err();
    assert!(e.to_string().contains("expected a JSON array"), "{e}");
}

#[test]
fn oci_runc_default_spec() {
    let w = oci::load(&fixture("oci/runc-default")).unwrap();
    let findings = audit_workloads(&[w]);
    // runc's default spec: no seccomp, root, host user and time namespaces.
    assert_eq!(
        keys(&findings),
        set(&[
            "runc seccomp-disabled",
            "runc run-as-root",
            "runc shared-host-namespace[user]",
            "runc shared-host-namespace[time]",
        ])
    );
}

#[test]
fn oci_leaky_spec() {
    let w = oci::load(&fixture("oci/leaky/config.json")).unwrap();
    let subject = &w.subjects[0];
    use watertight_model::{NamespaceKind as K, NamespaceState as S};
    assert_eq!(subject.namespaces.get(K::Net), S::Unknown, "joined by path");
    assert_eq!(subject.namespaces.get(K::Ipc), S::Shared);
    assert_eq!(subject.namespaces.get(K::Pid), S::Isolated);
    let findings = audit_workloads(&[w]);
    assert_eq!(
        keys(&findings),
        set(&[
            "container sensitive-host-mount",
            "container host-devices",
            "container mount-propagation",
            "container user-namespace-host-root",
            "container unmasked-proc",
            "container unsafe-sysctls",
            "container lsm-unconfined",
            "container no-new-privs",
            "container shared-host-namespace[ipc]",
            "container shared-host-namespace[uts]",
            "container shared-host-namespace[cgroup]",
            "container shared-host-namespace[time]",
        ])
    );
    let prop = findings
        .iter()
        .find(|f| f.rule == "mount-propagation")
        .unwrap();
    // Bind mounts inherit rshared from the rootfs; /proc is not tied to a host tree.
    assert_eq!(prop.paths, vec!["/var/lib/kubelet", "/shared"]);
    let socket = findings
        .iter()
        .find(|f| {
            f.rule == "sensitive-host-mount" && f.paths[0] == "/run/containerd/containerd.sock"
        })
        .unwrap();
    assert_eq!(socket.severity, Severity::Critical);
    // Writable /var/lib/kubelet: every pod's secrets on the node.
    let kubelet = findings
        .iter()
        .find(|f| f.rule == "sensitive-host-mount" && f.paths[0] == "/var/lib/kubelet")
        .unwrap();
    assert_eq!(kubelet.severity, Severity::Critical);
}

#[test]
fn oci_bad_input() {
    let e = oci::parse("{\"ociVersion\": 1}", Path::new("config.json")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("config.json: not an OCI runtime config"),
        "{e}"
    );
    let e = oci::load(Path::new("/nonexistent-bundle-dir")).unwrap_err();
    assert!(e.to_string().contains("cannot read"), "{e}");
}

#[test]
fn an_oci_config_that_adds_up_to_privileged_is_privileged() {
    let all_caps: Vec<String> = watertight_model::CAPABILITY_NAMES
        .iter()
        .map(|c| format!("CAP_{c}"))
        .collect();
    let config = |devices: &str| {
        format!(
            r#"{{"ociVersion": "1.0.2", "process": {{"user": {{"uid": 0, "gid": 0}},
                "cwd": "/", "args": ["sh"], "capabilities": {{"effective": {caps},
                "bounding": {caps}, "permitted": {caps}}}}},
              "root": {{"path": "rootfs"}},
              "linux": {{"namespaces": [{{"type": "pid"}}, {{"type": "mount"}},
                {{"type": "network"}}, {{"type": "ipc"}}, {{"type": "uts"}}],
                "resources": {{"devices": {devices}}}}}}}"#,
            caps = serde_json::to_string(&all_caps).unwrap()
        )
    };
    // Podman's and runc's privileged spec: one allow-all device rule.
    let w = oci::parse(
        &config(r#"[{"allow": true, "access": "rwm"}]"#),
        Path::new("config.json"),
    )
    .unwrap();
    let f = audit_workloads(&[w]);
    let p = f.iter().find(|f| f.rule == "privileged").unwrap();
    assert_eq!(p.severity, Severity::Critical);
    assert!(p.message.contains("adds up to privileged"), "{}", p.message);
    // The parts are folded into it, as for privileged mode.
    assert!(!f
        .iter()
        .any(|f| f.rule == "full-capabilities" || f.rule == "unmasked-proc"));
    // runc's default device rules (deny all, then single devices): not privileged.
    let w = oci::parse(
        &config(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]"#,
        ),
        Path::new("config.json"),
    )
    .unwrap();
    let f = audit_workloads(&[w]);
    assert!(!f.iter().any(|f| f.rule == "privileged"), "{f:#?}");
    assert!(f.iter().any(|f| f.rule == "full-capabilities"));
    assert!(f.iter().any(|f| f.rule == "unmasked-proc"));
}

#[test]
fn docker_options_that_add_up_to_privileged_are_privileged() {
    let inspect = |rules: &str| {
        format!(
            r#"[{{"Id": "abc", "Name": "/almost", "Config": {{"User": "1000"}},
                 "HostConfig": {{"CapAdd": ["ALL"], "DeviceCgroupRules": {rules},
                   "SecurityOpt": ["seccomp=unconfined", "systempaths=unconfined"]}}}}]"#
        )
    };
    let f =
        audit_workloads(&docker::parse(&inspect(r#"["a *:* rwm"]"#), Path::new("i.json")).unwrap());
    let p = f.iter().find(|f| f.rule == "privileged").unwrap();
    assert!(p.message.contains("adds up to privileged"), "{}", p.message);
    let f =
        audit_workloads(&docker::parse(&inspect(r#"["c 1:3 rwm"]"#), Path::new("i.json")).unwrap());
    assert!(!f.iter().any(|f| f.rule == "privileged"), "{f:#?}");
    let u = f.iter().find(|f| f.rule == "unmasked-proc").unwrap();
    assert!(
        u.paths.contains(&"/proc/sysrq-trigger".to_string()),
        "{u:?}"
    );
}

/// The isolation findings (not the PSS ones) of one manifest, as `rule container` keys.
fn k8s_findings(yaml: &str) -> Vec<Finding> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pod.yaml");
    std::fs::write(&file, yaml).unwrap();
    let audit = watertight_audit::sources::k8s::audit_path(
        &file,
        watertight_pss::Level::Privileged,
        watertight_pss::Version::Latest,
    );
    assert!(audit.errors.is_empty(), "{:?}", audit.errors);
    audit_workloads(&audit.workloads)
}

#[test]
fn k8s_unset_seccomp_and_image_user_are_low_findings() {
    let f = k8s_findings(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: c, image: x}\n",
    );
    for rule in ["seccomp-unset", "image-user-root"] {
        let x = f
            .iter()
            .find(|f| f.rule == rule)
            .unwrap_or_else(|| panic!("{rule}: {f:#?}"));
        assert_eq!(x.severity, Severity::Low);
    }
    // Both set at pod level: neither.
    let f = k8s_findings(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  securityContext:\n    \
         runAsNonRoot: true\n    seccompProfile: {type: RuntimeDefault}\n  containers:\n  \
         - {name: c, image: x}\n",
    );
    assert!(
        !f.iter()
            .any(|f| f.rule == "seccomp-unset" || f.rule == "image-user-root"),
        "{f:#?}"
    );
}

#[test]
fn k8s_windows_host_process_is_privileged_and_skips_linux_rules() {
    let f = k8s_findings(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: w}\nspec:\n  os: {name: windows}\n  \
         hostNetwork: true\n  securityContext:\n    windowsOptions: {hostProcess: true, \
         runAsUserName: \"NT AUTHORITY\\\\SYSTEM\"}\n  containers:\n  - {name: c, image: x}\n",
    );
    let p = f.iter().find(|f| f.rule == "privileged").unwrap();
    assert_eq!(p.severity, Severity::Critical);
    assert!(p.message.contains("HostProcess"));
    for linux_only in [
        "seccomp-unset",
        "image-user-root",
        "no-new-privs",
        "dangerous-capabilities",
    ] {
        assert!(
            !f.iter().any(|f| f.rule == linux_only),
            "{linux_only}: {f:#?}"
        );
    }
    assert!(
        f.iter().any(|f| f.rule == "shared-host-namespace"),
        "{f:#?}"
    );
}
