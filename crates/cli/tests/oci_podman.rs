//! Podman (Debian's podman 4.3, conmon) with `--runtime watertight-runc`: run --rm, run -d +
//! exec + stop + rm, --memory and --pids-limit seen from inside, with an image imported from a
//! busybox tarball (no registry). Storage, run root and tmpdir live in a temp dir, which is
//! emptied (images, containers, mounts) before it is removed.

mod oci_support;
use oci_support::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use watertight_testkit::{require, require_root, require_tools, stderr, stdout};

/// watertight-runc's default --root (watertight_oci::state::DEFAULT_ROOT).
fn watertight_oci_default_root() -> &'static str {
    "/run/watertight-runc"
}

const IMAGE: &str = "localhost/watertight-oci-test:busybox";

struct Podman {
    dir: tempfile::TempDir,
    runc: PathBuf,
    /// Podman's cgroupfs parent (conmon makes /libpod_parent/conmon in every hierarchy): removed
    /// afterwards unless it was there before.
    parents_before: Vec<PathBuf>,
    /// Podman calls the runtime without --root: its default root is made if missing.
    default_root_before: bool,
}

fn libpod_parents() -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|h| h.path().join("libpod_parent"))
        .filter(|p| p.is_dir())
        .collect()
}

impl Podman {
    fn new() -> Podman {
        let dir = watertight_testkit::world_readable_tempdir();
        let runc = dir.path().join("watertight-runc");
        std::os::unix::fs::symlink(watertight_testkit::watertight_bin(), &runc).unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        Podman {
            dir,
            runc,
            parents_before: libpod_parents(),
            default_root_before: Path::new(watertight_oci_default_root()).exists(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        c.arg("--root").arg(d.join("storage"));
        c.arg("--runroot").arg(d.join("run"));
        c.arg("--tmpdir").arg(d.join("tmp"));
        c.args(["--cgroup-manager", "cgroupfs", "--events-backend", "none"]);
        c.arg("--runtime").arg(&self.runc);
        c.args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "podman {args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    fn import_busybox(&self) {
        let root = self.dir.path().join("image");
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
        for applet in ["sh", "echo", "cat", "sleep", "id", "unshare", "true"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        let tar = self.dir.path().join("image.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        self.ok(&["import", tar.to_str().unwrap(), IMAGE]);
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "--all", "--force", "--time", "0"]);
        let _ = self.run(&["rmi", "--all", "--force"]);
        if !self.default_root_before {
            // Empty once every container is removed; left alone otherwise.
            let _ = std::fs::remove_dir(watertight_oci_default_root());
        }
        for parent in libpod_parents() {
            if !self.parents_before.contains(&parent) {
                let _ = std::fs::remove_dir(parent.join("conmon"));
                let _ = std::fs::remove_dir(&parent);
            }
        }
        // Whatever the storage driver still has mounted under the temp dir.
        let dir = self.dir.path().to_string_lossy().into_owned();
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") {
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
    }
}

/// The host's root lacks CAP_SYS_RESOURCE, so podman's default nofile/nproc hard limits
/// (1048576) cannot be granted: runc fails the same way ("error setting rlimit type 7").
const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

fn ready(test: &str) -> bool {
    require_root(test)
        && require(test, busybox_missing())
        && require_tools(test, &["podman", "conmon"], "podman")
}

#[test]
fn podman_runs_execs_stops_and_limits_under_watertight_runc() {
    if !ready("podman_runs_execs_stops_and_limits_under_watertight_runc") {
        return;
    }
    let p = Podman::new();
    p.import_busybox();
    let mut run = vec!["run", "--rm", "--network", "none"];
    run.extend(ULIMITS);
    let with = |extra: &[&'static str]| -> Vec<&str> {
        let mut v = run.clone();
        v.extend(extra);
        v
    };
    assert_eq!(p.ok(&with(&[IMAGE, "echo", "hi"])), "hi\n");

    // Limits as the container sees them in its cgroup.
    let mem = p.ok(&with(&[
        "--memory",
        "64m",
        IMAGE,
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]));
    assert_eq!(mem.trim(), (64u64 << 20).to_string());
    let pids = p.ok(&with(&[
        "--pids-limit",
        "10",
        IMAGE,
        "cat",
        "/sys/fs/cgroup/pids/pids.max",
    ]));
    assert_eq!(pids.trim(), "10");

    // run -d, exec, stop, rm.
    let mut detached = vec!["run", "-d", "--network", "none"];
    detached.extend(ULIMITS);
    detached.extend([IMAGE, "sleep", "1000"]);
    let id = p.ok(&detached).trim().to_owned();
    assert_eq!(
        p.ok(&["exec", &id, "sh", "-c", "echo in-$((20+1))"]),
        "in-21\n"
    );
    let out = p.run(&["exec", &id, "sh", "-c", "exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    p.ok(&["stop", "--time", "1", &id]);
    let state = p.ok(&["inspect", "--format", "{{.State.Status}}", &id]);
    assert_eq!(state.trim(), "exited");
    p.ok(&["rm", &id]);
    assert!(p.ok(&["ps", "--all", "--quiet"]).trim().is_empty());
}

#[test]
fn unshare_of_a_user_namespace_is_refused_under_watertight_and_allowed_under_runc() {
    let test = "unshare_of_a_user_namespace_is_refused_under_watertight_and_allowed_under_runc";
    if !ready(test) || !require_tools(test, &["runc"], "runc") {
        return;
    }
    let p = Podman::new();
    p.import_busybox();
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend(ULIMITS);
    args.extend([IMAGE, "sh", "-c", "unshare -U true && echo unshare-ok"]);
    // The seed's route to host root: a user namespace, then the netfilter inside it.
    let out = p.run(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );
    let mut runc = p.cmd(&[]);
    runc.args(["--runtime", "runc"]).args(&args);
    let out = runc.stdin(std::process::Stdio::null()).output().unwrap();
    assert!(out.status.success(), "under runc: {}", stderr(&out));
    assert_eq!(stdout(&out), "unshare-ok\n");
}
