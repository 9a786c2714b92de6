//! Docker (Debian's docker.io 20.10, /usr/bin/docker and /usr/sbin/dockerd) with
//! `--runtime watertight`: each test starts its own dockerd on its own private containerd
//! (oci_support::Containerd), everything under a temp dir (data root, exec root, sockets, the
//! daemon.json naming the runtime, the trust key), no bridge, no iptables, the cgroupfs driver
//! under its own cgroup parent. The image is `docker import` of a busybox tarball (no
//! registry). On drop: containers and images removed, the daemons ended, mounts undone, the
//! cgroup parent and the host directories the daemons made removed.
//!
//! /usr/local/bin/docker, if present, is not Debian's client and is never used: the tests call
//! /usr/bin/docker with `-H unix://<socket>`.

mod oci_support;
use oci_support::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use watertight_testkit::{require, require_root, stderr, stdout};

const DOCKER: &str = "/usr/bin/docker";
const DOCKERD: &str = "/usr/sbin/dockerd";
const IMAGE: &str = "watertight-oci-test:busybox";
/// Where watertight-runc publishes containers for `watertight audit host`.
const PUBLISHED: &str = "/run/watertight/containers";
/// What dockerd makes whatever --exec-root says (its plugin directory), and where
/// watertight-runc publishes: removed when empty by the last test, unless there before.
const HOST_DIRS: &[&str] = &[
    "/run/docker/plugins",
    "/run/docker",
    PUBLISHED,
    "/run/watertight",
];

struct Docker {
    // Declared (dropped) after the fields the Drop impl uses; the temp dir last.
    sock: PathBuf,
    cgroup_parent: String,
    daemon: Option<std::process::Child>,
    containerd: Option<Containerd>,
    _host_dirs: HostDirs,
    dir: tempfile::TempDir,
}

fn missing_packages() -> Option<String> {
    let missing: Vec<&str> = [DOCKER, DOCKERD, "/usr/bin/containerd", "/usr/bin/ctr"]
        .into_iter()
        .filter(|p| !Path::new(p).is_file())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "needs {} (apt-get install docker.io containerd, or scripts/install-deps.sh)",
            missing.join(", ")
        )
    })
}

fn ready(test: &str) -> bool {
    require_root(test) && require(test, busybox_missing()) && require(test, missing_packages())
}

