//! watertight-runc as runc: the lifecycle (create, state, start, kill, delete), exit codes, a
//! refused config field, mounts and masked paths, a user namespace, exec, ps, pause/resume, the
//! error log line, and a tty through a console socket the test serves. Real containers, root.

mod oci_support;
use oci_support::*;

use serde_json::json;
use std::io::Read;
use std::os::fd::AsFd;
use watertight_testkit::{require, require_root, stderr, stdout};

fn ready(test: &str) -> bool {
    require_root(test) && require(test, busybox_missing())
}

#[test]
fn create_start_state_kill_delete() {
    if !ready("create_start_state_kill_delete") {
        return;
    }
    let rt = Runtime::new();
    let id = unique_id("life");
    let bundle = rt.bundle("b", &["sleep", "1000"], |_| {});
    let pid_file = rt.dir.path().join("pid");
    let out = rt.run_files(&[
        "create",
        "--bundle",
        bundle.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    let state = rt.state(&id);
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], id.as_str());
    let pid = state["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    // Not started yet: the process is still the runtime's init, not sleep.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!comm.contains("sleep"), "{comm:?}");
    let out = rt.run(&["start", &id]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    rt.wait_status(&id, "running");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(comm.starts_with("sleep\0"), "{comm:?}");
    // A second start is refused.
    let out = rt.run(&["start", &id]);
    assert_eq!(out.status.code(), Some(1));
    // delete without --force refuses a running container.
    let out = rt.run(&["delete", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = rt.run(&["kill", &id, "KILL"]);
    assert!(out.status.success(), "kill: {}", stderr(&out));
    rt.wait_status(&id, "stopped");
    let out = rt.run(&["delete", &id]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert!(!rt.root.join(&id).exists());
    assert!(cgroup_left(&id).is_empty(), "{:?}", cgroup_left(&id));
    let out = rt.run(&["state", &id]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn run_returns_the_exit_code_and_cleans_up() {
    if !ready("run_returns_the_exit_code_and_cleans_up") {
        return;
    }
    let rt = Runtime::new();
    let id = unique_id("run");
    let bundle = rt.bundle("b", &["sh", "-c", "echo out-$(hostname); exit 7"], |_| {});
    let out = rt.run(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out), "out-watertight\n");
    assert!(!rt.root.join(&id).exists());
    assert!(cgroup_left(&id).is_empty());
}

#[test]
fn an_unsupported_field_is_one_line_exit_1_and_nothing_is_left() {
    if !ready("an_unsupported_field_is_one_line_exit_1_and_nothing_is_left") {
        return;
    }
    let rt = Runtime::new();
    let id = unique_id("refused");
    let bundle = rt.bundle("b", &["true"], |c| {
        c["linux"]["intelRdt"] = json!({"closID": "x"})
    });
    let log = rt.dir.path().join("log.json");
    let out = rt.run(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        bundle.to_str().unwrap(),
        &id,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("linux.intelRdt: not supported by watertight-runc"),
        "{err}"
    );
    let line: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains("linux.intelRdt"));
    assert!(line["time"].is_string());
    assert!(!rt.root.join(&id).exists());
    assert!(cgroup_left(&id).is_empty());
}

#[test]
fn the_floor_refuses_unshare_and_is_named_in_the_state() {
    if !ready("the_floor_refuses_unshare_and_is_named_in_the_state") {
        return;
    }
    let rt = Runtime::new();
    let id = unique_id("floor");
    // The config's own profile allows everything: the floor's second filter still refuses.
    let bundle = rt.bundle(
        "b",
        &[
            "sh",
            "-c",
            "unshare -U true || echo refused; unshare -n true || echo refused",
        ],
        |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW"});
            c["process"]["noNewPrivileges"] = false.into();
        },
    );
    assert!(rt
        .run_files(&["create", "--bundle", bundle.to_str().unwrap(), &id])
        .status
        .success());
    let state = rt.state(&id);
    assert!(
        state["annotations"]["run.oci.watertight/floor.digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{state}"
    );
    assert!(rt.run(&["start", &id]).status.success());
    rt.wait_status(&id, "stopped");
    let out = std::fs::read_to_string(rt.dir.path().join("cmd.stdout")).unwrap();
    assert_eq!(out, "refused\nrefused\n");
    assert!(rt.run(&["delete", &id]).status.success());
}

/// Processes whose command line names `dir` (a leftover monitor would).
fn processes_naming(dir: &std::path::Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle))
        .collect()
}

#[test]
fn on_violation_kill_the_monitor_records_and_kills_the_container() {
    if !ready("on_violation_kill_the_monitor_records_and_kills_the_container") {
        return;
    }
    let rt = Runtime::new();
    let id = unique_id("kill");
    let floor = rt.dir.path().join("runtime.toml");
    let trail = rt.dir.path().join("trail");
    std::fs::write(
        &floor,
        format!(
            "on_violation = \"kill\"\n[audit_trail]\ndir = \"{}\"\n",
            trail.display()
        ),
    )
    .unwrap();
    let bundle = rt.bundle(
        "b",
        &["sh", "-c", "echo before; unshare -U true; echo survived"],
        |_| {},
    );
    let config = floor.to_str().unwrap();
    let out = rt.run_files(&[
        "--config",
        config,
        "create",
        "--bundle",
        bundle.to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        rt.state(&id)["annotations"]["run.oci.watertight/floor.on_violation"],
        "kill"
    );
    assert!(rt.run(&["start", &id]).status.success());
    rt.wait_status(&id, "stopped");
    let out = std::fs::read_to_string(rt.dir.path().join("cmd.stdout")).unwrap();
    assert_eq!(out, "before\n");
    let log = std::fs::read_to_string(rt.root.join(&id).join("violations.jsonl")).unwrap();
    let event: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(event["syscall"], "unshare");
    assert_eq!(event["action"], "kill");
    // The floor's audit trail has the same event.
    let trailed = std::fs::read_to_string(trail.join(format!("{id}.jsonl"))).unwrap();
    assert!(trailed.contains("\"unshare\""), "{trailed}");
    assert!(rt.run(&["delete", &id]).status.success());
    // The monitor ends with the container; nothing of the runtime is left running.
    for _ in 0..300 {
        if processes_naming(rt.dir.path()).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        processes_naming(rt.dir.path()).is_empty(),
        "{:?}",
        processes_naming(rt.dir.path())
    );
}

#[test]
fn on_violation_forensic_freezes_captures_signed_evidence_then_kills() {
    if !ready("on_violation_forensic_freezes_captures_signed_evidence_then_kills") {
        return;
    }
    let rt = Runtime::new();
    let id = unique_id("forensic");
    let floor = rt.dir.path().join("runtime.toml");
    let evidence = rt.dir.path().join("evidence");
    let key = rt.dir.path().join("keys/evidence.key");
    std::fs::write(
        &floor,
        format!(
            "on_violation = \"forensic\"\n[audit_trail]\nenabled = false\n[evidence]\ndir = \"{}\"\nkey = \"{}\"\n",
            evidence.display(),
            key.display()
        ),
    )
    .unwrap();
    // The container leaves something in its tmpfs, then makes the seed's first move.
    let bundle = rt.bundle(
        "b",
        &[
            "sh",
            "-c",
            "echo exfil > /scratch/loot; echo before; unshare -U true; echo survived",
        ],
        |c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "size=1m"]
            }));
        },
    );
    let out = rt.run_files(&[
        "--config",
        floor.to_str().unwrap(),
        "create",
        "--bundle",
        bundle.to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        rt.state(&id)["annotations"]["run.oci.watertight/floor.on_violation"],
        "forensic"
    );
    assert!(rt.run(&["start", &id]).status.success());
    rt.wait_status(&id, "stopped");
    // Killed before the refused call returned: nothing after it ran.
    let out = std::fs::read_to_string(rt.dir.path().join("cmd.stdout")).unwrap();
    assert_eq!(out, "before\n");
    let log = std::fs::read_to_string(rt.root.join(&id).join("violations.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["syscall"], "unshare");
    assert_eq!(lines[0]["action"], "forensic");
    let bundle_dir = lines[1]["evidence"]
        .as_str()
        .unwrap_or_else(|| panic!("no evidence: {log}"));
    assert!(
        bundle_dir.starts_with(evidence.to_str().unwrap()),
        "{bundle_dir}"
    );
    // The bundle verifies with the host key and holds the tmpfs layer and the violation.
    let pubkey = format!("{}.pub", key.display());
    let verified = watertight_testkit::watertight()
        .args(["evidence", "verify", "--pubkey", &pubkey, bundle_dir])
        .output()
        .unwrap();
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
    let shown = watertight_testkit::watertight()
        .args(["evidence", "show", bundle_dir])
        .output()
        .unwrap();
    let shown = stdout(&shown);
    assert!(shown.contains("tmpfs_scratch"), "{shown}");
    assert!(shown.contains("loot"), "{shown}");
    assert!(shown.contains("unshare"), "{shown}");
    assert!(rt.run(&["delete", &id]).status.success());
    assert!(cgroup_left(&id).is_empty(), "{:?}", cgroup_left(&id));
}

#[test]
fn a_malformed_config_is_one_line_naming_it_and_nothing_is_left() {
    if !ready("a_malformed_config_is_one_line_naming_it_and_nothing_is_left") {
        return;
    }
    let rt = Runtime::new();
    let bundle = rt.bundle("b", &["true"], |_| {});
    let config = bundle.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    for (n, broken) in [
        text[..text.len() / 2].to_owned(),
        text.replace("\"ociVersion\":\"1.0.2\"", "\"ociVersion\":\"9\""),
        text.replace("\"cwd\":\"/\"", "\"cwd\":\"relative\""),
        text.replace("\"type\":\"pid\"", "\"type\":\"nope\""),
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(&config, &broken).unwrap();
        let id = unique_id(&format!("bad{n}"));
        let out = rt.run(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
        assert_eq!(out.status.code(), Some(1), "case {n}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "case {n}: {err}");
        assert!(!rt.root.join(&id).exists(), "case {n}");
        assert!(cgroup_left(&id).is_empty(), "case {n}");
    }
}

#[test]
fn mounts_masked_and_readonly_paths_hold() {
    if !ready("mounts_masked_and_readonly_paths_hold") {
        return;
    }
    let rt = Runtime::new();
    let id = unique_id("mounts");
    let data = rt.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("hello"), "from the host\n").unwrap();
    let script = "cat /data/hello; echo x > /data/new 2>/dev/null || echo data-ro; \
                  echo x > /new 2>/dev/null || echo root-ro; cat /proc/timer_list /proc/kcore 2>/dev/null | wc -c; \
                  ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/domainname 2>/dev/null || echo sys-ro";
    let bundle = rt.bundle("b", &["sh", "-c", script], |c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro", "nosuid"]
        }));
    });
    let out = rt.run(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "from the host\ndata-ro\nroot-ro\n0\n0\nsys-ro\n"
    );
    assert!(!data.join("new").exists());
}

