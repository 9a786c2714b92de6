//! `watertight audit host`'s BPF inventory against the real kernel: a program this test loads
//! (held by a child process) is reported with its id and holder until a gatekeeper record with
//! its id and tag vouches for it; a record with another tag is reported; a stale record is a
//! note; without CAP_SYS_ADMIN the report says the inventory was not taken. Every program is
//! unloaded when its holder (the test's own child) is killed, also when an assertion fails.

#[path = "common/bpf.rs"]
mod bpf_objects;

use serde_json::Value;
use std::path::Path;
use watertight_testkit::{require_root, require_tools, stdout_json, watertight};

/// `audit host --format json` with `registry` as the gatekeeper's registry, through `wrapper`.
fn audit(registry: &Path, wrapper: &[&str]) -> Value {
    let bin = watertight_testkit::watertight_bin();
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = std::process::Command::new(first);
            c.args(rest).arg(&bin);
            c
        }
        None => watertight(),
    };
    // This VM's PID 1 cannot be read: the test process stands for the host (as tests/image.rs).
    let out = cmd
        .args(["audit", "host", "--format", "json", "--fail-on", "none"])
        .arg(format!("--reference-pid={}", std::process::id()))
        .arg("--bpf-registry")
        .arg(registry)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        watertight_testkit::stderr(&out)
    );
    stdout_json(&out)
}

fn findings<'a>(report: &'a Value, rule: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

/// The `bpf-program-unvetted` finding about program `id`, if any.
fn unvetted(report: &Value, id: u32) -> Option<Value> {
    let needle = format!("BPF program {id} (");
    findings(report, "bpf-program-unvetted")
        .into_iter()
        .find(|f| f["message"].as_str().unwrap().contains(&needle))
        .cloned()
}

fn record(id: u32, tag: &str) -> Value {
    serde_json::json!({
        "id": id, "tag": tag, "name": "wt_test_rawtp", "prog_type": "raw_tp",
        "object": "/etc/watertight/bpf.d/observe.bpf.o", "object_sha256": "00",
        "signer": "sha256:00", "loaded_at": 0
    })
}

#[test]
fn a_program_the_gatekeeper_did_not_load_is_reported_until_a_record_vouches_for_it() {
    let test = "a_program_the_gatekeeper_did_not_load_is_reported";
    if !require_root(test) {
        return;
    }
    let Some(built) = bpf_objects::build(test) else {
        return;
    };
    let held = bpf_objects::hold(&built, "wt_test_rawtp", false, &[]).expect("load the program");
    let registry = tempfile::tempdir().unwrap();

    // Nothing vouches for it: high, named by id, type and name, with its holder.
    let report = audit(registry.path(), &[]);
    let f = unvetted(&report, held.id).unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(f["severity"], "high", "{f:#}");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains("raw_tracepoint wt_test_rawtp"),
        "{message}"
    );
    assert!(message.contains(&held.tag), "{message}");
    assert!(
        f["pids"].as_array().unwrap().contains(&held.pid().into()),
        "{f:#}"
    );
    let listed = report["bpf"]["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == held.id)
        .expect("the inventory lists it")
        .clone();
    assert_eq!(
        listed["tag"],
        held.tag.as_str(),
        "libbpf-rs's tag is the kernel's"
    );
    assert_eq!(listed["prog_type"], "raw_tracepoint");
    assert_eq!(listed["uid"], 0);
    assert_eq!(listed["holders"][0]["pid"], held.pid());
    let inventory = findings(&report, "bpf-inventory");
    assert_eq!(inventory.len(), 1);
    assert_eq!(inventory[0]["severity"], "info");

    // The gatekeeper's record (id and tag) vouches for it; a stale record is a note.
    let stale_id = u32::MAX - 7;
    std::fs::write(
        registry.path().join(format!("{}.json", held.id)),
        record(held.id, &held.tag).to_string(),
    )
    .unwrap();
    std::fs::write(
        registry.path().join(format!("{stale_id}.json")),
        record(stale_id, &held.tag).to_string(),
    )
    .unwrap();
    let report = audit(registry.path(), &[]);
    assert!(unvetted(&report, held.id).is_none(), "{report:#}");
    let mismatch = findings(&report, "bpf-registry-mismatch");
    assert_eq!(mismatch.len(), 1, "{report:#}");
    assert_eq!(mismatch[0]["severity"], "info");
    assert!(
        mismatch[0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("stale gatekeeper record: program {stale_id} ")),
        "{report:#}"
    );

    // A record with another tag vouches for nothing and is itself reported.
    std::fs::remove_file(registry.path().join(format!("{stale_id}.json"))).unwrap();
    let wrong = if held.tag.starts_with('0') { "1" } else { "0" }.to_string() + &held.tag[1..];
    std::fs::write(
        registry.path().join(format!("{}.json", held.id)),
        record(held.id, &wrong).to_string(),
    )
    .unwrap();
    let report = audit(registry.path(), &[]);
    assert_eq!(unvetted(&report, held.id).unwrap()["severity"], "high");
    let mismatch = findings(&report, "bpf-registry-mismatch");
    assert_eq!(mismatch.len(), 1, "{report:#}");
    assert_eq!(mismatch[0]["severity"], "high");
    let message = mismatch[0]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("program {} says tag {wrong}", held.id))
            && message.contains(&format!("has tag {}", held.tag)),
        "{message}"
    );
}

