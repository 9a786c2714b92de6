//! containerd 1.6 (Debian's containerd, its containerd-shim-runc-v2 and ctr) running
//! watertight-runc as the runc.v2 shim's runtime binary: `ctr run --runc-binary` sets the shim's
//! `BinaryName` option, the same one a containerd config's
//! `[...runtimes.watertight.options] BinaryName = ...` sets (deploy/oci-runtime). A private
//! containerd (oci_support::Containerd: own root, state, sockets, CRI disabled), a busybox root
//! file system in the temp dir (no image), the runtime's --root and the cgroups under names of
//! this test; everything removed on drop.

mod oci_support;
use oci_support::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use watertight_testkit::{require, require_root, stderr, stdout};

/// Where watertight-runc publishes containers for `watertight audit host`.
const PUBLISHED: &str = "/run/watertight/containers";

struct Ctr {
    containerd: Option<Containerd>,
    runc: PathBuf,
    rootfs: PathBuf,
    cgroup_parent: String,
    _host_dirs: HostDirs,
    dir: tempfile::TempDir,
}

impl Ctr {
    fn start() -> Ctr {
        let host_dirs = HostDirs::note(&[PUBLISHED, "/run/watertight"]);
        let dir = watertight_testkit::world_readable_tempdir();
        let runc = dir.path().join("watertight-runc");
        std::os::unix::fs::symlink(watertight_testkit::watertight_bin(), &runc).unwrap();
        let rootfs = dir.path().join("rootfs");
        busybox_rootfs(&rootfs, &["sh", "echo", "true", "unshare", "cat"]);
        std::fs::create_dir(dir.path().join("containerd")).unwrap();
        let containerd = Some(Containerd::start(&dir.path().join("containerd")));
        Ctr {
            containerd,
            runc,
            rootfs,
            cgroup_parent: format!("wt-ctr-test-{}", std::process::id()),
            _host_dirs: host_dirs,
            dir,
        }
    }

    /// `ctr run --rm` of container `id` with the runc.v2 shim calling `runtime_binary`.
    fn run(&self, runtime_binary: &Path, id: &str, args: &[&str]) -> Output {
        let sock = &self.containerd.as_ref().unwrap().sock;
        Command::new("ctr")
            .arg("--address")
            .arg(sock)
            .args(["--namespace", "wt-test", "run", "--rm"])
            .args(["--runtime", "io.containerd.runc.v2", "--runc-binary"])
            .arg(runtime_binary)
            .arg("--runc-root")
            .arg(self.dir.path().join("runc-root"))
            .arg("--cgroup")
            .arg(format!("/{}/{id}", self.cgroup_parent))
            .arg("--rootfs")
            .arg(&self.rootfs)
            .arg(id)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        drop(self.containerd.take());
        for pid in processes_mentioning(&self.dir.path().to_string_lossy()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        unmount_under(self.dir.path());
        remove_cgroup_tree(&self.cgroup_parent);
    }
}

#[test]
fn containerd_runs_watertight_runc_through_the_runc_v2_shim() {
    let test = "containerd_runs_watertight_runc_through_the_runc_v2_shim";
    if !require_root(test)
        || !require(test, busybox_missing())
        || !watertight_testkit::require_tools(
            test,
            &["containerd", "ctr", "containerd-shim-runc-v2"],
            "containerd",
        )
    {
        return;
    }
    let c = Ctr::start();
    let out = c.run(&c.runc, "hi", &["/bin/echo", "hi"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hi\n");
    // The process's exit code comes back through the shim.
    let out = c.run(&c.runc, "exit", &["/bin/sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // ctr gives no seccomp profile: only the floor's filter stands between the process and a
    // user namespace, and it refuses.
    let args = [
        "/bin/sh",
        "-c",
        "/bin/unshare -U /bin/true && echo unshare-ok",
    ];
    let out = c.run(&c.runc, "unshare", &args);
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
    if watertight_testkit::have_tool("runc") {
        let runc = std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|d| d.join("runc"))
            .find(|p| p.is_file())
            .unwrap();
        let out = c.run(&runc, "unshare-runc", &args);
        assert!(out.status.success(), "under runc: {}", stderr(&out));
        assert_eq!(stdout(&out), "unshare-ok\n");
    }
    // --rm deleted each container: nothing left under the runtime's root or in the cgroups.
    let root = c.dir.path().join("runc-root");
    let left: Vec<_> = std::fs::read_dir(root.join("wt-test"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left under --root: {left:?}");
    for id in ["hi", "exit", "unshare"] {
        let leftovers = cgroup_left(&format!("{}/{id}", c.cgroup_parent));
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
