//! Who owns a watertight cgroup: the supervisor's pid and its start time are encoded in the
//! directory name (`<name>@<pid>-<starttime>`), so a leftover of a killed supervisor is found
//! with one readdir and one /proc read per owner, and a recycled pid is not mistaken for the
//! original owner.

use std::sync::Mutex;

/// Separates the caller's name from the owner tag in a directory name. Not allowed in names.
pub const OWNER_SEPARATOR: char = '@';

/// The owner of a cgroup: a process identified by pid and start time (clock ticks after boot,
/// field 22 of `/proc/<pid>/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// The process id.
    pub pid: u32,
    /// Field 22 of ``/proc/<pid>/stat``; tells the owner apart from a later process reusing the
    /// pid.
    pub start_time: u64,
}

impl Owner {
    /// The calling process, read once per process (re-read after a fork changes the pid).
    pub fn current() -> Result<Owner, std::io::Error> {
        static CACHE: Mutex<Option<Owner>> = Mutex::new(None);
        let pid = std::process::id();
        let mut cached = CACHE
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(owner) = *cached {
            if owner.pid == pid {
                return Ok(owner);
            }
        }
        let owner = Owner::of_pid(pid)?.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "/proc/self/stat has no start time",
            )
        })?;
        *cached = Some(owner);
        Ok(owner)
    }

    /// The process now running as `pid`, or `None` when there is none.
    /// A zombie (or dying) process is none: it will never clean up after itself, and its pid
    /// can linger for as long as its parent does not reap it.
    pub fn of_pid(pid: u32) -> Result<Option<Owner>, std::io::Error> {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) if is_exiting(&stat) => Ok(None),
            Ok(stat) => Ok(parse_start_time(&stat).map(|start_time| Owner { pid, start_time })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// True while the same process (same pid and start time) is running.
    pub fn is_alive(&self) -> bool {
        match Owner::of_pid(self.pid) {
            Ok(Some(now)) => now.start_time == self.start_time,
            Ok(None) => false,
            // Cannot tell (e.g. /proc hidepid): assume alive rather than kill someone's sandbox.
            Err(_) => true,
        }
    }

    /// The tag appended to directory names.
    pub fn tag(&self) -> String {
        format!("{}-{}", self.pid, self.start_time)
    }
}

/// Whether the state field (3) of `/proc/<pid>/stat` says zombie or dead.
pub fn is_exiting(stat: &str) -> bool {
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| matches!(state, "Z" | "X" | "x"))
}

/// Field 22 (starttime) of `/proc/<pid>/stat`. The command name (field 2) may contain spaces and
/// parentheses, so fields are counted after the last ')'.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    let (_, after_comm) = stat.rsplit_once(')')?;
    // After ')' come fields 3 (state) onwards; starttime is field 22.
    after_comm.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Splits a directory name `<name>@<pid>-<starttime>` into the caller's name and the owner.
/// `None` for names watertight did not create.
pub fn parse_dir_name(dir_name: &str) -> Option<(&str, Owner)> {
    let (name, tag) = dir_name.rsplit_once(OWNER_SEPARATOR)?;
    let (pid, start_time) = tag.split_once('-')?;
    if name.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((
        name,
        Owner {
            pid: pid.parse().ok().filter(|pid| *pid > 0)?,
            start_time: start_time.parse().ok()?,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_survives_odd_command_names() {
        let stat = "4242 (evil) name) (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time("1 (init) S 0"), None);
        assert_eq!(parse_start_time("no paren"), None);
    }

    #[test]
    fn current_owner_is_alive_and_round_trips() {
        let me = Owner::current().unwrap();
        assert_eq!(me.pid, std::process::id());
        assert!(me.is_alive());
        let name = format!("job{OWNER_SEPARATOR}{}", me.tag());
        assert_eq!(parse_dir_name(&name), Some(("job", me)));
        let recycled = Owner {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(
            !recycled.is_alive(),
            "same pid, other start time is another process"
        );
    }

    #[test]
    fn foreign_names_are_ignored() {
        for name in [
            "plain", "x@", "x@12", "x@a-1", "@1-2", "x@0-5", "x@1-", "x@-1-2",
        ] {
            assert_eq!(parse_dir_name(name), None, "{name}");
        }
    }
}

#[cfg(test)]
mod exiting_tests {
    use super::is_exiting;

    #[test]
    fn zombies_are_exiting() {
        assert!(is_exiting("330 (watertight) Z 1 330 330 0 -1"));
        assert!(is_exiting("7 (a) b) X 1"));
        assert!(!is_exiting("330 (watertight) S 1 330 330 0 -1"));
        assert!(!is_exiting("garbage"));
    }
}
