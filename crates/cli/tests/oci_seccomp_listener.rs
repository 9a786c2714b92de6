//! linux.seccomp.listenerPath, runc's seccomp agent protocol: the container's filter has
//! SCMP_ACT_NOTIFY rules, `create` connects to the unix socket at listenerPath and sends the
//! OCI ContainerProcessState JSON with the filter's notify fd attached. The test is the agent:
//! it checks the state, answers the container's notified mkdir with EXDEV, and the container
//! sees that errno; the floor's filter, installed after the container's, still refuses unshare.
//! A listenerPath with nobody behind it is a one-line error naming the field, exit 1, and
//! nothing is left under --root or in the cgroups.

mod oci_support;
use oci_support::*;

use serde_json::{json, Value};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};
use watertight_testkit::{require, require_root, stderr, stdout};

const METADATA: &str = "agent-test-metadata";

fn ready(test: &str) -> bool {
    require_root(test) && require(test, busybox_missing())
}

/// A profile that lets everything through except mkdir/mkdirat, which go to the agent.
fn notifying_profile(listener_path: &Path) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": listener_path,
        "listenerMetadata": METADATA,
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    })
}

/// What the agent saw: the state JSON, and each notified syscall number it answered.
struct Seen {
    state: Value,
    answered: Vec<i32>,
}

/// The agent: accepts one connection, reads the state and the fd, answers each notification
/// with `-errno` until the filter's last task is gone (or a 30 s hang guard).
fn agent(listener: UnixListener, errno: i32) -> std::thread::JoinHandle<Seen> {
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("the runtime connects");
        let mut buf = vec![0u8; 64 * 1024];
        let (n, fd) = watertight_sys::fdpass::recv_data_with_fd(conn.as_fd(), &mut buf).unwrap();
        let state: Value = serde_json::from_slice(&buf[..n]).expect("the state is JSON");
        let fd: OwnedFd = fd.expect("the notify fd came with the state");
        let mut answered = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let mut poll = [nix::poll::PollFd::new(
                fd.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            match nix::poll::poll(&mut poll, nix::poll::PollTimeout::from(200u16)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => panic!("poll: {e}"),
            }
            let revents = poll[0].revents().unwrap_or(nix::poll::PollFlags::empty());
            if revents.contains(nix::poll::PollFlags::POLLHUP) {
                break; // every task under the filter is gone
            }
            let Ok(req) = watertight_sys::seccomp::notif_recv(fd.as_fd()) else {
                continue; // the task died between poll and recv
            };
            answered.push(req.data.nr);
            let resp = nix::libc::seccomp_notif_resp {
                id: req.id,
                val: 0,
                error: -errno,
                flags: 0,
            };
            let _ = watertight_sys::seccomp::notif_send(fd.as_fd(), &resp);
        }
        Seen { state, answered }
    })
}

