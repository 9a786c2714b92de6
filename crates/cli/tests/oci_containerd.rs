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
        busybox_rootfs(&rootfs, &["sh", "echo", "true", "unshare", "cat", "sleep"]);
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

/// A runtime binary for the shim: watertight-runc with `--config runtime_toml` (the shim's
/// BinaryName cannot carry arguments; a node's runtime.toml is at the default path).
fn runtime_with_config(c: &Ctr, runtime_toml: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let wrapper = c.dir.path().join("watertight-runc-configured");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {} --config {} \"$@\"\n",
            c.runc.display(),
            runtime_toml.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

#[test]
fn the_isolation_policy_hands_containers_to_gvisor_when_the_kernel_is_too_exposed() {
    let test = "the_isolation_policy_hands_containers_to_gvisor_when_the_kernel_is_too_exposed";
    if !require_root(test)
        || !require(test, busybox_missing())
        || !watertight_testkit::require_tools(
            test,
            &["containerd", "ctr", "containerd-shim-runc-v2"],
            "containerd",
        )
        || !watertight_testkit::require_tools(test, &["runsc"], "runsc")
    {
        return;
    }
    let Some(records) = watertight_testkit::require_shared(test, "kernel-vulns/cve/published")
    else {
        return;
    };
    let c = Ctr::start();
    let policy = c.dir.path().join("isolation.toml");
    let set_threshold = |above: usize| {
        // 6.1.100: 1,369 high or critical CVEs reachable from a namespace sandbox.
        std::fs::write(
            &policy,
            format!(
                "escalate_above = {above}\ncve_db = {:?}\nkernel_version = \"6.1.100\"\n",
                records.display().to_string()
            ),
        )
        .unwrap();
    };
    let runtime_toml = c.dir.path().join("runtime.toml");
    std::fs::write(
        &runtime_toml,
        format!("[isolation]\npolicy = {:?}\n", policy.display().to_string()),
    )
    .unwrap();
    let runtime = runtime_with_config(&c, &runtime_toml);
    let version = ["/bin/cat", "/proc/version"];

    // Over the threshold: gVisor's Sentry answers, with its own kernel version.
    set_threshold(100);
    let out = c.run(&runtime, "risky", &version);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("Linux version 4.4.0 "),
        "{}",
        stdout(&out)
    );
    let out = c.run(&runtime, "risky-exit", &["/bin/sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    // The runtime's own commands on a delegated container: state carries the isolation, list
    // shows it, kill and delete reach runsc, and delete leaves nothing of it.
    let rt = Runtime::new();
    let root = rt.root.clone();
    let bundle = rt.bundle("bundle", &["/bin/sleep", "60"], |spec| {
        // Under this test's cgroup parent, which the guard removes whatever happens (runsc
        // leaves a cgroup it did not make).
        spec["linux"]["cgroupsPath"] = format!("/{}/direct", c.cgroup_parent).into();
    });
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let toml = runtime_toml.display().to_string();
    // In files (the container keeps create's stdio), under the isolation policy.
    let runc = |args: &[&str]| rt.run_files(&[&["--config", toml.as_str()], args].concat());
    let bundle_arg = bundle.display().to_string();
    let out = runc(&["create", "--bundle", &bundle_arg, "direct"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = runc(&["start", "direct"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // exec (as containerd's shim calls it: a process file) and ps reach the container in runsc.
    let process = c.dir.path().join("process.json");
    std::fs::write(
        &process,
        serde_json::json!({"args": ["/bin/cat", "/proc/version"], "cwd": "/",
                           "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}})
        .to_string(),
    )
    .unwrap();
    let out = runc(&[
        "exec",
        "--process",
        &process.display().to_string(),
        "direct",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("Linux version 4.4.0 "),
        "{}",
        stdout(&out)
    );
    let out = runc(&["ps", "--format", "json", "direct"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = runc(&["state", "direct"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["status"], "running", "{state}");
    assert_eq!(
        state["annotations"]["run.oci.watertight/isolation"],
        "gvisor"
    );
    // The caller's bundle, not the shadow one runsc reads; and the floor's record claims
    // neither its second filter nor a violation response, which the Sentry path lacks.
    assert_eq!(state["bundle"], bundle.display().to_string(), "{state}");
    assert!(state["created"].as_str().is_some(), "{state}");
    let added = state["annotations"]["run.oci.watertight/floor.added"]
        .as_str()
        .unwrap_or("");
    assert!(!added.contains("seccomp-filter"), "{state}");
    assert_eq!(
        state["annotations"]["run.oci.watertight/floor.on_violation"],
        "not applied: gvisor"
    );
    let out = runc(&["list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        list.as_array().unwrap().iter().any(|s| s["id"] == "direct"),
        "{list}"
    );
    // `audit host` sees runsc's processes for what they are: one gvisor-sandbox note, and none
    // of the host-kernel findings (host PID namespace, the Gofer's capabilities) that runsc's
    // own processes would otherwise draw.
    let audit = Command::new(env!("CARGO_BIN_EXE_watertight"))
        .args(["audit", "host", "--format", "json", "--fail-on", "none"])
        .arg(format!("--reference-pid={}", std::process::id()))
        .output()
        .unwrap();
    assert!(audit.status.success(), "{}", stderr(&audit));
    let report: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    let mine: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["workload"].as_str().is_some_and(|w| w.contains("direct")))
        .collect();
    assert!(
        mine.iter().any(|f| f["rule"] == "gvisor-sandbox"),
        "{mine:#?}"
    );
    assert!(
        mine.iter()
            .all(|f| f["severity"] == "info" || f["severity"] == "low"),
        "{mine:#?}"
    );

    // A second create of the id is refused, and takes nothing down.
    let out = runc(&["create", "--bundle", &bundle_arg, "direct"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let out = runc(&["kill", "direct", "KILL"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = runc(&["delete", "--force", "direct"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let left: Vec<_> = std::fs::read_dir(root.join("@gvisor"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "choice.json" && n != "runsc")
        .collect();
    assert!(left.is_empty(), "left under --root/@gvisor: {left:?}");
    let out = runc(&["state", "direct"]);
    assert!(!out.status.success());

    // `run` (create, start, wait, delete in one call) under gVisor: the program's exit code and
    // output come back, and nothing of it is left.
    spec["process"]["args"] = serde_json::json!(["/bin/sh", "-c", "cat /proc/version; exit 4"]);
    std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    let out = runc(&["run", "--bundle", &bundle_arg, "once"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("Linux version 4.4.0 "),
        "{}",
        stdout(&out)
    );
    assert!(!runc(&["state", "once"]).status.success());
    // `run --detach` returns with the container running, delegated like a created one.
    spec["process"]["args"] = serde_json::json!(["/bin/sleep", "60"]);
    std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    let out = runc(&["run", "--detach", "--bundle", &bundle_arg, "bg"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let state: serde_json::Value = serde_json::from_slice(&runc(&["state", "bg"]).stdout).unwrap();
    assert_eq!(state["status"], "running", "{state}");
    let out = runc(&["delete", "--force", "bg"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let left: Vec<_> = std::fs::read_dir(root.join("@gvisor"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "choice.json" && n != "runsc")
        .collect();
    assert!(
        left.is_empty(),
        "left under --root/@gvisor after run: {left:?}"
    );

    // At most the threshold: namespaces, the host's kernel (the changed policy file is read
    // again, not the cached choice).
    set_threshold(2000);
    let out = c.run(&runtime, "patched", &version);
    assert!(out.status.success(), "{}", stderr(&out));
    let host = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert!(stdout(&out).contains(host.trim()), "{}", stdout(&out));

    // A policy naming the VM tier is refused at create, naming it; nothing is created.
    std::fs::write(
        &policy,
        format!(
            "escalate_above = 1\nescalate_to = \"vm\"\ncve_db = {:?}\nkernel_version = \"6.1.100\"\n",
            records.display().to_string()
        ),
    )
    .unwrap();
    let out = runc(&["create", "--bundle", &bundle_arg, "vm"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("escalate_to"), "{}", stderr(&out));
    assert!(!root.join("vm").exists());
    assert!(processes_mentioning(&root.to_string_lossy()).is_empty());
}