#[test]
fn without_cap_sys_admin_the_report_says_the_inventory_was_not_taken() {
    let test = "without_cap_sys_admin_the_report_says_the_inventory_was_not_taken";
    if !require_root(test) || !require_tools(test, &["setpriv"], "util-linux") {
        return;
    }
    let Some(built) = bpf_objects::build(test) else {
        return;
    };
    let held = bpf_objects::hold(&built, "wt_test_rawtp", false, &[]).expect("load the program");
    let registry = tempfile::tempdir().unwrap();
    let report = audit(
        registry.path(),
        &[
            "setpriv",
            "--inh-caps=-all",
            "--bounding-set=-sys_admin",
            "--",
        ],
    );
    let why = report["bpf"]["not_taken"].as_str().unwrap_or_default();
    assert!(why.contains("CAP_SYS_ADMIN"), "{report:#}");
    assert!(
        report["bpf"]["programs"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    let inventory = findings(&report, "bpf-inventory");
    assert_eq!(inventory.len(), 1, "{report:#}");
    assert!(
        inventory[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("BPF inventory not taken: "),
        "{report:#}"
    );
    assert!(findings(&report, "bpf-program-unvetted").is_empty());
    // The control: with CAP_SYS_ADMIN the same program is found.
    assert!(unvetted(&audit(registry.path(), &[]), held.id).is_some());
}

#[test]
fn the_gatekeeper_may_hold_cap_bpf_in_a_namespace_of_its_own_others_may_not() {
    let test = "the_gatekeeper_may_hold_cap_bpf";
    if !require_root(test) || !require_tools(test, &["unshare"], "util-linux") {
        return;
    }
    let Some(built) = bpf_objects::build(test) else {
        return;
    };
    // Root in a network namespace of its own: `audit host` judges it as a sandbox.
    let held = bpf_objects::hold(&built, "wt_test_rawtp", false, &["unshare", "--net", "--"])
        .expect("load the program");
    let registry = tempfile::tempdir().unwrap();
    let caps_of_holder = |report: &Value| -> Vec<String> {
        findings(report, "dangerous-capabilities")
            .into_iter()
            .find(|f| f["pids"].as_array().unwrap().contains(&held.pid().into()))
            .unwrap_or_else(|| panic!("no capability finding for the holder: {report:#}"))["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect()
    };
    let before = caps_of_holder(&audit(registry.path(), &[]));
    for cap in ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN"] {
        assert!(before.contains(&cap.to_string()), "{before:?}");
    }
    std::fs::write(
        registry.path().join(format!("{}.json", held.id)),
        record(held.id, &held.tag).to_string(),
    )
    .unwrap();
    let after = caps_of_holder(&audit(registry.path(), &[]));
    assert!(
        !after.contains(&"CAP_BPF".to_string()) && !after.contains(&"CAP_PERFMON".to_string()),
        "{after:?}"
    );
    assert!(after.contains(&"CAP_SYS_ADMIN".to_string()), "{after:?}");
}

/// A `watertight run` sandbox, ended with SIGTERM to its supervisor (this test's own child) when
/// dropped, so it cleans up its cgroup, its gate and its published entry.
struct Sandbox(std::process::Child);

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

/// Whether `watertight manifest probe` finds the BPF exec gate (and the other integrity layers).
fn integrity_available() -> bool {
    let o = watertight()
        .args(["manifest", "probe", "--json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    ["landlock", "bpf_exec_gate", "memfd_noexec"]
        .iter()
        .all(|name| {
            v["layers"].as_array().is_some_and(|ls| {
                ls.iter()
                    .any(|l| l["layer"] == *name && l["available"] == true)
            })
        })
}

#[test]
fn a_sandboxs_own_exec_gate_is_recognised_and_reported_once_it_is_not_published() {
    let test = "a_sandboxs_own_exec_gate_is_recognised";
    if !require_root(test) || !require_tools(test, &["cc"], "gcc") {
        return;
    }
    if !integrity_available() {
        watertight_testkit::host_lacks(test, "this kernel lacks the BPF exec gate (or Landlock)");
        return;
    }
    // A verified rootfs holding one static program that waits until it is killed.
    let dir = watertight_testkit::world_readable_tempdir();
    let root = dir.path().join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    let src = dir.path().join("wait.c");
    std::fs::write(
        &src,
        "#include <unistd.h>\nint main(void) { for (;;) pause(); }\n",
    )
    .unwrap();
    watertight_testkit::compile_c(&src, &root.join("bin/wait"), &["-static"]);
    std::fs::remove_file(&src).unwrap();
    for d in [&root, &root.join("bin")] {
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let (manifest, pubkey) = watertight_testkit::sign_tree(dir.path(), &root);
    let sandbox = Sandbox(
        watertight()
            .arg("run")
            .arg(format!("--rootfs={}", root.display()))
            .arg(format!("--manifest={}", manifest.display()))
            .arg(format!("--pubkey={}", pubkey.display()))
            .args(["--", "/bin/wait"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Its published entry, once it is there (the supervisor publishes 20 ms into the run).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (entry_path, entry) = loop {
        let found = std::fs::read_dir(watertight_model::RUNNING_SANDBOXES_DIR)
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|e| {
                let v: Value = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
                (v["supervisor_pid"] == sandbox.0.id()).then(|| (e.path(), v))
            });
        if let Some(found) = found {
            break found;
        }
        assert!(std::time::Instant::now() < deadline, "no published entry");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let gate: Vec<(u64, String)> = entry["bpf_programs"]
        .as_array()
        .unwrap_or_else(|| panic!("the entry names no BPF programs: {entry:#}"))
        .iter()
        .map(|p| {
            (
                p["id"].as_u64().unwrap(),
                p["tag"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(!gate.is_empty(), "{entry:#}");
    let registry = tempfile::tempdir().unwrap();
    let report = audit(registry.path(), &[]);
    for (id, tag) in &gate {
        let listed = report["bpf"]["programs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == *id)
            .unwrap_or_else(|| panic!("gate program {id} not in the inventory: {report:#}"));
        assert_eq!(listed["tag"], tag.as_str());
        assert!(unvetted(&report, *id as u32).is_none(), "{report:#}");
    }
    // The control: the same programs without the entry's word for them are unvetted, high.
    let mut unpublished = entry.clone();
    unpublished.as_object_mut().unwrap().remove("bpf_programs");
    std::fs::write(&entry_path, serde_json::to_vec(&unpublished).unwrap()).unwrap();
    let report = audit(registry.path(), &[]);
    for (id, _) in &gate {
        let f = unvetted(&report, *id as u32).unwrap_or_else(|| panic!("{report:#}"));
        assert_eq!(f["severity"], "high", "{f:#}");
        assert!(
            f["pids"]
                .as_array()
                .unwrap()
                .contains(&sandbox.0.id().into()),
            "held by the supervisor: {f:#}"
        );
    }
}