#[test]
fn the_agent_at_listener_path_gets_the_state_and_fd_and_answers_the_container() {
    let test = "the_agent_at_listener_path_gets_the_state_and_fd_and_answers_the_container";
    if !ready(test) {
        return;
    }
    let rt = Runtime::new();
    let id = unique_id("agent");
    let sock = rt.dir.path().join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let seen = agent(listener, nix::libc::EXDEV);
    let script = "busybox mkdir /made-here; echo mkdir=$?; unshare -U true; echo unshare=$?";
    let bundle = rt.bundle("b", &["sh", "-c", script], |c| {
        c["linux"]["seccomp"] = notifying_profile(&sock);
    });
    let out = rt.run(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(stdout(&out), "mkdir=1\nunshare=1\n", "{}", stderr(&out));
    let err = stderr(&out);
    // The errno the agent chose, as the container's program reports it.
    assert!(err.contains("Invalid cross-device link"), "{err}");
    // The floor's filter went in after the container's: unshare is still refused.
    assert!(err.contains("Operation not permitted"), "{err}");

    let seen = seen.join().unwrap();
    assert!(
        seen.answered
            .iter()
            .all(|nr| [nix::libc::SYS_mkdir, nix::libc::SYS_mkdirat].contains(&(*nr as i64))),
        "{:?}",
        seen.answered
    );
    assert!(!seen.answered.is_empty());
    let s = &seen.state;
    assert_eq!(s["ociVersion"], "1.0.2", "{s:#}");
    assert_eq!(s["fds"], json!(["seccompFd"]), "{s:#}");
    assert_eq!(s["metadata"], METADATA, "{s:#}");
    assert!(s["pid"].as_i64().unwrap() > 0, "{s:#}");
    assert_eq!(s["state"]["id"], id.as_str(), "{s:#}");
    assert_eq!(s["state"]["status"], "creating", "{s:#}");
    assert_eq!(s["state"]["pid"], s["pid"], "{s:#}");
    assert_eq!(s["state"]["bundle"], bundle.to_str().unwrap(), "{s:#}");
    assert!(!rt.root.join(&id).exists());
    assert!(cgroup_left(&id).is_empty());
}

#[test]
fn an_exec_d_process_s_listener_goes_to_the_agent_too() {
    let test = "an_exec_d_process_s_listener_goes_to_the_agent_too";
    if !ready(test) {
        return;
    }
    let rt = Runtime::new();
    let id = unique_id("agentexec");
    let sock = rt.dir.path().join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let for_init = agent(listener.try_clone().unwrap(), nix::libc::EXDEV);
    let bundle = rt.bundle("b", &["sleep", "30"], |c| {
        c["linux"]["seccomp"] = notifying_profile(&sock);
    });
    let out = rt.run_files(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = rt.run(&["start", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    rt.wait_status(&id, "running");
    let init_pid = rt.state(&id)["pid"].as_i64().unwrap();

    let for_exec = agent(listener, nix::libc::ENOTSUP);
    let out = rt.run(&["exec", &id, "busybox", "mkdir", "/made-by-exec"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // Not the init's agent's errno: the exec'd process's own listener was answered.
    assert!(
        stderr(&out).contains("Operation not supported"),
        "{}",
        stderr(&out)
    );
    let out = rt.run(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));

    let exec_seen = for_exec.join().unwrap();
    let s = &exec_seen.state;
    assert_eq!(s["fds"], json!(["seccompFd"]), "{s:#}");
    assert_eq!(s["metadata"], METADATA, "{s:#}");
    assert_eq!(s["state"]["status"], "running", "{s:#}");
    assert_eq!(s["state"]["pid"], init_pid, "{s:#}");
    let exec_pid = s["pid"].as_i64().unwrap();
    assert!(exec_pid > 0 && exec_pid != init_pid, "{s:#}");
    assert!(!exec_seen.answered.is_empty());
    let init_seen = for_init.join().unwrap();
    assert_eq!(init_seen.state["state"]["status"], "creating");
    assert_eq!(init_seen.state["pid"], init_pid);
    assert!(!rt.root.join(&id).exists());
    assert!(cgroup_left(&id).is_empty());
}

#[test]
fn a_listener_path_nobody_listens_on_is_one_line_exit_1_and_nothing_is_left() {
    let test = "a_listener_path_nobody_listens_on_is_one_line_exit_1_and_nothing_is_left";
    if !ready(test) {
        return;
    }
    let rt = Runtime::new();
    // No socket there at all (caught while planning), then a socket file nobody accepts on
    // (caught when create connects, after the container's init exists: undone).
    let missing = rt.dir.path().join("missing.sock");
    let dead = rt.dir.path().join("dead.sock");
    drop(UnixListener::bind(&dead).unwrap());
    for (n, path) in [missing, dead].iter().enumerate() {
        let id = unique_id(&format!("noagent{n}"));
        let bundle = rt.bundle(&format!("b{n}"), &["true"], |c| {
            c["linux"]["seccomp"] = notifying_profile(path);
        });
        let out = rt.run_files(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
        assert_eq!(out.status.code(), Some(1), "case {n}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "case {n}: {err}");
        assert!(
            err.contains("linux.seccomp.listenerPath") && err.contains(&*path.to_string_lossy()),
            "case {n}: {err}"
        );
        assert!(!rt.root.join(&id).exists(), "case {n}");
        assert!(cgroup_left(&id).is_empty(), "case {n}");
    }
}
