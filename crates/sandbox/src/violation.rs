//! Violation-class syscalls reach the supervisor through seccomp user notification. Each one
//! becomes an event that names the syscall, its arguments (with the strings a path argument
//! points to, read from the task's memory) and the task; then the profile's `on_violation`
//! decides: deny (fail it with EPERM, the program goes on), kill, or forensic.

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::BorrowedFd;

use serde_json::{json, Value};

use crate::events::EventLog;
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
    /// The call failed with EPERM; the program goes on.
    Denied,
    /// Kill the sandbox (status SV).
    Kill,
    /// Freeze, capture evidence, then kill (status SV).
    Forensic,
}

/// What became of a listener that polled readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// A notification was read, recorded and answered (deny) or left blocked (kill, forensic).
    Call(Decision),
    /// A notification was pending but gone before it could be read: its task was interrupted by
    /// a signal or died. A violation-class call was attempted all the same (only those notify);
    /// it did not run (an interrupted call fails with EINTR or is restarted into a new
    /// notification), but which call it was is unknown.
    Withdrawn,
    /// Nothing to read (a spurious wake-up, or the receive was interrupted): poll again.
    Nothing,
}

/// Receives one pending notification, records it, answers it (deny) or leaves the task blocked
/// in the kernel (kill, forensic: it never returns to user space; with
/// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV only a fatal signal ends its wait).
///
/// Whatever the receive returns, the caller keeps the listener open while the sandbox lives:
/// closing it would detach it from the filter and let the program stack a listener of its own
/// (the filter also refuses that, in the kernel: see `watertight_seccomp`'s `no_second_listener`).
pub fn handle(listener: BorrowedFd<'_>, mode: OnViolation, events: &mut EventLog) -> Received {
    let notif = match watertight_sys::seccomp::notif_recv(listener) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            events.emit(
                "syscall_denied",
                json!({
                    "syscall": null,
                    "withdrawn": true,
                    "action": action_name(mode),
                }),
            );
            return Received::Withdrawn;
        }
        Err(_) => return Received::Nothing,
    };
    let nr = notif.data.nr;
    let name = watertight_seccomp::syscall_name(nr).unwrap_or_else(|| format!("syscall_{nr}"));
    let args: Vec<Value> = notif
        .data
        .args
        .iter()
        .map(|a| json!(format!("{a:#x}")))
        .collect();
    let mut strings = serde_json::Map::new();
    for &i in string_args(&name) {
        if let Some(s) = read_c_string(notif.pid, notif.data.args[i]) {
            strings.insert(i.to_string(), json!(s));
        }
    }
    // The strings are only trustworthy if the task is still blocked in this very call.
    let still_pending =
        watertight_sys::seccomp::notif_id_valid(listener, notif.id).unwrap_or(false);
    let action = action_name(mode);
    events.emit(
        "syscall_denied",
        json!({
            "syscall": name,
            "nr": nr,
            "args": args,
            "arg_strings": if still_pending { Value::Object(strings) } else { json!({}) },
            "host_pid": notif.pid,
            "pid": sandbox_pid(notif.pid),
            "comm": comm(notif.pid),
            "action": action,
        }),
    );
    match mode {
        OnViolation::Deny => {
            let resp = libc::seccomp_notif_resp {
                id: notif.id,
                val: 0,
                error: -libc::EPERM,
                flags: 0,
            };
            // A failed send means the task is gone (killed or interrupted): nothing ran.
            let _ = watertight_sys::seccomp::notif_send(listener, &resp);
            Received::Call(Decision::Denied)
        }
        OnViolation::Kill => Received::Call(Decision::Kill),
        OnViolation::Forensic => Received::Call(Decision::Forensic),
    }
}

fn action_name(mode: OnViolation) -> &'static str {
    match mode {
        OnViolation::Deny => "deny",
        OnViolation::Kill => "kill",
        OnViolation::Forensic => "forensic",
    }
}
