//! A small real "sandbox" for capture tests: child processes in a throwaway cgroup, frozen, and
//! a directory standing in for the writable layer, reached through /proc/<pid>/root like the
//! real one. Everything is killed and removed on drop, also when a test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use watertight_cgroups::{Cgroup, Limits};

pub const ENV_MARKER: &str = "WT_FORENSICS_MARKER";

pub struct FrozenSandbox {
    // Field order is drop order: the cgroup (kills everything) before the children are reaped.
    pub cgroup: Option<Cgroup>,
    pub children: Vec<Child>,
    pub layer: tempfile::TempDir,
    pub marker_value: String,
}

impl FrozenSandbox {
    /// `None` (with the reason printed) when this host cannot freeze a cgroup, or when not root
    /// (a failure instead with WATERTIGHT_REQUIRE_ROOT=1).
    pub fn start(tasks: usize, tag: &str) -> Option<FrozenSandbox> {
        if !watertight_testkit::require_root(&watertight_testkit::this_test()) {
            return None;
        }
        let layout = match watertight_cgroups::detect() {
            Ok(l) => l,
            Err(e) => {
                eprintln!("SKIP: no usable cgroup hierarchy: {e}");
                return None;
            }
        };
        let name = format!("forensics-test-{tag}-{}", std::process::id());
        let cgroup = Cgroup::create(&layout, &name, &Limits::default()).expect("create cgroup");
        let marker_value = format!("marker-{tag}-{}", std::process::id());
        let mut sandbox = FrozenSandbox {
            cgroup: Some(cgroup),
            children: Vec::new(),
            layer: tempfile::tempdir().expect("layer dir"),
            marker_value,
        };
        for _ in 0..tasks {
            let child = Command::new("sleep")
                .arg("1000")
                .env(ENV_MARKER, &sandbox.marker_value)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn sleep");
            let pid = child.id() as i32;
            sandbox.children.push(child);
            sandbox.cgroup().add_process(pid).expect("add to cgroup");
        }
        if let Err(e) = sandbox.cgroup().freeze() {
            eprintln!("SKIP: cannot freeze a cgroup here: {e}");
            return None;
        }
        Some(sandbox)
    }

    pub fn cgroup(&self) -> &Cgroup {
        self.cgroup.as_ref().expect("cgroup alive")
    }

    pub fn pids(&self) -> Vec<i32> {
        self.cgroup().pids().expect("cgroup pids")
    }

    /// The layer dir as the supervisor reaches it: through a task's /proc/<pid>/root.
    pub fn layer_via_proc(&self) -> PathBuf {
        let pid = self.children[0].id();
        let inner = self
            .layer
            .path()
            .strip_prefix("/")
            .expect("absolute tempdir");
        Path::new(&format!("/proc/{pid}/root")).join(inner)
    }
}

impl Drop for FrozenSandbox {
    fn drop(&mut self) {
        if let Some(cgroup) = self.cgroup.take() {
            let _ = cgroup.kill_all();
            let _ = cgroup.destroy();
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn test_key() -> watertight_forensics::SigningKey {
    watertight_forensics::SigningKey::from_seed([42; 32])
}

pub const EVENTS: &[u8] = br#"{"time":"2026-11-22T10:00:00.000Z","kind":"start","pid":100}
{"time":"2026-11-22T10:00:01.500Z","kind":"violation","pid":101,"syscall":"ptrace","args":["PTRACE_ATTACH",1,0,0]}
"#;
pub const VERDICT: &[u8] =
    br#"{"status":"SV","message":"security violation: ptrace","sandbox_id":"sb"}"#;
