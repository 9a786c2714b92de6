//! Shared by the oci_*.rs tests: a `watertight-runc` symlink, a --root and busybox bundles in a
//! temporary directory; every container left is force-deleted on drop.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Debian's busybox-static (scripts/install-deps.sh).
pub const BUSYBOX: &str = "/bin/busybox";

/// Why busybox-static is missing, if it is.
pub fn busybox_missing() -> Option<String> {
    (!Path::new(BUSYBOX).is_file()).then(|| {
        "needs /bin/busybox (apt-get install busybox-static, or scripts/install-deps.sh)".to_owned()
    })
}

/// One test's runtime: temp dir, symlink, root.
pub struct Runtime {
    /// The temp dir holding everything.
    pub dir: tempfile::TempDir,
    /// The `watertight-runc` symlink.
    pub runc: PathBuf,
    /// The --root.
    pub root: PathBuf,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new()
    }
}

impl Runtime {
    /// A fresh temp dir with the symlink.
    pub fn new() -> Runtime {
        let dir = watertight_testkit::world_readable_tempdir();
        let runc = dir.path().join("watertight-runc");
        std::os::unix::fs::symlink(watertight_testkit::watertight_bin(), &runc).unwrap();
        let root = dir.path().join("state");
        Runtime { dir, runc, root }
    }

    /// `watertight-runc --root ROOT ARGS...`, finished.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Like [`Runtime::run`] with stdout and stderr in files: for `create` and `exec
    /// --detach`, whose container process keeps the caller's stdio (a pipe would never close).
    pub fn run_files(&self, args: &[&str]) -> Output {
        let out_path = self.dir.path().join("cmd.stdout");
        let err_path = self.dir.path().join("cmd.stderr");
        let status = self
            .cmd(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&out_path).unwrap(),
            stderr: std::fs::read(&err_path).unwrap(),
        }
    }

    /// The command, not started.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.runc);
        c.arg("--root").arg(&self.root).args(args);
        c
    }

    /// A bundle NAME: a busybox rootfs (world-readable) and `spec`'s config with `args`, no
    /// terminal, edited by `edit`.
    pub fn bundle(&self, name: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> PathBuf {
        let bundle = self.dir.path().join(name);
        let bin = bundle.join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
        for applet in [
            "sh", "echo", "cat", "ls", "sleep", "id", "true", "tty", "wc", "unshare", "hostname",
            "mount", "grep",
        ] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        let out = Command::new(&self.runc)
            .args(["spec", "--bundle"])
            .arg(&bundle)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = bundle.join("config.json");
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config["process"]["terminal"] = false.into();
        config["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
        edit(&mut config);
        std::fs::write(&path, config.to_string()).unwrap();
        bundle
    }

    /// `state ID` as JSON.
    pub fn state(&self, id: &str) -> Value {
        let out = self.run(&["state", id]);
        assert!(
            out.status.success(),
            "state {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits until `id`'s status is `want` (a hang guard of 30 s, not a measure).
    pub fn wait_status(&self, id: &str, want: &str) {
        for _ in 0..3000 {
            if self.state(id)["status"] == want {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{id} never became {want}: {}", self.state(id));
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for entry in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = entry.file_name().to_string_lossy().into_owned();
            let _ = self.run(&["delete", "--force", &id]);
        }
    }
}

/// A container id unique to this test process.
pub fn unique_id(name: &str) -> String {
    format!("wt-oci-test-{name}-{}", std::process::id())
}

/// Whether any cgroup hierarchy still has a directory named `id` at its root.
pub fn cgroup_left(id: &str) -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|h| h.path())
        .flat_map(|h| {
            [
                h.join(id),
                h.parent().map(|p| p.join(id)).unwrap_or_default(),
            ]
        })
        .filter(|p| p.is_dir())
        .collect()
}