impl Docker {
    /// A private containerd and dockerd, the busybox image imported.
    fn start(name: &str) -> Docker {
        let host_dirs = HostDirs::note(HOST_DIRS);
        let dir = watertight_testkit::world_readable_tempdir();
        let d = dir.path();
        let runc = d.join("watertight-runc");
        std::os::unix::fs::symlink(watertight_testkit::watertight_bin(), &runc).unwrap();
        std::fs::create_dir(d.join("containerd")).unwrap();
        let containerd = Containerd::start(&d.join("containerd"));
        // The documented configuration line, plus the trust key moved out of /etc/docker.
        let config = d.join("daemon.json");
        std::fs::write(
            &config,
            serde_json::json!({
                "runtimes": {"watertight": {"path": runc}},
                "deprecated-key-path": d.join("key.json"),
            })
            .to_string(),
        )
        .unwrap();
        let cgroup_parent = format!("/wt-docker-test-{name}-{}", std::process::id());
        let sock = d.join("docker.sock");
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let daemon = Command::new(DOCKERD)
            .arg("--config-file")
            .arg(&config)
            .arg("--containerd")
            .arg(&containerd.sock)
            .args(["--containerd-namespace", "wt-test"])
            .args(["--containerd-plugins-namespace", "wt-test-plugins"])
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .args(["--ip-masq=false", "--userland-proxy=false"])
            .args(["--storage-driver", "vfs"])
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            .arg("--cgroup-parent")
            .arg(&cgroup_parent)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let docker = Docker {
            sock,
            cgroup_parent,
            daemon: Some(daemon),
            containerd: Some(containerd),
            _host_dirs: host_dirs,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !docker.run(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer: {}",
                std::fs::read_to_string(docker.dir.path().join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        docker.import_busybox();
        docker
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER);
        c.arg("-H").arg(format!("unix://{}", self.sock.display()));
        // The client's own config (contexts, credentials) stays in the temp dir too.
        c.env("DOCKER_CONFIG", self.dir.path().join("client"));
        c.args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    fn import_busybox(&self) {
        let root = self.dir.path().join("image");
        busybox_rootfs(
            &root,
            &["sh", "echo", "cat", "sleep", "id", "unshare", "true", "tty"],
        );
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

    /// `docker run --rm --network none --runtime RUNTIME EXTRA... IMAGE ARGS...`.
    fn run_in(&self, runtime: &str, extra: &[&str], args: &[&str]) -> Output {
        let mut v = vec!["run", "--rm", "--network", "none", "--runtime", runtime];
        v.extend(extra);
        v.push(IMAGE);
        v.extend(args);
        self.run(&v)
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let ids = stdout(&self.run(&["ps", "--all", "--quiet"]));
            for id in ids.split_whitespace() {
                let _ = self.run(&["rm", "--force", id]);
            }
            let _ = self.run(&["rmi", "--force", IMAGE]);
        }
        if let Some(mut daemon) = self.daemon.take() {
            stop_child(&mut daemon, Duration::from_secs(15));
        }
        // containerd and its shims, then whatever else still names the temp dir.
        drop(self.containerd.take());
        for pid in processes_mentioning(&self.dir.path().to_string_lossy()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        unmount_under(self.dir.path());
        remove_cgroup_tree(&self.cgroup_parent);
        // _host_dirs, dropped next: /run/docker and the published directory, by the last test.
    }
}

/// The container's memory limit and pids limit files, cgroup v1 or v2 (read from inside).
const LIMITS: &str = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max";

#[test]
fn docker_runs_execs_stops_logs_limits_and_ttys_under_watertight() {
    let test = "docker_runs_execs_stops_logs_limits_and_ttys_under_watertight";
    if !ready(test) {
        return;
    }
    let d = Docker::start("run");
    let info = d.ok(&["info", "--format", "{{json .Runtimes}}"]);
    assert!(info.contains("\"watertight\""), "{info}");

    // run --rm.
    let out = d.run_in("watertight", &[], &["echo", "hi"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hi\n");
    // The exit code comes back.
    let out = d.run_in("watertight", &[], &["sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));

    // Limits, as the container sees its cgroup, and observed: a fork past pids.max fails.
    let out = d.run_in(
        "watertight",
        &["--memory", "64m", "--pids-limit", "10"],
        &["sh", "-c", LIMITS],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}\n10\n", 64u64 << 20));
    let out = d.run_in(
        "watertight",
        &["--pids-limit", "4"],
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6; do sleep 5 & done 2>&1; kill $(jobs -p) 2>/dev/null; wait",
        ],
    );
    assert!(
        stdout(&out).contains("can't fork") || stderr(&out).contains("can't fork"),
        "no fork refused under --pids-limit 4: {}{}",
        stdout(&out),
        stderr(&out)
    );

    // run -d, exec, logs, stop, rm.
    let id = d
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--runtime",
            "watertight",
            IMAGE,
            "sh",
            "-c",
            "echo started; exec sleep 1000",
        ])
        .trim()
        .to_owned();
    assert_eq!(
        d.ok(&["exec", &id, "sh", "-c", "echo in-$((20+1))"]),
        "in-21\n"
    );
    let out = d.run(&["exec", &id, "sh", "-c", "exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(d.ok(&["logs", &id]), "started\n");

    // `watertight audit host` on the running container: as its published plan, under the
    // floor (built-in here: no /etc/watertight/runtime.toml is read by the test's runtime
    // unless the host has one, and the audit reads the same file).
    let pid = d
        .ok(&["inspect", "--format", "{{.State.Pid}}", &id])
        .trim()
        .to_owned();
    let out = watertight_testkit::watertight()
        .args(["audit", "host", "--pid", &pid, "--fail-on", "none"])
        .args(["--reference-pid", &std::process::id().to_string()])
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = watertight_testkit::stdout_json(&out);
    let findings: Vec<(String, String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "plan-drift" || f["rule"] == "runtime-floor")
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
                f["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(findings.len(), 2, "{report:#}");
    assert_eq!(findings[0].0, "plan-drift");
    assert_eq!(findings[0].1, "info", "{report:#}");
    assert!(
        findings[0].2.starts_with("as planned (plan sha256:"),
        "{report:#}"
    );
    assert_eq!(findings[1].0, "runtime-floor");
    assert_eq!(findings[1].1, "info", "{report:#}");
    assert!(findings[1].2.starts_with("under floor "), "{report:#}");
    // What the floor forces is in the kernel's view of the container's process.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert!(status.contains("Seccomp:\t2"), "{status}");

    d.ok(&["stop", "--time", "1", &id]);
    let state = d.ok(&["inspect", "--format", "{{.State.Status}}", &id]);
    assert_eq!(state.trim(), "exited");
    d.ok(&["rm", &id]);
    assert!(d.ok(&["ps", "--all", "--quiet"]).trim().is_empty());
    assert!(
        !Path::new(PUBLISHED).join(format!("{id}.json")).exists(),
        "rm left the published entry"
    );

    // A tty session: `docker run -t` under script(1), which gives the client a pty.
    let inner = format!(
        "{DOCKER} -H unix://{} run --rm -t --network none --runtime watertight {IMAGE} sh -c 'tty; echo tty-ok'",
        d.sock.display()
    );
    let out = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env("DOCKER_CONFIG", d.dir.path().join("client"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("tty-ok"), "{text}");
}

#[test]
fn unshare_of_a_user_namespace_is_refused_under_watertight_and_allowed_under_runc() {
    let test = "unshare_of_a_user_namespace_is_refused_under_watertight_and_allowed_under_runc";
    if !ready(test) {
        return;
    }
    let d = Docker::start("unshare");
    // Docker's default profile refuses unshare without CAP_SYS_ADMIN under both runtimes; a
    // container whose profile allows it (unconfined, or a custom profile) is where they part:
    // the floor's filter still refuses it (the seed's route to host root: a user namespace,
    // then the netfilter inside it).
    let args = ["sh", "-c", "unshare -U true && echo unshare-ok"];
    let unconfined = ["--security-opt", "seccomp=unconfined"];
    for profile in [&[][..], &unconfined[..]] {
        let out = d.run_in("watertight", profile, &args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{profile:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("Operation not permitted"),
            "{profile:?}: {}",
            stderr(&out)
        );
    }
    let out = d.run_in("runc", &unconfined, &args);
    assert!(out.status.success(), "under runc: {}", stderr(&out));
    assert_eq!(stdout(&out), "unshare-ok\n");
}
