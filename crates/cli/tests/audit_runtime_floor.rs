//! `watertight audit host` on a container `watertight-runc` published: a real process in fresh
//! namespaces (`unshare --uts --ipc --net sleep`) is published as a container's init under the
//! floor of a runtime.toml, exactly as the runtime publishes it (`watertight_floor::publish`,
//! /run/watertight/containers). The audit reports it under the current floor, as started under
//! a superseded one once the node's runtime.toml changes (policy drift), and counts it per floor
//! in the metrics. A process without an entry gets no floor finding. The entry and the process
//! are removed also when the test fails.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use watertight_floor::oci_spec::runtime::Spec;
use watertight_floor::Floor;
use watertight_testkit::{stdout, stdout_json, watertight};

/// A process killed and reaped, and its published entry removed, when dropped.
struct Init {
    child: Child,
    container_id: Option<String>,
}

impl Drop for Init {
    fn drop(&mut self) {
        if let Some(id) = &self.container_id {
            let _ = watertight_floor::unpublish(id);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// `unshare` executes `sleep` in place: once the process is named sleep it is the container's
/// init, in its new namespaces.
fn start_init() -> Init {
    let child = Command::new("unshare")
        .args(["--uts", "--ipc", "--net", "sleep", "120"])
        .stdin(Stdio::null())
        .spawn()
        .expect("start unshare");
    let mut init = Init {
        child,
        container_id: None,
    };
    let pid = init.child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    while comm(pid) != "sleep" {
        if let Ok(Some(status)) = init.child.try_wait() {
            panic!("unshare exited early: {status}");
        }
        assert!(Instant::now() < deadline, "unshare did not reach sleep");
        std::thread::sleep(Duration::from_millis(10));
    }
    init
}

const CONFIG: &str = r#"{
  "ociVersion": "1.0.2",
  "process": {"user": {"uid": 0, "gid": 0}, "args": ["sleep", "120"], "cwd": "/",
              "capabilities": {"bounding": ["CAP_CHOWN", "CAP_NET_ADMIN"], "effective": ["CAP_CHOWN"]}},
  "root": {"path": "rootfs"},
  "hostname": "floor-test",
  "linux": {"namespaces": [{"type": "uts"}, {"type": "ipc"}, {"type": "network"}],
            "seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}}
}"#;

fn audit(pid: u32, runtime_toml: &Path, format: &str) -> std::process::Output {
    watertight()
        .args([
            "audit",
            "host",
            "--pid",
            &pid.to_string(),
            "--fail-on",
            "none",
        ])
        .args(["--reference-pid", &std::process::id().to_string()])
        .args(["--format", format])
        .arg("--runtime-config")
        .arg(runtime_toml)
        .output()
        .expect("run watertight audit host")
}

fn floor_findings(report: &serde_json::Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "runtime-floor")
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn audit_host_reports_the_floor_a_published_container_runs_under_and_drift() {
    let test = watertight_testkit::this_test();
    if !watertight_testkit::require_root(&test)
        || !watertight_testkit::require_tools(&test, &["unshare", "sleep"], "util-linux")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("runtime-v1.toml");
    std::fs::write(&v1, "version = \"v1\"\n").unwrap();
    let v2 = dir.path().join("runtime-v2.toml");
    std::fs::write(
        &v2,
        "version = \"v2\"\non_violation = \"kill\"\n[capabilities]\nceiling = [\"CAP_CHOWN\"]\n",
    )
    .unwrap();
    // The runtime's state directory, removed at the end if this test made it (and it is empty).
    let state_dir = Path::new(watertight_floor::RUNNING_CONTAINERS_DIR);
    let made_state_dir = !state_dir.exists();
    let floor = Floor::load(Some(&v1)).unwrap();
    let newer = Floor::load(Some(&v2)).unwrap();
    assert_ne!(floor.digest(), newer.digest());

    let mut init = start_init();
    let pid = init.child.id();
    let id = format!("floor-test-{}", std::process::id());
    let mut spec: Spec = serde_json::from_str(CONFIG).unwrap();
    let hardening = floor.harden(&mut spec).unwrap();
    let entry = hardening
        .running_container(&id, pid, dir.path(), &spec, None)
        .unwrap();
    init.container_id = Some(id.clone());
    let published = watertight_floor::publish(&entry).unwrap();
    assert!(published.starts_with(watertight_floor::RUNNING_CONTAINERS_DIR));

    // The node's runtime.toml is the one the container started under.
    let out = audit(pid, &v1, "json");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report = stdout_json(&out);
    assert_eq!(
        floor_findings(&report),
        vec![(
            "info".to_string(),
            format!("under floor v1 {}", floor.digest())
        )],
        "{report:#}"
    );
    let workload = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "runtime-floor")
        .unwrap()["workload"]
        .clone();
    assert_eq!(workload, serde_json::json!(id));
    assert_eq!(
        report["floors"],
        serde_json::json!([{"digest": floor.digest(), "version": "v1", "current": true, "containers": 1}])
    );

    // The node's runtime.toml changed since: the container still runs under the old floor.
    let out = audit(pid, &v2, "json");
    let report = stdout_json(&out);
    assert_eq!(
        floor_findings(&report),
        vec![(
            "medium".to_string(),
            format!(
                "started under a superseded floor v1 {}, current v2 {}: restart it (kubectl rollout restart)",
                floor.digest(),
                newer.digest()
            )
        )],
        "{report:#}"
    );
    let metrics = stdout(&audit(pid, &v2, "prometheus"));
    let line = format!(
        "watertight_audit_containers_by_floor{{command=\"host\",digest=\"{}\",version=\"v1\",current=\"false\"}} 1",
        floor.digest()
    );
    assert!(metrics.contains(&line), "{line} not in:\n{metrics}");

    // A runtime.toml the audit cannot parse: a warning, the floor still reported, uncompared.
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "colour = 1\n").unwrap();
    let out = audit(pid, &broken, "json");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:1: colour: unknown field", broken.display())),
        "{stderr}"
    );
    let found = floor_findings(&stdout_json(&out));
    assert_eq!(found.len(), 1);
    assert!(found[0]
        .1
        .ends_with("(the node's current floor could not be read)"));

