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
        // Containers handed to gVisor are markers `@gvisor/<id>.json`; `delete` reaches runsc
        // through them.
        let delegated = std::fs::read_dir(self.root.join("@gvisor"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".json")
                    .filter(|id| *id != "choice")
                    .map(str::to_owned)
            });
        let native = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|id| id != "@gvisor");
        let ids: Vec<String> = delegated.chain(native).collect();
        for id in ids {
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

/// A root file system in `dir`: /bin/busybox (Debian's busybox-static) and `applets` as
/// symlinks to it. World-readable, so a container user other than root can run it.
pub fn busybox_rootfs(dir: &Path, applets: &[&str]) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    for applet in applets {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
}

/// Unmounts (detached, deepest first) every mount point under `dir`: what a storage driver or
/// a runtime left there.
pub fn unmount_under(dir: &Path) {
    let dir = dir.to_string_lossy().into_owned();
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(Path::new(p), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The pids of the processes whose command line mentions `needle` (a test's temp dir): the
/// daemons, shims and containers a test started and must end.
pub fn processes_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// SIGTERM, up to `grace` to exit, then SIGKILL; reaps it.
pub fn stop_child(child: &mut std::process::Child, grace: std::time::Duration) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Removes `name` (a cgroup parent a client made, e.g. Docker's --cgroup-parent) and everything
/// below it from every hierarchy, deepest first; its processes are gone by then.
pub fn remove_cgroup_tree(name: &str) {
    let roots: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|h| h.path())
        .chain([PathBuf::from("/sys/fs/cgroup")])
        .collect();
    for root in roots {
        let top = root.join(name.trim_start_matches('/'));
        if !top.is_dir() {
            continue;
        }
        let mut dirs = vec![];
        let mut stack = vec![top];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
            dirs.push(d);
        }
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Host directories a client makes whatever its configuration says, shared by the tests of one
/// binary running in parallel: each is removed (when empty) by the last of them to finish,
/// unless it was there before the first started.
pub struct HostDirs {
    dirs: &'static [&'static str],
}

/// Per directory: how many live [`HostDirs`] use it, and whether it existed before the first.
static HOST_DIRS: std::sync::Mutex<Vec<(&'static str, usize, bool)>> =
    std::sync::Mutex::new(Vec::new());

impl HostDirs {
    /// Notes `dirs` (children before parents) as used.
    pub fn note(dirs: &'static [&'static str]) -> HostDirs {
        let mut table = HOST_DIRS.lock().unwrap_or_else(|e| e.into_inner());
        for d in dirs {
            match table.iter_mut().find(|(name, _, _)| name == d) {
                Some((_, users, existed)) => {
                    if *users == 0 {
                        *existed = Path::new(d).exists();
                    }
                    *users += 1;
                }
                None => table.push((d, 1, Path::new(d).exists())),
            }
        }
        HostDirs { dirs }
    }
}

impl Drop for HostDirs {
    fn drop(&mut self) {
        let mut table = HOST_DIRS.lock().unwrap_or_else(|e| e.into_inner());
        for d in self.dirs {
            if let Some((_, users, existed)) = table.iter_mut().find(|(name, _, _)| name == d) {
                *users -= 1;
                if *users == 0 && !*existed {
                    // Only when empty: anything else's content keeps it.
                    let _ = std::fs::remove_dir(d);
                }
            }
        }
    }
}

/// What containerd-shim-runc-v2 (sockets) and ctr (stdio fifos) make under /run/containerd.
pub const CONTAINERD_HOST_DIRS: &[&str] = &[
    "/run/containerd/s",
    "/run/containerd/fifo",
    "/run/containerd",
];

/// A private containerd (Debian's containerd 1.6): its own root, state, sockets and opt
/// directory under `dir`, the CRI plugin disabled; ended (with every shim it started) and its
/// mounts undone on drop.
pub struct Containerd {
    /// Its grpc socket.
    pub sock: PathBuf,
    dir: PathBuf,
    child: std::process::Child,
    _host_dirs: HostDirs,
}

impl Containerd {
    /// Starts it in `dir` (which must exist) and waits until it answers (a hang guard of 30 s).
    pub fn start(dir: &Path) -> Containerd {
        let host_dirs = HostDirs::note(CONTAINERD_HOST_DIRS);
        let d = dir.display();
        let config = dir.join("containerd.toml");
        std::fs::write(
            &config,
            format!(
                r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = "{d}/containerd-debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let c = Containerd {
            sock: dir.join("containerd.sock"),
            dir: dir.to_owned(),
            child,
            _host_dirs: host_dirs,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let up = c.sock.exists()
                && Command::new("ctr")
                    .arg("--address")
                    .arg(&c.sock)
                    .arg("version")
                    .output()
                    .is_ok_and(|o| o.status.success());
            if up {
                return c;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "containerd did not answer: {}",
                std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        stop_child(&mut self.child, std::time::Duration::from_secs(10));
        // Shims (their -address names our socket) and anything else still running from here.
        for pid in processes_mentioning(&self.dir.to_string_lossy()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        unmount_under(&self.dir);
    }
}
