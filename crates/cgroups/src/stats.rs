//! Accounting read back for the verdict, and the parsers for the cgroup files it comes from.
//! Every parser takes text and returns Ok/Err; none panics on any input (see tests/fuzz.rs).

use std::path::Path;

use serde::Serialize;

use crate::fs::{is_missing, CgroupFs};
use crate::Error;

/// A sandbox's resource accounting. `None` means the host does not provide that number (its
/// controller is not mounted, or the kernel is too old for the file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Highest memory use seen (v1 memory.max_usage_in_bytes, v2 memory.peak).
    pub memory_peak_bytes: Option<u64>,
    /// Memory in use now (v1 memory.usage_in_bytes, v2 memory.current).
    pub memory_current_bytes: Option<u64>,
    /// Processes the OOM killer killed (v1 memory.oom_control oom_kill, v2 memory.events
    /// oom_kill).
    pub oom_kills: Option<u64>,
    /// Times usage hit the limit (v1 memory.failcnt + memory.memsw.failcnt, v2 memory.events
    /// max).
    pub memory_limit_hits: Option<u64>,
    /// Tasks now (pids.current).
    pub pids_current: Option<u64>,
    /// Forks refused by pids.max (pids.events max).
    pub pids_limit_hits: Option<u64>,
    /// CPU time consumed (v2 cpu.stat usage_usec, v1 cpuacct.usage), in nanoseconds.
    pub cpu_usage_ns: Option<u64>,
}

/// Parses a single-number file such as `memory.peak` or `pids.current`. `max` gives `None`.
pub fn parse_u64_or_max(text: &str) -> Result<Option<u64>, String> {
    let value = text.trim();
    if value == "max" {
        return Ok(None);
    }
    value
        .parse::<u64>()
        .map(Some)
        .map_err(|_| format!("{value:?} is not a number or \"max\""))
}

/// Looks `key` up in a flat-keyed file (`key value` per line: memory.events, pids.events,
/// cpu.stat, memory.oom_control, cgroup.events). `Ok(None)` when the key is absent.
pub fn flat_keyed_value(text: &str, key: &str) -> Result<Option<u64>, String> {
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(format!("line {line:?} is not \"key value\""));
        };
        if name == key {
            return value
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("value of {key} is {value:?}, not a number"));
        }
    }
    Ok(None)
}

/// Parses `cgroup.procs`: one pid per line.
pub fn parse_pids(text: &str) -> Result<Vec<i32>, String> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            line.trim()
                .parse::<i32>()
                .ok()
                .filter(|pid| *pid > 0)
                .ok_or_else(|| format!("{line:?} is not a pid"))
        })
        .collect()
}

/// Reads a file that may legitimately be missing (returns `Ok(None)` then).
pub(crate) fn read_optional(fs: &dyn CgroupFs, path: &Path) -> Result<Option<String>, Error> {
    match fs.read(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(Error::read(path, e)),
    }
}

/// A single-number file, `None` when absent.
pub(crate) fn read_number(fs: &dyn CgroupFs, path: &Path) -> Result<Option<u64>, Error> {
    match read_optional(fs, path)? {
        Some(text) => parse_u64_or_max(&text).map_err(|reason| Error::parse(path, reason)),
        None => Ok(None),
    }
}

/// One key of a flat-keyed file, `None` when the file or the key is absent.
pub(crate) fn read_keyed(fs: &dyn CgroupFs, path: &Path, key: &str) -> Result<Option<u64>, Error> {
    match read_optional(fs, path)? {
        Some(text) => flat_keyed_value(&text, key).map_err(|reason| Error::parse(path, reason)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_numbers() {
        assert_eq!(parse_u64_or_max("123\n"), Ok(Some(123)));
        assert_eq!(parse_u64_or_max("max\n"), Ok(None));
        assert!(parse_u64_or_max("-1").is_err());
        assert!(parse_u64_or_max("").is_err());
    }

    #[test]
    fn flat_keyed_files() {
        let events = "low 0\nhigh 0\nmax 17\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(flat_keyed_value(events, "oom_kill"), Ok(Some(1)));
        assert_eq!(flat_keyed_value(events, "max"), Ok(Some(17)));
        assert_eq!(flat_keyed_value(events, "absent"), Ok(None));
        let oom_control = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(flat_keyed_value(oom_control, "oom_kill"), Ok(Some(3)));
        assert!(flat_keyed_value("lonely\n", "x").is_err());
        assert!(flat_keyed_value("max many\n", "max").is_err());
    }

    #[test]
    fn pid_lists() {
        assert_eq!(parse_pids("1\n22\n\n"), Ok(vec![1, 22]));
        assert!(parse_pids("0\n").is_err());
        assert!(parse_pids("x\n").is_err());
    }
}
