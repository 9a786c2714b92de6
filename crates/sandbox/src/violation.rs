//! Violation-class syscalls reach the supervisor through seccomp user notification. Each one
//! becomes an event that names the syscall, its arguments (with the strings a path argument
//! points to, read from the task's memory) and the task; then the profile's `on_violation`
//! decides: deny (fail it with EPERM, the program goes on), kill, or forensic; in deny mode
//! `max_violations` ends the sandbox after that many.

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::BorrowedFd;

use serde_json::{json, Map, Value};

use crate::events::{EventKind, EventLog};
use crate::profile::OnViolation;

/// Which arguments of a syscall are C strings worth showing (index list).
fn string_args(name: &str) -> &'static [usize] {
    match name {
        "mount" => &[0, 1, 2],
        "umount" | "umount2" | "chroot" | "acct" | "swapon" | "swapoff" | "delete_module" => &[0],
        "pivot_root" => &[0, 1],
        "add_key" | "request_key" => &[0, 1],
        "fsopen" => &[0],
        "open_tree" | "fspick" => &[1],
        "move_mount" => &[1, 3],
        "finit_module" => &[1],
        _ => &[],
    }
}

/// Reads a NUL-terminated string (at most 256 bytes) at `addr` in `pid`'s memory, as lossless
/// text (`watertight_sys::text::lossless`: `\\` is a backslash, `\xNN` a byte that is not
/// UTF-8), so the exact bytes can be recovered from the event.
fn read_c_string(pid: u32, addr: u64) -> Option<String> {
    if addr == 0 {
        return None;
    }
    let mut f = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    f.seek(SeekFrom::Start(addr)).ok()?;
    let mut buf = [0u8; 256];
    let n = f.read(&mut buf).ok()?;
    let end = buf[..n].iter().position(|&b| b == 0).unwrap_or(n);
    Some(watertight_sys::text::lossless(&buf[..end]))
}

/// The task's pid inside the sandbox (last NSpid field).
fn sandbox_pid(host_pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{host_pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|r| r.split_whitespace().last()?.parse().ok())
}

fn comm(host_pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{host_pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
}

/// What the supervisor must do after a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The call failed with EPERM (or was withdrawn); the program goes on.
    Denied,
    /// Kill the sandbox (status SV).
    Kill,
    /// Freeze, capture evidence, then kill (status SV).
    Forensic,
    /// Deny mode, but this was violation number `max_violations`: kill the sandbox (status SV).
    TooMany,
}

/// What became of a listener that polled readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// A notification was read, recorded and answered (deny) or left blocked (kill, forensic,
    /// too many).
    Call(Decision),
    /// A notification was pending but gone before it could be read: its task was interrupted by
    /// a signal or died. A violation-class call was attempted all the same (only those notify),
    /// so it is recorded and counted and decided like one; it did not run (an interrupted call
    /// fails with EINTR or is restarted into a new notification), but which call it was is
    /// unknown.
    Withdrawn(Decision),
    /// Nothing to read (a spurious wake-up, or the receive was interrupted): poll again.
    Nothing,
    /// `--bpf-observe`: a BPF_PROG_LOAD that passed the vetting, served (loaded, or answered
    /// with the kernel's errno): no violation.
    Served,
}

/// Answers violations as the profile says: `on_violation`, and in deny mode at most
/// `max_violations` of them (0: no limit) before the sandbox is ended, so that a flood cannot
/// keep the supervisor (root, in no cgroup of the sandbox) busy for as long as it likes.
pub struct Responder {
    mode: OnViolation,
    max_violations: u64,
    /// Violations so far: notifications received or withdrawn.
    count: u64,
    /// `--bpf-observe`: serve BPF_PROG_LOAD with the vetted load (`bpf_load.rs`), whose loader
    /// joins these directories of the sandbox's cgroup.
    bpf_loads: Option<Vec<std::path::PathBuf>>,
}

impl Responder {
    /// A responder for `mode` that ends the run at `max_violations` under `deny` (0: never).
    pub fn new(mode: OnViolation, max_violations: u64) -> Responder {
        Responder {
            mode,
            max_violations,
            count: 0,
            bpf_loads: None,
        }
    }

    /// With `cgroup` (`--bpf-observe`: the directories of the sandbox's cgroup), a
    /// bpf(BPF_PROG_LOAD) notification is first served by the vetted load
    /// (`bpf_load::serve`); only a program the policy refuses is a violation.
    pub fn serving_bpf_loads(mut self, cgroup: Option<Vec<std::path::PathBuf>>) -> Responder {
        self.bpf_loads = cgroup;
        self
    }

    /// Counts one violation and decides what becomes of it.
    fn decide(&mut self) -> Decision {
        self.count += 1;
        match self.mode {
            OnViolation::Deny if self.max_violations != 0 && self.count >= self.max_violations => {
                Decision::TooMany
            }
            OnViolation::Deny => Decision::Denied,
            OnViolation::Kill => Decision::Kill,
            OnViolation::Forensic => Decision::Forensic,
        }
    }

    /// After the violation's own event: says once why the sandbox ends.
    fn record_limit(&self, decision: Decision, events: &mut EventLog) {
        if decision == Decision::TooMany && self.count == self.max_violations {
            events.emit(
                EventKind::ViolationLimit,
                json!({
                    "max_violations": self.max_violations,
                    "message": format!(
                        "{} violations (max_violations): the sandbox is killed",
                        self.count
                    ),
                }),
            );
        }
    }