    // Another process in fresh namespaces, never published: no floor finding.
    let other = start_init();
    let report = stdout_json(&audit(other.child.id(), &v1, "json"));
    assert!(floor_findings(&report).is_empty(), "{report:#}");
    assert!(report.get("floors").is_none(), "{report:#}");
    drop(other);

    // Once the init process is gone, the entry no longer names anything.
    let _ = init.child.kill();
    let _ = init.child.wait();
    assert!(watertight_audit::sources::host::published_containers(
        Path::new(watertight_floor::RUNNING_CONTAINERS_DIR),
        Path::new("/proc")
    )
    .iter()
    .all(|c| c.container_id != id));
    drop(init);
    assert!(!published.exists());
    if made_state_dir {
        let _ = std::fs::remove_dir(state_dir);
    }
}

/// The whole chain on a real process: a process under the floor as the runtime would leave it
/// (the config's namespaces, the floor's filter and no_new_privs, capabilities trimmed to what
/// the hardened config keeps) is audited as its published config says: `plan-drift` "as
/// planned", `runtime-floor` under the current floor. The namespaces are made by a holder and
/// joined (nsenter) under the filter, so this test's floor leaves setns out of its list.
#[test]
fn a_process_under_its_hardened_config_is_audited_as_planned() {
    let test = watertight_testkit::this_test();
    if !watertight_testkit::require_root(&test)
        || !watertight_testkit::require_tools(
            &test,
            &["unshare", "nsenter", "setpriv", "sleep"],
            "util-linux",
        )
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("runtime.toml");
    std::fs::write(
        &toml,
        "version = \"as-planned\"\n[seccomp]\nsyscalls = [\"bpf\", \"keyctl\", \"mount\", \"unshare\", \"ptrace\"]\n",
    )
    .unwrap();
    let floor = Floor::load(Some(&toml)).unwrap();
    let mut spec: Spec = serde_json::from_str(CONFIG).unwrap();
    let hardening = floor.harden(&mut spec).unwrap();
    let filter = hardening
        .seccomp_profile()
        .unwrap()
        .compile(&watertight_seccomp::CompileOptions::default())
        .unwrap();

    let holder = start_init();
    let mut cmd = Command::new("nsenter");
    cmd.args([
        "-t",
        &holder.child.id().to_string(),
        "--uts",
        "--ipc",
        "--net",
    ])
    .args(["setpriv", "--bounding-set", "-all,+chown", "sleep", "120"])
    .stdin(Stdio::null());
    watertight_sys::seccomp::command_with_filter(
        &mut cmd,
        filter.program().to_vec(),
        filter.flags(),
    );
    let mut init = Init {
        child: cmd.spawn().expect("start nsenter"),
        container_id: None,
    };
    let pid = init.child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    while comm(pid) != "sleep" {
        if let Ok(Some(status)) = init.child.try_wait() {
            panic!("nsenter exited early: {status}");
        }
        assert!(Instant::now() < deadline, "nsenter did not reach sleep");
        std::thread::sleep(Duration::from_millis(10));
    }
    let state_dir = Path::new(watertight_floor::RUNNING_CONTAINERS_DIR);
    let made_state_dir = !state_dir.exists();
    let id = format!("floor-planned-{}", std::process::id());
    let entry = hardening
        .running_container(&id, pid, dir.path(), &spec, None)
        .unwrap();
    init.container_id = Some(id.clone());
    watertight_floor::publish(&entry).unwrap();

    let report = stdout_json(&audit(pid, &toml, "json"));
    let messages: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "plan-drift" || f["rule"] == "runtime-floor")
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        messages,
        vec![
            (
                "plan-drift".to_string(),
                format!("as planned (plan of container {id})")
            ),
            (
                "runtime-floor".to_string(),
                format!("under floor as-planned {}", floor.digest())
            ),
        ],
        "{report:#}"
    );
    // What the floor removed is gone from the process: the kernel says so, not the entry.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert!(status.contains("Seccomp:\t2"), "{status}");
    assert!(status.contains("CapBnd:\t0000000000000001"), "{status}");
    drop(init);
    drop(holder);
    if made_state_dir {
        let _ = std::fs::remove_dir(state_dir);
    }
}
