//! 1,000 jobs through `watertight batch --parallel 2` leave nothing behind on the host: no
//! cgroup, registry entry, published sandbox entry, slot lock, network namespace, mount,
//! process or file (issue #15, "1,000 jobs leave nothing behind"). Its own test binary, so no
//! other test of this crate runs sandboxes at the same time. Other users of the machine may:
//! what they hold while this runs belongs to a live process that is not this test's (every one
//! of this test's processes is gone when it checks), so the checks are on what is new since the
//! start and owned by a dead process, or names this test's work directory.
//! About 8 s in a debug build here (each job is one `watertight run` of /bin/true).

mod common;
use common::*;
use watertight_testkit::this_test;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const JOBS: usize = 1000;

fn alive(pid: &str) -> bool {
    !pid.is_empty() && Path::new("/proc").join(pid).exists()
}

/// Names in a directory (none if it does not exist).
fn names(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// watertight's cgroups in every hierarchy (v1 and v2), by path, and the cgroup registry's
/// entries: each named `watertight-NAME@PID-STARTTIME` after its supervisor.
fn cgroups() -> BTreeSet<String> {
    let mut v: BTreeSet<String> = watertight_cgroups()
        .into_iter()
        .map(|p| p.display().to_string())
        .collect();
    v.extend(
        names("/run/watertight/cgroups")
            .into_iter()
            .map(|n| format!("/run/watertight/cgroups/{n}")),
    );
    v
}

fn cgroup_owner(path: &str) -> String {
    path.rsplit_once('@')
        .and_then(|(_, tag)| tag.split_once('-'))
        .map(|(pid, _)| pid.to_string())
        .unwrap_or_default()
}

/// Published sandboxes (`wt-SLOT-PID.json`, partial ones `.wt-SLOT-PID.json.partial`).
fn sandbox_entries() -> BTreeSet<String> {
    names("/run/watertight/sandboxes")
}

fn sandbox_owner(name: &str) -> String {
    name.trim_start_matches('.')
        .split('.')
        .next()
        .and_then(|id| id.rsplit('-').next())
        .unwrap_or_default()
        .to_string()
}

/// (slot file, holder pid) of every flock held on a slot lock file (/proc/locks; a lock outlives
/// its taker while an inherited descriptor holds it, so a dead holder means a leaked lock).
fn slot_locks() -> BTreeSet<(String, String)> {
    let mut inodes = std::collections::BTreeMap::new();
    for n in names("/run/watertight/slots") {
        if let Ok(m) = std::fs::metadata(format!("/run/watertight/slots/{n}")) {
            inodes.insert(m.ino(), n);
        }
    }
    let mut v = BTreeSet::new();
    for l in std::fs::read_to_string("/proc/locks").unwrap().lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        // "1: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE START END"
        let (Some(pid), Some(dev_ino)) = (f.get(4), f.get(5)) else {
            continue;
        };
        let ino = dev_ino.rsplit(':').next().and_then(|i| i.parse().ok());
        if let Some(slot) = ino.and_then(|i: u64| inodes.get(&i)) {
            v.insert((slot.clone(), pid.to_string()));
        }
    }
    v
}

/// Network namespaces kept alive by a mount (nsfs) of watertight's or in `dir`, and the bridge
/// ports' state entries. (A namespace otherwise lives only while a process holds it, and no
/// process of this test is left.) Other nsfs mounts on the host are other users'.
fn netns_kept(dir: &Path) -> BTreeSet<String> {
    let needle = dir.display().to_string();
    let mut v: BTreeSet<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            l.contains(" - nsfs ") && (l.contains("/run/watertight") || l.contains(&needle))
        })
        .map(String::from)
        .collect();
    v.extend(names("/run/watertight/net"));
    v
}

/// Every mount, in any process's mount namespace, whose line names `dir`.
fn mounts_naming(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut v = Vec::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(text) = std::fs::read_to_string(p.path().join("mountinfo")) {
            v.extend(
                text.lines()
                    .filter(|l| l.contains(&needle))
                    .map(|l| format!("pid {}: {l}", p.file_name().to_string_lossy())),
            );
        }
    }
    v
}

/// Processes whose command line or working directory names `dir` (every step's `watertight run`
/// names its box there, and a program left running in a sandbox would still be in its box).
fn processes_naming(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut v = Vec::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let cwd = std::fs::read_link(p.path().join("cwd")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) || cwd.starts_with(dir) {
            v.push(p.file_name().to_string_lossy().into_owned());
        }
    }
    v
}

/// Children of this test process still alive.
fn our_children() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| {
            std::fs::read_to_string(p.path().join("stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().nth(1))
                    == Some(me.as_str())
            })
        })
        .count()
}

#[test]
fn a_thousand_jobs_leave_nothing_behind() {
    if !require_root(&this_test()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let jobs = dir.path().join("jobs.jsonl");
    let results = dir.path().join("results.jsonl");
    let mut lines = String::new();
    for i in 0..JOBS {
        lines.push_str(&format!(
            "{{\"id\":\"j{i}\",\"steps\":[{{\"name\":\"true\",\"argv\":[\"/bin/true\"]}}]}}\n"
        ));
    }
    std::fs::write(&jobs, lines).unwrap();
    let (cg0, sb0, locks0, ns0) = (
        cgroups(),
        sandbox_entries(),
        slot_locks(),
        netns_kept(dir.path()),
    );

    let o = watertight()
        .args(["batch", "--parallel", "2", "--work"])
        .arg(&work)
        .arg("--results")
        .arg(&results)
        .arg(&jobs)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let text = std::fs::read_to_string(&results).unwrap();
    let ids: BTreeSet<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["verdict"], "OK", "{l}");
            assert_eq!(v["steps"][0]["status"], "OK", "{l}");
            v["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), JOBS, "one result per job");

    assert_eq!(our_children(), 0, "processes left behind");
    assert_eq!(
        processes_naming(dir.path()),
        Vec::<String>::new(),
        "processes in the work dir"
    );
    assert_eq!(
        mounts_naming(dir.path()),
        Vec::<String>::new(),
        "mounts of the work dir"
    );
    assert_eq!(
        names(&work.display().to_string()),
        BTreeSet::new(),
        "files in --work"
    );
    let leaked: Vec<String> = cgroups()
        .difference(&cg0)
        .filter(|c| !alive(&cgroup_owner(c)))
        .cloned()
        .collect();
    assert_eq!(leaked, Vec::<String>::new(), "cgroups left behind");
    let leaked: Vec<String> = sandbox_entries()
        .difference(&sb0)
        .filter(|n| !alive(&sandbox_owner(n)))
        .cloned()
        .collect();
    assert_eq!(
        leaked,
        Vec::<String>::new(),
        "/run/watertight/sandboxes entries left"
    );
    let leaked: Vec<(String, String)> = slot_locks()
        .difference(&locks0)
        .filter(|(_, pid)| !alive(pid))
        .cloned()
        .collect();
    assert_eq!(
        leaked,
        Vec::<(String, String)>::new(),
        "slot locks left held"
    );
    assert_eq!(
        netns_kept(dir.path()),
        ns0,
        "network namespaces kept by a mount"
    );
}
