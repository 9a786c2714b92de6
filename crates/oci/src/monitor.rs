//! The per-container violation monitor: when the floor's filter hands violation-class syscalls
//! to a user-notification listener (`on_violation = "kill"` or `"forensic"`), a small process
//! holds the listener: double-forked by `create`, its own session, stdio on /dev/null, every
//! other descriptor closed. Each notification is answered EPERM, appended as one JSON line to
//! `<state dir>/violations.jsonl` (and to the floor's audit trail). With kill the container's
//! cgroup is killed; with forensic it is frozen first, its evidence captured into a signed
//! bundle (every task's /proc state, its writable layers, the violations so far: crates/forensics,
//! as `watertight run --on-violation forensic`), then killed. The call is answered only after
//! that, so the program never sees its result. If the monitor dies the kernel answers every
//! notified call ENOSYS: still refused.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde_json::json;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::cgroup::ContainerCgroup;
use watertight_audit::sources::host::proc_files::parse_mountinfo;

/// What the monitor needs.
pub struct Monitor {
    /// The container id.
    pub id: String,
    /// The container init's pid (the monitor ends with it).
    pub init_pid: i32,
    /// `<root>/<id>/violations.jsonl`.
    pub log: PathBuf,
    /// The cgroup to kill.
    pub cgroup: ContainerCgroup,
    /// Kill the container on a violation.
    pub kill: bool,
    /// Freeze and capture evidence before the kill (`on_violation = "forensic"`).
    pub evidence: Option<watertight_floor::Evidence>,
    /// The floor's audit trail, if any.
    pub trail: Option<watertight_floor::AuditTrail>,
}

/// Starts the monitor holding `listener`; returns once the intermediate child is reaped (the
/// monitor itself is reparented to init or the caller's subreaper).
pub fn spawn(monitor: Monitor, listener: OwnedFd) -> std::io::Result<()> {
    match watertight_sys::process::fork()? {
        watertight_sys::process::Forked::Parent { pid, .. } => {
            let _ = watertight_sys::process::wait4(pid, false);
            Ok(())
        }
        watertight_sys::process::Forked::Child => {
            let _ = nix::unistd::setsid();
            match watertight_sys::process::fork() {
                Ok(watertight_sys::process::Forked::Child) => {
                    detach(&listener);
                    run(monitor, listener);
                    watertight_sys::process::exit_now(0)
                }
                _ => watertight_sys::process::exit_now(0),
            }
        }
    }
}

/// stdio on /dev/null, every descriptor but the listener closed.
fn detach(listener: &OwnedFd) {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
    let keep = listener.as_raw_fd();
    let open: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    for fd in open {
        if fd > 2 && fd != keep {
            // Descriptors this process inherited from `create` (its log, the state lock, the
            // caller's): none may be held by a helper that outlives the command.
            let _ = nix::unistd::close(fd);
        }
    }
}

fn run(monitor: Monitor, listener: OwnedFd) {
    let mut trail = monitor
        .trail
        .as_ref()
        .and_then(|t| t.open(&monitor.id).ok());
    loop {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(500u16)) {
            Ok(0) | Err(_) => {
                if !crate::init::alive(monitor.init_pid) {
                    return;
                }
                continue;
            }
            Ok(_) => {}
        }
        let revents = fds[0].revents().unwrap_or(PollFlags::empty());
        if revents.contains(PollFlags::POLLHUP) && !revents.contains(PollFlags::POLLIN) {
            // No task uses the filter any more.
            return;
        }
        let Ok(notif) = watertight_sys::seccomp::notif_recv(listener.as_fd()) else {
            continue;
        };
        let name = watertight_seccomp::syscall_name(notif.data.nr)
            .unwrap_or_else(|| format!("syscall {}", notif.data.nr));
        let action = match (&monitor.evidence, monitor.kill) {
            (Some(_), _) => "forensic",
            (None, true) => "kill",
            (None, false) => "deny",
        };
        let event = json!({
            "time": humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
            "container": monitor.id,
            "pid": notif.pid,
            "syscall": name,
            "action": action,
        });
        append(&monitor.log, &event);
        if let Some(t) = trail.as_mut() {
            let _ = t.record(&event);
        }
        if let Some(evidence) = &monitor.evidence {
            let outcome = match capture(&monitor, evidence, &event) {
                Ok(bundle) => json!({"container": monitor.id, "evidence": bundle}),
                Err(e) => json!({"container": monitor.id, "evidence_error": e}),
            };
            append(&monitor.log, &outcome);
            if let Some(t) = trail.as_mut() {
                let _ = t.record(&outcome);
            }
        }
        // With kill, the container dies while the caller still waits for this answer: the
        // refused call never returns to the program.
        if monitor.kill {
            kill_all(&monitor.cgroup);
        }
        let response = libc::seccomp_notif_resp {
            id: notif.id,
            val: 0,
            error: -libc::EPERM,
            flags: 0,
        };
        let _ = watertight_sys::seccomp::notif_send(listener.as_fd(), &response);
    }
}

