//! The DaemonSet's image (`deploy/Containerfile`), built by `scripts/build-image.sh` under a tag
//! of its own and run with podman as `deploy/watertight-audit-daemonset.yaml` runs it: the podman
//! flags are derived from the manifest's own pod spec (hostPID, user, capabilities, no privilege
//! escalation, read-only root, hostPath volumes as temporary directories), so a change to the
//! manifest is a change to what is tested. Root and podman only. Every container and the image
//! are removed by a Drop guard, also when an assertion fails.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use watertight_pss::k8s_openapi::api::core::v1::Container;
use watertight_testkit::{require_root, require_tools, stderr, stdout, this_test};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("podman runs")
}

/// The flags of every `podman run` here besides the pod's own: runc (crun 1.8 refuses hosts with
/// hybrid cgroups, as this VM has), rlimits the runtime may set (podman asks for 1048576 open
/// files and more processes than root here may raise its limit to: root lacks
/// CAP_SYS_RESOURCE), no network, and a cgroup parent named for this test run, which podman
/// creates (with `conmon` below it) and the guard removes; the cgroupfs manager, so that this
/// path is one on a systemd host too (where podman would otherwise want a slice).
fn run_flags(cgroup_parent: &str) -> Vec<String> {
    [
        "--runtime=runc",
        "--cgroup-manager=cgroupfs",
        "run",
        "--rm",
        "--network=none",
        "--ulimit=nofile=1024:1024",
        "--ulimit=nproc=1024:1024",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--cgroup-parent=/{cgroup_parent}")])
    .collect()
}

/// The image and the containers this test makes, removed on drop (also after a failed
/// assertion): containers by their exact names, the image by its exact tag.
struct Podman {
    tag: String,
    prefix: String,
    containers: Vec<String>,
    children: Vec<Child>,
}

impl Podman {
    /// A container name of this test run, remembered for removal.
    fn name(&mut self, what: &str) -> String {
        let name = format!("{}-{what}", self.prefix);
        self.containers.push(name.clone());
        name
    }

    /// `podman run` of a fresh named container (removed when it ends) with `flags`, the image,
    /// and `args` for its entrypoint.
    fn run(&mut self, what: &str, flags: &[String], args: &[&str]) -> Output {
        let name = self.name(what);
        Command::new("podman")
            .args(run_flags(&self.prefix))
            .arg(format!("--name={name}"))
            .args(flags)
            .arg(&self.tag)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("podman runs")
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for name in &self.containers {
            let _ = podman(&["rm", "--force", "--ignore", "--time", "0", name]);
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = podman(&["image", "unmount", &self.tag]);
        let _ = podman(&["rmi", "--ignore", &self.tag]);
        // The cgroup parent of this run, in each hierarchy (cgroup v2: the one), conmon's below
        // it; empty once the containers are gone.
        let mut parents = vec![Path::new("/sys/fs/cgroup").join(&self.prefix)];
        if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
            parents.extend(hierarchies.flatten().map(|h| h.path().join(&self.prefix)));
        }
        for parent in parents.iter().filter(|p| p.is_dir()) {
            let _ = std::fs::remove_dir(parent.join("conmon"));
            if let Err(e) = std::fs::remove_dir(parent) {
                eprintln!("cannot remove the cgroup {}: {e}", parent.display());
            }
        }
    }
}

/// A process in a pid namespace of its own that shares the host's network namespace (as
/// `unshare --pid --fork`), killed by pid on drop: a workload every audit of this host must
/// report with `shared-host-namespace[net]`, if it can read namespaces at all.
struct Workload {
    unshare: Child,
    /// The host pid of the `sleep` inside.
    pid: u32,
}

impl Workload {
    fn start() -> Workload {
        let mut unshare = Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare (util-linux) runs");
        let children = format!("/proc/{0}/task/{0}/children", unshare.id());
        let started = Instant::now();
        let pid = loop {
            let text = std::fs::read_to_string(&children).unwrap_or_default();
            if let Some(pid) = text.split_whitespace().next() {
                break pid.parse().expect("a pid");
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = unshare.kill();
                let _ = unshare.wait();
                panic!("unshare --pid --fork started no child in 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Workload { unshare, pid }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        // SIGKILL to unshare; --kill-child takes the sleep with it.
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

/// The DaemonSet's one container and the podman flags that give it what the pod spec gives it.
struct PodRun {
    container: Container,
    flags: Vec<String>,
    /// mountPath -> the temporary directory standing in for the hostPath.
    volumes: Vec<(String, PathBuf)>,
}

fn daemonset_run(scratch: &Path) -> PodRun {
    let manifest = repo_root().join("deploy/watertight-audit-daemonset.yaml");
    let loaded = watertight_pss::load_path(&manifest);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let [ds] = loaded.workloads.as_slice() else {
        panic!("one workload in the manifest: {:?}", loaded.workloads.len());
    };
    assert_eq!(ds.kind, "DaemonSet");
    let spec = &ds.pod_spec;
    let [container] = spec.containers.as_slice() else {
        panic!("one container in the DaemonSet");
    };
    let mut flags: Vec<String> = Vec::new();
    if spec.host_pid == Some(true) {
        flags.push("--pid=host".into());
    }
    assert_ne!(
        spec.host_network,
        Some(true),
        "the audit needs no host network"
    );
    assert_ne!(spec.host_ipc, Some(true), "the audit needs no host IPC");
    let seccomp = spec
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref())
        .map(|p| p.type_.as_str());
    // podman's default seccomp profile is the runtime default.
    assert_eq!(seccomp, Some("RuntimeDefault"));
    let sc = container
        .security_context
        .as_ref()
        .expect("a container securityContext");
    assert_ne!(sc.privileged, Some(true));
    let user = sc.run_as_user.expect("runAsUser set");
    let group = sc.run_as_group.expect("runAsGroup set");
    flags.push(format!("--user={user}:{group}"));
    let caps = sc.capabilities.as_ref().expect("capabilities set");
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
    flags.push("--cap-drop=all".into());
    for cap in caps.add.iter().flatten() {
        flags.push(format!("--cap-add={cap}"));
    }
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    flags.push("--security-opt=no-new-privileges".into());
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    // Kubernetes adds no tmpfs to a read-only root; podman would, unless told not to.
    flags.push("--read-only".into());
    flags.push("--read-only-tmpfs=false".into());
    let mut volumes = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let volume = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .expect("every volumeMount names a volume");
        let host = volume
            .host_path
            .as_ref()
            .expect("the DaemonSet mounts hostPath volumes only");
        // The node's directory, stood in for by a temporary one (this host's stays untouched).
        let dir = scratch.join(&mount.name);
        std::fs::create_dir(&dir).unwrap();
        let ro = if mount.read_only == Some(true) {
            ":ro"
        } else {
            ""
        };
        flags.push(format!(
            "--volume={}:{}{ro}",
            dir.display(),
            mount.mount_path
        ));
        eprintln!("hostPath {} -> {}", host.path, dir.display());
        volumes.push((mount.mount_path.clone(), dir));
    }
    PodRun {
        container: container.clone(),
        flags,
        volumes,
    }
}

impl PodRun {
    fn volume(&self, mount_path: &str) -> &Path {
        &self
            .volumes
            .iter()
            .find(|(m, _)| m == mount_path)
            .unwrap_or_else(|| panic!("a volume mounted at {mount_path}"))
            .1
    }
}

/// What a finding-shaped JSON list says about `pid`: `rule[namespace]` of each entry naming it.
fn findings_of(report: &serde_json::Value, pid: u32) -> BTreeSet<String> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| {
            f["pids"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p.as_u64() == Some(u64::from(pid))))
        })
        .map(|f| match f["namespace"].as_str() {
            Some(ns) => format!("{}[{ns}]", f["rule"].as_str().unwrap()),
            None => f["rule"].as_str().unwrap().to_string(),
        })
        .collect()
}

#[test]
fn the_daemonset_image_builds_runs_as_the_manifest_says_and_leaves_nothing() {
    let test = this_test();
    if !require_root(&test)
        || !require_tools(
            &test,
            &["podman", "file", "unshare"],
            "podman file util-linux",
        )
    {
        return;
    }
    let version = env!("CARGO_PKG_VERSION");
    let unique = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut pm = Podman {
        tag: format!("localhost/watertight-test:{unique}"),
        prefix: format!("watertight-test-{unique}"),
        containers: Vec::new(),
        children: Vec::new(),
    };
    let tag = pm.tag.clone();
    let scratch = tempfile::tempdir().unwrap();
    let pod = daemonset_run(scratch.path());

    // The manifest names exactly what the script builds by default.
    assert_eq!(
        pod.container.image.as_deref(),
        Some(format!("localhost/watertight:{version}").as_str()),
        "deploy/watertight-audit-daemonset.yaml must name scripts/build-image.sh's default tag"
    );

    // 1. The build, reusing the release build of this target directory when it is current.
    let started = Instant::now();
    let built = Command::new(repo_root().join("scripts/build-image.sh"))
        .args(["--tag", &tag])
        // Its cargo finds the target directory as the cargo that built this test did (the
        // environment, CARGO_TARGET_DIR included, is inherited): a current release build there
        // is reused.
        .stdin(Stdio::null())
        .output()
        .expect("scripts/build-image.sh runs");
    assert!(
        built.status.success(),
        "build-image.sh failed: {}{}",
        stdout(&built),
        stderr(&built)
    );
    let last = stdout(&built);
    assert!(last.contains(&format!("built {tag} ")), "{last}");
    eprintln!(
        "image built in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        last.trim()
    );

    // 2. Labels, user, entrypoint.
    let inspect = podman(&["image", "inspect", &tag]);
    assert!(inspect.status.success(), "{}", stderr(&inspect));
    let info: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let config = &info[0]["Config"];
    let labels = &config["Labels"];
    assert_eq!(labels["org.opencontainers.image.title"], "watertight");
    assert_eq!(labels["org.opencontainers.image.version"], version);
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://example.invalid/watertight"
    );
    let head = Command::new("git")
        .args(["-C", repo_root().to_str().unwrap(), "rev-parse", "HEAD"])
        .output()
        .expect("git runs");
    let head = stdout(&head).trim().to_string();
    let revision = labels["org.opencontainers.image.revision"]
        .as_str()
        .unwrap_or_default();
    assert!(
        head.len() == 40 && revision.starts_with(&head),
        "revision {revision:?} is HEAD {head:?}"
    );
    assert_eq!(config["User"], "65534:65534");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/watertight"])
    );
    eprintln!(
        "image size {} bytes (podman's Size)",
        info[0]["Size"].as_u64().unwrap_or(0)
    );

    // 3. Exactly the binary and the two files: no shell, no loader, no libc.
    let mounted = podman(&["image", "mount", &tag]);
    assert!(mounted.status.success(), "{}", stderr(&mounted));
    let rootfs = PathBuf::from(stdout(&mounted).trim());
    let mut files = BTreeSet::new();
    let mut stack = vec![rootfs.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(&rootfs).unwrap().display().to_string();
            if path.symlink_metadata().unwrap().is_dir() {
                stack.push(path);
                files.insert(format!("{rel}/"));
            } else {
                files.insert(rel);
            }
        }
    }
    let _ = podman(&["image", "unmount", &tag]);
    let expected: BTreeSet<String> = [
        "etc/",
        "etc/group",
        "etc/passwd",
        "usr/",
        "usr/local/",
        "usr/local/bin/",
        "usr/local/bin/watertight",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(files, expected);
    let shell = pm.run("shell", &["--entrypoint=/bin/sh".into()], &["-c", "true"]);
    assert!(!shell.status.success(), "the image has a shell");
    assert!(
        stderr(&shell).contains("/bin/sh"),
        "refused for the missing shell: {}",
        stderr(&shell)
    );

    // 4. -V, as the image's default user: the version and the revision it was built from.
    let out = pm.run("version", &[], &["-V"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(
        said.trim().starts_with(&format!("watertight {version} (")) && said.trim().ends_with(')'),
        "{said}"
    );

    // 5. `audit k8s deploy/`, in the image as its default user: nothing at medium or above
    //    counts (the host access is accepted in the manifest, tests/audit_daemonset.rs).
    let deploy = format!(
        "--volume={}:/deploy:ro",
        repo_root().join("deploy").display()
    );
    let out = pm.run(
        "k8s",
        &[deploy],
        &[
            "audit",
            "k8s",
            "/deploy",
            "--format",
            "json",
            "--fail-on",
            "medium",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for f in report["findings"].as_array().unwrap() {
        let severity = f["severity"].as_str().unwrap();
        assert!(severity == "low" || severity == "info", "{f:#}");
    }
    // The audit DaemonSet accepts 6, the BPF gatekeeper's (deploy/bpf-gatekeeper/) 4, the batch
    // Indexed Job's (deploy/batch/, tests/batch_deploy.rs) 4, the OCI runtime installer's
    // (deploy/oci-runtime/, tests/oci_deploy.rs) 11 (8 keys; some in both of its containers).
    assert_eq!(report["accepted"].as_array().map(Vec::len), Some(25));

    // 6. `audit host` with the DaemonSet's privileges, once, as JSON. This VM's PID 1 is
    //    unreadable even to root (docs/audit.md), so this test process is the reference.
    let workload = Workload::start();
    let reference = format!("--reference-pid={}", std::process::id());
    let audit_host = |pm: &mut Podman, what: &str, flags: &[String]| -> serde_json::Value {
        let out = pm.run(
            what,
            flags,
            &[
                "audit",
                "host",
                "--node=test-node",
                &reference,
                "--format=json",
                "--fail-on=none",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("a JSON report ({e}): {}", stdout(&out)))
    };
    let report = audit_host(&mut pm, "host", &pod.flags);
    assert_eq!(report["node"], "test-node");
    assert!(report["workloads"].as_u64().unwrap() >= 1, "{report:#}");
    // It saw the workload and read its namespaces: own pid namespace, the host's network.
    let seen = findings_of(&report, workload.pid);
    assert!(
        seen.contains("shared-host-namespace[net]") && !seen.contains("shared-host-namespace[pid]"),
        "pid {}: {seen:?}",
        workload.pid
    );
    // And CAP_SYS_PTRACE is what makes that possible: without it the same container cannot
    // read the reference's namespaces, and audit host says so (exit 2) instead of reporting.
    let without: Vec<String> = pod
        .flags
        .iter()
        .filter(|f| *f != "--cap-add=SYS_PTRACE")
        .cloned()
        .collect();
    assert_ne!(without, pod.flags, "the manifest adds SYS_PTRACE");
    let blind = pm.run(
        "host-noptrace",
        &without,
        &[
            "audit",
            "host",
            "--node=test-node",
            &reference,
            "--format=json",
            "--fail-on=none",
        ],
    );
    let said = stderr(&blind);
    assert_eq!(blind.status.code(), Some(2), "{said}");
    assert!(
        said.contains(&format!("cannot read /proc/{}/ns", std::process::id()))
            && said.contains("permission denied"),
        "{said}"
    );
    assert!(blind.stdout.is_empty(), "{}", stdout(&blind));

    // 7. The DaemonSet's own command line (5-minute rounds made 1-second ones): the report
    //    appears in the textfile volume and is replaced by a rename, round after round.
    let mut args: Vec<String> = pod.container.args.clone().unwrap_or_default();
    for arg in &mut args {
        *arg = arg.replace("$(NODE_NAME)", "test-node");
        if arg.starts_with("--every=") {
            *arg = "--every=1".into();
        }
    }
    assert!(args.iter().any(|a| a == "--every=1"), "{args:?}");
    args.push(reference.clone());
    let command = pod.container.command.clone().unwrap_or_default();
    let [entrypoint] = command.as_slice() else {
        panic!("command is the binary: {command:?}");
    };
    let name = pm.name("daemonset");
    let mut run = Command::new("podman");
    run.args(run_flags(&pm.prefix))
        .arg(format!("--name={name}"))
        .args(&pod.flags)
        .arg(format!("--entrypoint={entrypoint}"))
        .arg(&tag)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    pm.children.push(run.spawn().expect("podman run"));
    let textfile = pod.volume("/textfile").join("watertight.prom");
    let inode = |p: &Path| -> Option<u64> {
        std::fs::metadata(p)
            .ok()
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
    };
    let wait_for = |what: &str, ok: &dyn Fn() -> bool, pm: &mut Podman| {
        let started = Instant::now();
        while !ok() {
            if started.elapsed() > Duration::from_secs(60) {
                let child = pm.children.last_mut().unwrap();
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("{what} within 60 s; podman: {err}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("a first report", &|| inode(&textfile).is_some(), &mut pm);
    let first: Option<u64> = inode(&textfile);
    wait_for(
        "a second report, renamed over the first",
        &|| inode(&textfile).is_some_and(|i| Some(i) != first),
        &mut pm,
    );
    let text = std::fs::read_to_string(&textfile).unwrap();
    let samples = watertight_report::prometheus::read(&text).expect("Prometheus text");
    let sample = |name: &str| samples.iter().find(|s| s.name == name);
    assert!(
        sample("watertight_audit_workloads").is_some_and(|s| s.value >= 1.0),
        "{text}"
    );
    let pid = workload.pid.to_string();
    assert!(
        samples.iter().any(|s| s.name == "watertight_audit_finding"
            && s.labels.iter().any(|(k, v)| k == "pid" && *v == pid)),
        "pid {pid} in {text}"
    );
    // Only the report itself in the collector's directory (no temporary file left visible).
    let entries: Vec<String> = std::fs::read_dir(pod.volume("/textfile"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".prom"))
        .collect();
    assert_eq!(entries, ["watertight.prom"]);
    drop(workload);

    // 8. Nothing left: the guard removes the containers, the image and the cgroups podman made
    //    for them, and podman agrees.
    let prefix = pm.prefix.clone();
    drop(pm);
    let cgroups_left: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|h| h.path().join(&prefix))
        .chain([Path::new("/sys/fs/cgroup").join(&prefix)])
        .filter(|p| p.exists())
        .collect();
    assert!(cgroups_left.is_empty(), "cgroups left: {cgroups_left:?}");
    let ps = podman(&["ps", "--all", "--format", "{{.Names}}"]);
    assert!(
        !stdout(&ps).lines().any(|n| n.starts_with(&prefix)),
        "containers left: {}",
        stdout(&ps)
    );
    let images = podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        !stdout(&images).lines().any(|i| i == tag),
        "image left: {}",
        stdout(&images)
    );
}
