//! The per-container violation monitor: when the floor's filter hands violation-class syscalls
//! to a user-notification listener (`on_violation = "kill"` or `"forensic"`), a small process
//! holds the listener: double-forked by `create`, its own session, stdio on /dev/null, every
//! other descriptor closed. Each notification is answered EPERM, appended as one JSON line to
//! `<state dir>/violations.jsonl` (and to the floor's audit trail), and with kill (forensic:
//! the same; evidence capture is not done here yet) the container's cgroup is killed. If the
//! monitor dies the kernel answers every notified call ENOSYS: still refused.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde_json::json;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use crate::cgroup::ContainerCgroup;

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
        let action = if monitor.kill { "kill" } else { "deny" };
        let event = json!({
            "time": humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
            "container": monitor.id,
            "pid": notif.pid,
            "syscall": name,
            "action": action,
        });
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&monitor.log)
        {
            let _ = writeln!(f, "{event}");
        }
        if let Some(t) = trail.as_mut() {
            let _ = t.record(&event);
        }
        // With kill, the container dies while the caller still waits for this answer: the
        // refused call never returns to the program.
        if monitor.kill {
            let _ = monitor.cgroup.signal_all(nix::sys::signal::Signal::SIGKILL);
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
