//! 1,000 sandboxes in a row leave no cgroup, mount, namespace or process behind. Its own test
//! binary, so no other test's sandboxes run at the same time.

mod common;
use common::*;

/// Host mounts that come from a sandbox (its staging area) or sit under watertight's run dir.
fn watertight_mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains("/run/watertight"))
        .map(String::from)
        .collect()
}

/// Processes running as a sandbox's host uid (the default profile maps slot N to 0x70000000+N):
/// any such process, or namespace held by one, outliving its run is a leak.
fn sandbox_processes() -> Vec<String> {
    let base = watertight_sandbox::default_profile().identity.host_id_base as u64;
    let mut v = Vec::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(p.path().join("status")) else {
            continue;
        };
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|r| {
                r.split_whitespace()
                    .next()
                    .and_then(|u| u.parse::<u64>().ok())
            });
        if uid.is_some_and(|u| (base..base + 65536).contains(&u)) {
            v.push(p.file_name().to_string_lossy().into_owned());
        }
    }
    v
}

/// Direct children of this test process still alive.
fn our_descendants() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| {
            std::fs::read_to_string(p.path().join("stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit(')')
                        .next()
                        .and_then(|r| r.split_whitespace().nth(1).map(|pp| pp == me))
                })
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn a_thousand_sandboxes_leave_nothing_behind() {
    if !require_root("a_thousand_sandboxes_leave_nothing_behind") {
        return;
    }
    let (cg0, mounts0, procs0) = (
        watertight_cgroups(),
        watertight_mounts(),
        sandbox_processes(),
    );
    for i in 0..1000 {
        let o = watertight()
            .args(["run", "--", "/bin/true"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "run {i}: {}", stderr(&o));
    }
    assert_eq!(watertight_cgroups(), cg0, "cgroups left behind");
    assert_eq!(watertight_mounts(), mounts0, "mounts left behind");
    assert_eq!(sandbox_processes(), procs0, "sandbox processes left behind");
    assert_eq!(our_descendants(), 0, "processes left behind");
    // A namespace lives only while a process or an nsfs mount holds it: with no sandbox process
    // and no sandbox mount left, none of the 7,000 namespaces these runs made is alive.
}
