//! What runsc's own logs (`--debug-log=DIR/`, without `--debug`: info level only) say about a
//! run: the program's raw wait status (`runsc run` logs "Exiting with status: N", N as
//! wait(2) returns it, which its exit code cannot tell apart: a program killed by SIGSEGV and one
//! that exits 139 both make runsc exit 139), runsc's own fatal error, and the Sentry's reports
//! of system calls it does not implement ("Unsupported syscall NAME(args)"), which become
//! `syscall_denied` events. Only the first [`READ_LIMIT`] bytes of each file are read, and the
//! files live on the run's size-limited work tmpfs.

use std::path::Path;

/// Bytes read of each log file at most.
pub const READ_LIMIT: u64 = 4 << 20;

/// What the logs of one run say.
#[derive(Debug, Default, PartialEq)]
pub struct RunLog {
    /// The program's raw wait status, when the sandbox ran it to the end.
    pub wait_status: Option<i32>,
    /// runsc's fatal error, when it failed.
    pub fatal: Option<String>,
    /// Unimplemented system calls in order of report: (name, the logged call with arguments).
    pub unsupported: Vec<(String, String)>,
}

/// Reads every log file in `dir` (`*.run.txt`, `*.boot.txt`, ...).
pub fn read_dir(dir: &Path) -> RunLog {
    let mut log = RunLog::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return log;
    };
    let mut names: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    for f in names {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let Ok(file) = std::fs::File::open(&f) else {
            continue;
        };
        let mut text = Vec::new();
        use std::io::Read;
        let _ = file.take(READ_LIMIT).read_to_end(&mut text);
        let text = String::from_utf8_lossy(&text);
        parse(&text, name.ends_with(".run.txt"), &mut log);
    }
    log
}

/// Adds what `text` (one log file; `run`: the `runsc run` command's own) says to `log`.
pub fn parse(text: &str, run: bool, log: &mut RunLog) {
    for line in text.lines() {
        // Each line is "<level><date> <time> <tid> <file:line>] <message>".
        let msg = line.split_once("] ").map_or(line, |(_, m)| m);
        if run {
            if let Some(n) = msg.strip_prefix("Exiting with status: ") {
                log.wait_status = n.trim().parse().ok();
            }
            if let Some(m) = msg.strip_prefix("FATAL ERROR: ") {
                log.fatal.get_or_insert_with(|| m.trim().to_string());
            }
        }
        if let Some(call) = msg.strip_prefix("Unsupported syscall ") {
            let call = call.split(". ").next().unwrap_or(call).trim();
            let name = call.split('(').next().unwrap_or(call).to_string();
            if !name.is_empty() && log.unsupported.len() < 4096 {
                log.unsupported
                    .push((name, call.chars().take(200).collect()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_status_the_fatal_error_and_unsupported_calls_are_read() {
        let mut log = RunLog::default();
        parse(
            "I1204 03:35:56.536972    7305 main.go:266] Exiting with status: 768\n",
            true,
            &mut log,
        );
        parse(
            "I1204 03:32:56.611096   28692 compat.go:123] Unsupported syscall rseq(0x7f33,0x20,0x0). It is likely that you can safely ignore this message.\n\
             I1204 03:32:56.876440   28692 main.go:266] Exiting with status: 11\n",
            false,
            &mut log,
        );
        assert_eq!(
            log.wait_status,
            Some(768),
            "only the run command's line counts"
        );
        assert_eq!(
            log.unsupported,
            [("rseq".to_string(), "rseq(0x7f33,0x20,0x0)".to_string())]
        );
        parse(
            "W1204 03:35:56.990394    7412 util.go:64] FATAL ERROR: running container: failed to load /nonexistent: no such file or directory\n",
            true,
            &mut log,
        );
        assert!(log.fatal.unwrap().ends_with("no such file or directory"));
    }
}
