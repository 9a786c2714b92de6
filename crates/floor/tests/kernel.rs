//! The floor against the real kernel: its filter, installed after a container profile that
//! allows unshare (as runc would install the container's own), refuses the
//! netfilter-through-user-namespace route; a published entry names a live process.

use std::path::Path;
use std::process::Command;

use watertight_floor::{Floor, Hardening};
use watertight_seccomp::{Action, CompileOptions, Profile};
use watertight_sys::seccomp::{command_with_filter, probe_filter, Probe, ProbeOutcome};

const CONFIG: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs","readonly":true},
  "process":{"user":{"uid":0,"gid":0},"cwd":"/","args":["sleep","30"]},
  "linux":{"namespaces":[{"type":"pid"},{"type":"mount"}],
           "seccomp":{"defaultAction":"SCMP_ACT_ALLOW"}}}"#;

fn hardened(floor: &Floor) -> (oci_spec::runtime::Spec, Hardening) {
    let mut spec: oci_spec::runtime::Spec = serde_json::from_str(CONFIG).unwrap();
    let h = floor.harden(&mut spec).unwrap();
    (spec, h)
}

/// A container's own profile that allows everything, unshare included.
fn permissive_container_profile() -> Profile {
    let p = Profile::from_json(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
    assert_eq!(p.default_action, Action::Allow);
    p
}

#[test]
fn the_floor_refuses_namespace_creation_after_a_profile_that_allows_it() {
    if !watertight_testkit::require_tools(
        &watertight_testkit::this_test(),
        &["unshare"],
        "util-linux",
    ) {
        return;
    }
    // Control: without the floor, this host lets the program make a user namespace.
    let control = Command::new("unshare")
        .args(["-U", "true"])
        .output()
        .unwrap();
    if !control.status.success() {
        watertight_testkit::host_lacks(
            &watertight_testkit::this_test(),
            "unshare -U fails without any filter (user namespaces disabled)",
        );
        return;
    }
    let (_, h) = hardened(&Floor::built_in());
    let floor = h
        .seccomp_profile()
        .unwrap()
        .compile(&CompileOptions::default())
        .unwrap();
    let container = permissive_container_profile()
        .compile(&CompileOptions::default())
        .unwrap();

    let mut cmd = Command::new("unshare");
    cmd.args(["-U", "true"]);
    command_with_filter(&mut cmd, container.program().to_vec(), container.flags());
    command_with_filter(&mut cmd, floor.program().to_vec(), floor.flags());
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "unshare -U ran under the floor");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Operation not permitted"), "{stderr}");

    // An ordinary program under both filters runs.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo ok | cat"]);
    command_with_filter(&mut cmd, container.program().to_vec(), container.flags());
    command_with_filter(&mut cmd, floor.program().to_vec(), floor.flags());
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}

#[test]
fn each_violation_class_probe_meets_eperm_and_ordinary_calls_pass() {
    let (_, h) = hardened(&Floor::built_in());
    let floor = h
        .seccomp_profile()
        .unwrap()
        .compile(&CompileOptions::default())
        .unwrap();
    let denied = [
        Probe::Mount,
        Probe::UnshareUser,
        Probe::Setns,
        Probe::CloneNewNet,
        Probe::CloneNewUser,
        Probe::Bpf,
        Probe::Keyctl,
        Probe::IoUringSetup,
        Probe::Userfaultfd,
        Probe::PerfEventOpen,
        Probe::SocketPacket,
    ];
    let allowed = [Probe::Getpid, Probe::ReadBadFd];
    let probes: Vec<Probe> = denied.iter().chain(allowed.iter()).copied().collect();
    let report = probe_filter(Some(floor.program()), floor.flags(), &probes).unwrap();
    assert_eq!(report.install_errno, None, "{report:?}");
    for p in denied {
        assert_eq!(
            report.outcome(p),
            ProbeOutcome::Errno(libc::EPERM),
            "{p:?}: {report:?}"
        );
    }
    for p in allowed {
        assert!(
            !matches!(
                report.outcome(p),
                ProbeOutcome::Errno(libc::EPERM) | ProbeOutcome::NotRun
            ),
            "{p:?}: {report:?}"
        );
    }

    // With a monitor (on_violation = "kill"), the calls go to the listener; the probe child
    // closes it, and the kernel answers ENOSYS: refused even with no monitor alive.
    let kill = Floor::parse(Path::new("runtime.toml"), "on_violation = \"kill\"\n").unwrap();
    let (_, h) = hardened(&kill);
    let floor = h
        .seccomp_profile()
        .unwrap()
        .compile(&CompileOptions::default())
        .unwrap();
    assert!(floor.wants_listener());
    let report = probe_filter(
        Some(floor.program()),
        floor.flags(),
        &[Probe::UnshareUser, Probe::Getpid],
    )
    .unwrap();
    assert_eq!(
        report.outcome(Probe::UnshareUser),
        ProbeOutcome::Errno(libc::ENOSYS),
        "{report:?}"
    );
}

#[test]
fn a_published_entry_names_its_live_init_and_goes_stale_when_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let floor = Floor::built_in();
    let (spec, h) = hardened(&floor);
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let entry = h
        .running_container("c1", child.id(), Path::new("/srv/bundle"), &spec, None)
        .unwrap();
    assert_eq!(entry.floor_digest, floor.digest());
    assert_eq!(entry.workload.subjects[0].no_new_privs, Some(true));
    assert_eq!(entry.workload.subjects[0].mounts[0].target, "/");
    assert!(entry.workload.subjects[0].mounts[0].read_only);
    assert!(!entry.workload.subjects[0]
        .mounts
        .iter()
        .any(|m| m.target == "/dev/console"));
    let mut with_tty = spec.clone();
    if let Some(p) = with_tty.process_mut() {
        p.set_terminal(Some(true));
    }
    let tty = h.workload("c0", Path::new("/srv/bundle"), &with_tty);
    assert!(tty.subjects[0]
        .mounts
        .iter()
        .any(|m| m.target == "/dev/console" && !m.read_only));
    let path = watertight_floor::publish_in(dir.path(), &entry).unwrap();
    assert_eq!(path, dir.path().join("c1.json"));
    assert_eq!(
        watertight_floor::read_live(&path, Path::new("/proc")).as_ref(),
        Some(&entry)
    );

    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(watertight_floor::read_live(&path, Path::new("/proc")), None);
    // The next publish sweeps it.
    let mut other = Command::new("sleep").arg("30").spawn().unwrap();
    let second = h
        .running_container("c2", other.id(), Path::new("/srv/b2"), &spec, None)
        .unwrap();
    watertight_floor::publish_in(dir.path(), &second).unwrap();
    assert!(!path.exists());
    watertight_floor::unpublish_in(dir.path(), "c2").unwrap();
    watertight_floor::unpublish_in(dir.path(), "c2").unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    other.kill().unwrap();
    other.wait().unwrap();

    let e = h
        .running_container("c3", u32::MAX - 5, Path::new("/srv/b3"), &spec, None)
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("container c3: cannot read the start time of init pid"),
        "{e}"
    );
}
