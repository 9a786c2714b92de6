//! Freezing, thawing and killing a sandbox's processes: v1 `freezer.state`, cgroup2
//! `cgroup.freeze` / `cgroup.events` / `cgroup.kill`, and the signal loop for hosts without
//! `cgroup.kill`.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cgroup::{read_procs, write_file, Cgroup, Role};
use crate::fs::{is_missing, CgroupFs};
use crate::stats::flat_keyed_value;
use crate::Error;

/// How long freeze/thaw/kill wait for the kernel before giving up.
const WAIT_LIMIT: Duration = Duration::from_secs(10);
const FIRST_DELAY: Duration = Duration::from_micros(50);
const MAX_DELAY: Duration = Duration::from_millis(10);

/// v1 freezer states as read from freezer.state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezerState {
    /// Tasks run normally.
    Thawed,
    /// A freeze was requested and some tasks are not stopped yet; re-reading the file advances
    /// it, and a task forked mid-walk can keep it here.
    Freezing,
    /// Every task in the cgroup is stopped.
    Frozen,
}

/// Parses v1 `freezer.state`.
pub fn parse_freezer_state(text: &str) -> Result<FreezerState, String> {
    match text.trim() {
        "THAWED" => Ok(FreezerState::Thawed),
        "FREEZING" => Ok(FreezerState::Freezing),
        "FROZEN" => Ok(FreezerState::Frozen),
        other => Err(format!("unknown freezer state {other:?}")),
    }
}

impl Cgroup {
    fn freezer_role(&self) -> Result<&Role, Error> {
        self.freezer.as_ref().ok_or(Error::ControllerMissing {
            controller: "freezer",
            mode: self.mode,
            fix: "mount the v1 freezer hierarchy or cgroup2 (kernel 5.2+ for cgroup.freeze)",
        })
    }

    /// Freezes every process and returns once the kernel reports the cgroup frozen. On timeout
    /// the cgroup is thawed again so it is never left half-frozen.
    pub fn freeze(&self) -> Result<(), Error> {
        let role = self.freezer_role()?;
        let fs = self.fs.as_ref();
        let result = if role.v2 {
            write_file(fs, &role.dir.join("cgroup.freeze"), "1").and_then(|()| {
                wait_for_event(fs, &role.dir.join("cgroup.events"), "frozen", 1, "freeze")
            })
        } else {
            let state = role.dir.join("freezer.state");
            freeze_v1(fs, &state)
        };
        if result.is_err() {
            let _ = self.thaw();
        }
        result
    }

    /// Lets every process run again; returns once the kernel reports the cgroup thawed.
    pub fn thaw(&self) -> Result<(), Error> {
        let role = self.freezer_role()?;
        let fs = self.fs.as_ref();
        if role.v2 {
            write_file(fs, &role.dir.join("cgroup.freeze"), "0")?;
            wait_for_event(fs, &role.dir.join("cgroup.events"), "frozen", 0, "thaw")
        } else {
            let state = role.dir.join("freezer.state");
            write_file(fs, &state, "THAWED")?;
            wait_for_v1_state(fs, &state, FreezerState::Thawed)
        }
    }

    /// Whether the kernel reports the cgroup frozen now.
    pub fn is_frozen(&self) -> Result<bool, Error> {
        let role = self.freezer_role()?;
        if role.v2 {
            let events = role.dir.join("cgroup.events");
            let text = self.fs.read(&events).map_err(|e| Error::read(&events, e))?;
            Ok(flat_keyed_value(&text, "frozen").map_err(|r| Error::parse(&events, r))? == Some(1))
        } else {
            Ok(
                read_v1_state(self.fs.as_ref(), &role.dir.join("freezer.state"))?
                    == FreezerState::Frozen,
            )
        }
    }