    /// Receives one pending notification, records it, answers it (deny) or leaves the task
    /// blocked in the kernel (kill, forensic, too many: it never returns to user space; with
    /// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV only a fatal signal ends its wait).
    ///
    /// Repeats are recorded by count only (see `EventLog::record`): the task's memory and /proc
    /// files are read only for the events written in full, so a flood costs the supervisor a
    /// receive, a send and a counter per call.
    ///
    /// Whatever the receive returns, the caller keeps the listener open while the sandbox lives:
    /// closing it would detach it from the filter and let the program stack a listener of its
    /// own (the filter also refuses that, in the kernel: see `watertight_seccomp`'s
    /// `no_second_listener`).
    pub fn handle(&mut self, listener: BorrowedFd<'_>, events: &mut EventLog) -> Received {
        let notif = match watertight_sys::seccomp::notif_recv(listener) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let decision = self.decide();
                let mut key = Map::new();
                key.insert("syscall".into(), Value::Null);
                key.insert("withdrawn".into(), json!(true));
                key.insert("action".into(), json!(action_name(decision)));
                events.record(EventKind::SyscallDenied, key, || json!({}));
                self.record_limit(decision, events);
                return Received::Withdrawn(decision);
            }
            Err(_) => return Received::Nothing,
        };
        let nr = notif.data.nr;
        let mut refusal = None;
        let cgroup = self.bpf_loads.as_deref();
        if let Some(cgroup) = cgroup.filter(|_| {
            i64::from(nr) == libc::SYS_bpf
                && notif.data.args[0] & 0xffff_ffff == crate::bpf_load::BPF_PROG_LOAD
        }) {
            use crate::bpf_load::Served;
            match crate::bpf_load::serve(listener, notif.id, notif.pid, notif.data.args, cgroup) {
                Served::Loaded => return Received::Served,
                Served::Failed(errno) => {
                    let resp = libc::seccomp_notif_resp {
                        id: notif.id,
                        val: 0,
                        error: -errno,
                        flags: 0,
                    };
                    let _ = watertight_sys::seccomp::notif_send(listener, &resp);
                    return Received::Served;
                }
                Served::Refused(r) => refusal = Some(r),
            }
        }
        let decision = self.decide();
        let name = watertight_seccomp::syscall_name(nr).unwrap_or_else(|| format!("syscall_{nr}"));
        let mut key = Map::new();
        key.insert("action".into(), json!(action_name(decision)));
        let details = || {
            let args: Vec<Value> = notif
                .data
                .args
                .iter()
                .map(|a| json!(format!("{a:#x}")))
                .collect();
            let mut strings = Map::new();
            for &i in string_args(&name) {
                if let Some(s) = read_c_string(notif.pid, notif.data.args[i]) {
                    strings.insert(i.to_string(), json!(s));
                }
            }
            // The strings are only trustworthy if the task is still blocked in this very call.
            let still_pending =
                watertight_sys::seccomp::notif_id_valid(listener, notif.id).unwrap_or(false);
            let mut details = json!({
                "nr": nr,
                "args": args,
                "arg_strings": if still_pending { Value::Object(strings) } else { json!({}) },
                "host_pid": notif.pid,
                "pid": sandbox_pid(notif.pid),
                "comm": comm(notif.pid),
            });
            if let Some(r) = &refusal {
                details["bpf_load_refused"] = json!(r.reason);
            }
            details
        };
        key.insert("syscall".into(), Value::String(name.clone()));
        events.record(EventKind::SyscallDenied, key, details);
        self.record_limit(decision, events);
        if decision == Decision::Denied {
            let resp = libc::seccomp_notif_resp {
                id: notif.id,
                val: 0,
                error: -libc::EPERM,
                flags: 0,
            };
            // A failed send means the task is gone (killed or interrupted): nothing ran.
            let _ = watertight_sys::seccomp::notif_send(listener, &resp);
        }
        Received::Call(decision)
    }
}

fn action_name(decision: Decision) -> &'static str {
    match decision {
        Decision::Denied => "deny",
        Decision::Kill | Decision::TooMany => "kill",
        Decision::Forensic => "forensic",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_mode_ends_at_max_violations_and_says_so_once() {
        let mut events = EventLog::new("wt-1", None, 1 << 20).unwrap();
        let mut r = Responder::new(OnViolation::Deny, 3);
        let mut decisions = Vec::new();
        for _ in 0..5 {
            let d = r.decide();
            r.record_limit(d, &mut events);
            decisions.push(d);
        }
        use Decision::*;
        assert_eq!(decisions, [Denied, Denied, TooMany, TooMany, TooMany]);
        assert_eq!(events.summary().count(EventKind::ViolationLimit), 1);
        assert_eq!(action_name(TooMany), "kill", "the call is not answered");

        let mut unlimited = Responder::new(OnViolation::Deny, 0);
        assert!((0..10_000).all(|_| unlimited.decide() == Denied));
        let mut kill = Responder::new(OnViolation::Kill, 3);
        assert_eq!(kill.decide(), Kill);
        let mut forensic = Responder::new(OnViolation::Forensic, 1);
        assert_eq!(forensic.decide(), Forensic);
    }
}
