//! A supervisor killed with SIGKILL leaves nothing running: the sandbox's pid 1 dies with it
//! (parent-death signal), and the next run removes the cgroup it could not remove itself.

mod common;
use common::*;

use std::time::{Duration, Instant};

fn sandbox_pid1_of(supervisor: u32) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|p| {
        let pid: u32 = p.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(p.path().join("stat")).ok()?;
        let ppid: u32 = stat
            .rsplit(')')
            .next()?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        (ppid == supervisor).then_some(pid)
    })
}

#[test]
fn killed_supervisor_leaves_nothing_after_the_next_run() {
    if !require_root("killed_supervisor_leaves_nothing") {
        return;
    }
    let mut child = watertight()
        .args(["run", "--", "/bin/sleep", "60"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid1 = loop {
        if let Some(p) = sandbox_pid1_of(child.id()) {
            break p;
        }
        assert!(Instant::now() < deadline, "the sandbox never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    // The supervisor moves pid 1 into its cgroup right after clone.
    let name = loop {
        let cgroups = std::fs::read_to_string(format!("/proc/{pid1}/cgroup")).unwrap_or_default();
        if let Some(n) = cgroups
            .lines()
            .filter_map(|l| l.rsplit('/').next())
            .find(|n| n.starts_with("watertight-"))
        {
            break n.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "the sandbox never joined a watertight cgroup"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    child.kill().unwrap(); // SIGKILL: no cleanup code runs in the supervisor
    child.wait().unwrap();

    // The sandbox dies with its supervisor.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid1}")).exists() {
        assert!(
            Instant::now() < deadline,
            "the sandbox outlived its killed supervisor"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Its cgroup is still there until the next run cleans stale state.
    let left = || {
        watertight_cgroups()
            .into_iter()
            .filter(|c| c.display().to_string().contains(&name))
            .count()
    };
    let o = watertight()
        .args(["run", "--", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        left(),
        0,
        "the killed supervisor's cgroup {name} was not cleaned up"
    );
}