/// One JSON line appended to `log`.
fn append(log: &Path, line: &serde_json::Value) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// SIGKILL to every task, then thaw: a v1 freezer holds signals of frozen tasks until they
/// thaw, and they die on their way back to user space, before another instruction of theirs.
fn kill_all(cgroup: &ContainerCgroup) {
    let _ = cgroup.signal_all(nix::sys::signal::Signal::SIGKILL);
    if cgroup.is_frozen() {
        let _ = cgroup.freeze(false);
    }
}

/// The forensic response up to the kill: freeze the container, capture its evidence into a
/// signed bundle, return the bundle's path (or why there is none; the kill follows either way).
fn capture(
    monitor: &Monitor,
    evidence: &watertight_floor::Evidence,
    event: &serde_json::Value,
) -> Result<PathBuf, String> {
    monitor
        .cgroup
        .freeze(true)
        .map_err(|e| format!("freeze the container: {e}"))?;
    let pids = monitor
        .cgroup
        .pids()
        .map_err(|e| format!("list the container's tasks: {e}"))?;
    let (writable_dirs, unavailable_layers) = writable_layers(monitor.init_pid);
    let key = watertight_forensics::load_or_create_host_key(&evidence.key)
        .map_err(|e| format!("evidence key {}: {e}", evidence.key.display()))?;
    let events = std::fs::read(&monitor.log).unwrap_or_default();
    let verdict = serde_json::to_vec_pretty(&json!({
        "status": "SV",
        "container": monitor.id,
        "message": "security violation: evidence captured before the kill",
        "violation": event,
    }))
    .unwrap_or_default();
    let request = watertight_forensics::CaptureRequest {
        sandbox_id: &monitor.id,
        pids: &pids,
        writable_dirs,
        events_jsonl: &events,
        verdict_json: &verdict,
        evidence_dir: &evidence.dir,
        key: &key,
        evidence_limit: evidence.max_bytes,
        unavailable_layers,
    };
    // The forensics error names the directory the evidence could not go to.
    watertight_forensics::capture(&request).map_err(|e| e.to_string())
}

/// A layer to capture: its name in the bundle and the host path that reaches it.
type Layer = (String, PathBuf);
/// A layer that cannot be captured: its name and why.
type Unavailable = (String, String);

/// The container's writable layers, as the host reaches them, from its init's mount table:
/// the root (an overlay's upper directory, which holds exactly what the container changed; a
/// writable root of another kind through /proc/<init>/root) and every writable tmpfs but /dev's
/// (its device nodes are the runtime's, not the container's). A mount table that cannot be read
/// is listed with the reason.
fn writable_layers(init_pid: i32) -> (Vec<Layer>, Vec<Unavailable>) {
    let root = PathBuf::from(format!("/proc/{init_pid}/root"));
    let mountinfo = match std::fs::read_to_string(format!("/proc/{init_pid}/mountinfo")) {
        Ok(text) => text,
        Err(e) => {
            return (
                Vec::new(),
                vec![("root".into(), format!("cannot read the mount table: {e}"))],
            )
        }
    };
    let mut layers = Vec::new();
    for m in parse_mountinfo(&mountinfo) {
        if m.read_only {
            continue;
        }
        if m.mount_point == "/" {
            let upper = (m.fs_type == "overlay")
                .then(|| {
                    m.super_options
                        .split(',')
                        .find_map(|o| o.strip_prefix("upperdir="))
                })
                .flatten();
            layers.push((
                "root".to_string(),
                upper.map_or_else(|| root.clone(), PathBuf::from),
            ));
        } else if m.fs_type == "tmpfs" && m.mount_point != "/dev" {
            let name: String = m
                .mount_point
                .trim_start_matches('/')
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            layers.push((
                format!("tmpfs_{name}"),
                root.join(m.mount_point.trim_start_matches('/')),
            ));
        }
    }
    (layers, Vec::new())
}