    /// Kills every process and returns once the cgroup is empty (also when it was frozen).
    /// Uses cgroup2 `cgroup.kill` where the kernel has it (atomic against forks, acts on
    /// frozen tasks); otherwise SIGKILLs every listed pid, thaws a v1 freezer (frozen tasks act
    /// on SIGKILL only after thaw) and repeats until nothing is left.
    pub fn kill_all(&self) -> Result<(), Error> {
        let fs = self.fs.as_ref();
        let kill_file = self.unified.as_ref().map(|dir| dir.join("cgroup.kill"));
        let mut have_cgroup_kill = kill_file.is_some();
        let v1_freezer = self.freezer.as_ref().filter(|role| !role.v2);
        let deadline = Instant::now() + WAIT_LIMIT;
        let mut delay = FIRST_DELAY;
        loop {
            // Processes in the unified directory are reached by cgroup.kill; signal by pid
            // only what it cannot reach (a pid can be recycled between read and kill).
            let reached_by_cgroup_kill = match (&self.unified, have_cgroup_kill) {
                (Some(dir), true) => read_procs(fs, dir)?,
                _ => Vec::new(),
            };
            let mut signal_list = Vec::new();
            for dir in &self.dirs {
                if have_cgroup_kill && Some(dir) == self.unified.as_ref() {
                    continue;
                }
                signal_list.extend(
                    read_procs(fs, dir)?
                        .into_iter()
                        .filter(|pid| !reached_by_cgroup_kill.contains(pid)),
                );
            }
            if reached_by_cgroup_kill.is_empty() && signal_list.is_empty() {
                return Ok(());
            }
            if let (true, false, Some(path)) = (
                have_cgroup_kill,
                reached_by_cgroup_kill.is_empty(),
                &kill_file,
            ) {
                match write_file(fs, path, "1") {
                    Ok(()) => {}
                    Err(Error::Write { source, .. }) if is_missing(&source) => {
                        // Kernel before 5.14: fall back to signals from the next round on.
                        have_cgroup_kill = false;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            signal_list.sort_unstable();
            signal_list.dedup();
            for pid in signal_list {
                kill_member(pid, &self.dir_name).map_err(|source| Error::Signal {
                    pid,
                    path: self.dirs[0].clone(),
                    source,
                })?;
            }
            if let Some(role) = v1_freezer {
                let state = role.dir.join("freezer.state");
                if read_v1_state(fs, &state)? != FreezerState::Thawed {
                    write_file(fs, &state, "THAWED")?;
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    path: self.dirs[0].clone(),
                    what: "become empty after SIGKILL",
                    waited_ms: WAIT_LIMIT.as_millis() as u64,
                });
            }
            std::thread::sleep(delay);
            delay = (delay * 2).clamp(FIRST_DELAY, MAX_DELAY);
        }
    }
}

/// SIGKILLs `pid` only if it is still a member of the cgroup named `dir_name`: the pid is pinned
/// with a pidfd first and membership checked afterwards, so a pid recycled since cgroup.procs
/// was read is never hit. Falls back to kill(2) on kernels without pidfd (< 5.3).
fn kill_member(pid: i32, dir_name: &str) -> Result<(), nix::Error> {
    let Some(target) = rustix::process::Pid::from_raw(pid) else {
        return Ok(());
    };
    let pidfd = match rustix::process::pidfd_open(target, rustix::process::PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(()),
        Err(rustix::io::Errno::NOSYS) => {
            return match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
                Err(e) => Err(e),
            };
        }
        Err(e) => return Err(nix::Error::from_raw(e.raw_os_error())),
    };
    // /proc/<pid>/cgroup lists one "id:controllers:/path" line per hierarchy.
    let member = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map(|text| text.lines().any(|line| is_member_line(line, dir_name)))
        .unwrap_or(false);
    if !member {
        return Ok(());
    }
    match rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(nix::Error::from_raw(e.raw_os_error())),
    }
}

/// True when a /proc/<pid>/cgroup line places the task in `.../<dir_name>` (the cgroup itself,
/// not a child of it).
fn is_member_line(line: &str, dir_name: &str) -> bool {
    line.splitn(3, ':')
        .nth(2)
        .and_then(|path| path.strip_suffix(dir_name))
        .is_some_and(|prefix| prefix.ends_with('/'))
}