#[test]
fn a_user_namespace_with_mappings() {
    if !ready("a_user_namespace_with_mappings") {
        return;
    }
    let rt = Runtime::new();
    let id = unique_id("userns");
    let bundle = rt.bundle(
        "b",
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u",
        ],
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            c["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            c["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            // sysfs and the cgroup tree belong to the host's user namespace: binds, as rootless runc.
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
        },
    );
    // The rootfs belongs to the mapped root, as for rootless runc.
    fn chown_tree(path: &std::path::Path) {
        std::os::unix::fs::lchown(path, Some(100000), Some(100000)).unwrap();
        if path.is_dir() && !path.is_symlink() {
            for e in std::fs::read_dir(path).unwrap() {
                chown_tree(&e.unwrap().path());
            }
        }
    }
    chown_tree(&bundle.join("rootfs"));
    let out = rt.run(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(
        fields,
        ["0", "100000", "65536", "0", "100000", "65536", "0"],
        "{text}"
    );
}

#[test]
fn exec_ps_pause_resume_in_a_running_container() {
    if !ready("exec_ps_pause_resume_in_a_running_container") {
        return;
    }
    let rt = Runtime::new();
    let id = unique_id("exec");
    let bundle = rt.bundle("b", &["sleep", "1000"], |_| {});
    assert!(rt
        .run_files(&["create", "--bundle", bundle.to_str().unwrap(), &id])
        .status
        .success());
    assert!(rt.run(&["start", &id]).status.success());
    rt.wait_status(&id, "running");
    let out = rt.run(&[
        "exec",
        "--env",
        "X=41",
        &id,
        "sh",
        "-c",
        "echo $((X+1)) $(hostname); exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "42 watertight\n");
    let out = rt.run_files(&["exec", "--detach", &id, "sleep", "1000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = rt.run(&["ps", "--format", "json", &id]);
    let pids: Vec<i64> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(pids.contains(&rt.state(&id)["pid"].as_i64().unwrap()));
    assert!(rt.run(&["pause", &id]).status.success());
    assert_eq!(rt.state(&id)["status"], "paused");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pids[0])).unwrap();
    assert!(stat.contains(") S ") || stat.contains(") D "), "{stat}");
    assert!(rt.run(&["resume", &id]).status.success());
    assert_eq!(rt.state(&id)["status"], "running");
    let out = rt.run(&["events", "--stats", &id]);
    let event: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(event["data"]["pids"]["current"], 2);
    let out = rt.run(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .unwrap()
                    .contains(") Z ")
        );
    }
    assert!(cgroup_left(&id).is_empty());
}

#[test]
fn a_tty_through_the_console_socket() {
    if !ready("a_tty_through_the_console_socket") {
        return;
    }
    let rt = Runtime::new();
    let id = unique_id("tty");
    let bundle = rt.bundle("b", &["sh", "-c", "tty; echo hello-tty"], |c| {
        c["process"]["terminal"] = true.into();
    });
    let sock_path = rt.dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        watertight_sys::fdpass::recv_fd(conn.as_fd())
            .unwrap()
            .expect("a pty master")
    });
    let out = rt.run_files(&[
        "create",
        "--bundle",
        bundle.to_str().unwrap(),
        "--console-socket",
        sock_path.to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let master = std::fs::File::from(server.join().unwrap());
    assert!(rt.run(&["start", &id]).status.success());
    rt.wait_status(&id, "stopped");
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    let mut master = master;
    // EIO once the slave side is closed by the exited process.
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("/dev/pts/0\r\nhello-tty\r\n"), "{text:?}");
    assert!(rt.run(&["delete", &id]).status.success());
}
