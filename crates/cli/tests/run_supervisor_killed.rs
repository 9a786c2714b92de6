//! A supervisor killed with SIGKILL leaves nothing running: the sandbox's pid 1 dies with it
//! (parent-death signal), and the next run removes the cgroup it could not remove itself.

mod common;
use common::*;

use std::time::{Duration, Instant};

/// The supervisor's children: the sandbox's pid 1, and for a moment before it the helper that
/// holds the idmap namespace (killed once its maps are written).
fn children_of(supervisor: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|p| {
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
        .collect()
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
    // The sandbox's pid 1 is the child the supervisor moves into its cgroup right after clone
    // (the idmap helper, also a child for a moment, never joins one).
    let deadline = Instant::now() + Duration::from_secs(10);
    let (pid1, name) = loop {
        let found = children_of(child.id()).into_iter().find_map(|pid| {
            let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
            cgroups
                .lines()
                .filter_map(|l| l.rsplit('/').next())
                .find(|n| n.starts_with("watertight-"))
                .map(|n| (pid, n.to_string()))
        });
        if let Some(found) = found {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "the sandbox never started in a watertight cgroup"
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