fn read_v1_state(fs: &dyn CgroupFs, path: &Path) -> Result<FreezerState, Error> {
    let text = fs.read(path).map_err(|e| Error::read(path, e))?;
    parse_freezer_state(&text).map_err(|reason| Error::parse(path, reason))
}

/// Freezes a v1 cgroup. The v1 freezer can miss a task forked while it walks the cgroup and
/// then stays FREEZING (cgroup v2 does not have this bug; runc works around it the same way):
/// each FROZEN write walks the tasks again and catches late forks, and every 50 attempts a
/// short thaw lets a task stuck mid-fork finish. Measured here: a shell forking `mv` in a tight
/// loop stayed FREEZING for over 10 s about once in 40 runs with a single write.
fn freeze_v1(fs: &dyn CgroupFs, path: &Path) -> Result<(), Error> {
    let deadline = Instant::now() + WAIT_LIMIT;
    let mut delay = FIRST_DELAY;
    for attempt in 1u32.. {
        write_file(fs, path, "FROZEN")?;
        if read_v1_state(fs, path)? == FreezerState::Frozen {
            return Ok(());
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(1));
        if attempt % 50 == 0 {
            write_file(fs, path, "THAWED")?;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Err(Error::Timeout {
        path: path.to_owned(),
        what: "reach FROZEN",
        waited_ms: WAIT_LIMIT.as_millis() as u64,
    })
}

/// Polls v1 freezer.state (reading it is what advances FREEZING to FROZEN) until `want`.
fn wait_for_v1_state(fs: &dyn CgroupFs, path: &Path, want: FreezerState) -> Result<(), Error> {
    let deadline = Instant::now() + WAIT_LIMIT;
    let mut delay = FIRST_DELAY;
    loop {
        if read_v1_state(fs, path)? == want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                path: path.to_owned(),
                what: if want == FreezerState::Frozen {
                    "reach FROZEN"
                } else {
                    "reach THAWED"
                },
                waited_ms: WAIT_LIMIT.as_millis() as u64,
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// Waits until the flat-keyed `cgroup.events` shows `key want` (the filesystem sleeps on the
/// kernel's change notification between reads).
fn wait_for_event(
    fs: &dyn CgroupFs,
    path: &Path,
    key: &str,
    want: u64,
    what: &'static str,
) -> Result<(), Error> {
    let reached = fs.wait_until(path, WAIT_LIMIT, &mut |text| {
        Ok(flat_keyed_value(text, key).map_err(|r| Error::parse(path, r))? == Some(want))
    })?;
    match reached {
        true => Ok(()),
        false => Err(Error::Timeout {
            path: path.to_owned(),
            what,
            waited_ms: WAIT_LIMIT.as_millis() as u64,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_lines() {
        let name = "watertight-job@1-2";
        assert!(is_member_line("7:memory:/watertight-job@1-2", name));
        assert!(is_member_line("0::/docker/x/watertight-job@1-2", name));
        assert!(!is_member_line("7:memory:/watertight-xjob@1-2", name));
        assert!(!is_member_line("7:memory:/other/job@1-2", name));
        assert!(!is_member_line("7:memory:/xwatertight-job@1-2", name));
        assert!(!is_member_line("7:memory:/watertight-job@1-2/sub", name));
        assert!(!is_member_line("garbage", name));
    }

    #[test]
    fn freezer_states_parse() {
        assert_eq!(parse_freezer_state("FROZEN\n"), Ok(FreezerState::Frozen));
        assert_eq!(parse_freezer_state("THAWED"), Ok(FreezerState::Thawed));
        assert_eq!(
            parse_freezer_state("FREEZING\n"),
            Ok(FreezerState::Freezing)
        );
        assert!(parse_freezer_state("frozen").is_err());
    }
}
