//! The results file: JSON Lines, one job per line, appended with one write() each to a file
//! opened O_APPEND and fsync'ed after each line. On start, a torn tail (bytes after the last
//! newline, left by a batch killed mid-write) is cut off and the ids already present are skipped.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use super::runner::JobResult;

/// The complete lines of `text` (up to its last newline) and the length to keep.
pub fn complete_part(text: &[u8]) -> usize {
    text.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1)
}

/// Parses result lines; an invalid complete line is an error naming `name:line`.
pub fn parse_lines(text: &[u8], name: &str) -> Result<Vec<JobResult>, String> {
    let mut out = Vec::new();
    for (n, line) in text.split(|&c| c == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let r: JobResult = serde_json::from_slice(line)
            .map_err(|e| format!("{name}:{}: not a batch result line: {e}", n + 1))?;
        out.push(r);
    }
    Ok(out)
}

/// The results file opened for appending and locked (`flock`, exclusive: one batch per results
/// file), its torn tail cut off, with the ids it already holds.
pub fn open(path: &Path) -> anyhow::Result<(Flock<File>, HashSet<String>)> {
    use anyhow::Context;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("--results {}: cannot open for appending", path.display()))?;
    // Locked before it is read or cut: a second batch on the same file would run the same jobs.
    let mut file = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        anyhow::anyhow!(
            "--results {}: another batch is appending to it ({e})",
            path.display()
        )
    })?;
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut *file, &mut text)
        .with_context(|| format!("--results {}: cannot read", path.display()))?;
    let keep = complete_part(&text);
    if keep < text.len() {
        eprintln!(
            "watertight: {}: removing a torn last line ({} bytes without a newline) left by an interrupted batch",
            path.display(),
            text.len() - keep
        );
        file.set_len(keep as u64).with_context(|| {
            format!(
                "--results {}: cannot cut its torn last line",
                path.display()
            )
        })?;
    }
    let done = parse_lines(&text[..keep], &path.display().to_string())
        .map_err(|e| anyhow::anyhow!("{e} (not a results file of `watertight batch`?)"))?
        .into_iter()
        .map(|r| r.id)
        .collect();
    Ok((file, done))
}

/// Appends one result line with one write() (O_APPEND: whole or absent); [`Syncer`] makes it
/// durable.
pub fn append(mut file: &File, r: &JobResult) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let n = file.write(&line)?;
    if n != line.len() {
        return Err(std::io::Error::other(format!(
            "short write ({n} of {} bytes)",
            line.len()
        )));
    }
    Ok(())
}

/// Makes appended lines durable off the jobs' path: one thread `fdatasync`s the results file
/// whenever lines were appended since its last sync, so a job does not wait for the disk
/// (about 0.4 ms a job here) and syncs coalesce when jobs finish faster than the disk. A
/// line lost to a power cut in that window is a job the restarted batch runs again; a killed
/// batch loses nothing (its writes are in the page cache).
pub struct Syncer<'a> {
    file: &'a File,
    state: std::sync::Mutex<SyncState>,
    wake: std::sync::Condvar,
}

#[derive(Default)]
struct SyncState {
    dirty: bool,
    done: bool,
    error: Option<std::io::Error>,
}

impl<'a> Syncer<'a> {
    /// A syncer of `file`; start [`Syncer::run`] on a thread of its own.
    pub fn new(file: &'a File) -> Syncer<'a> {
        Syncer {
            file,
            state: Default::default(),
            wake: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A line was appended.
    pub fn appended(&self) {
        self.lock().dirty = true;
        self.wake.notify_one();
    }

    /// The first sync that failed, if one did (the batch then stops).
    pub fn failed(&self) -> bool {
        self.lock().error.is_some()
    }

    /// The thread: syncs after appends until [`Syncer::finish`].
    pub fn run(&self) {
        let mut state = self.lock();
        loop {
            while !state.dirty && !state.done {
                state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            if !state.dirty {
                return; // done, and nothing left to sync
            }
            state.dirty = false;
            drop(state);
            let synced = self.file.sync_data();
            state = self.lock();
            if let Err(e) = synced {
                state.error.get_or_insert(e);
            }
        }
    }

    /// No more appends: the thread syncs what is left and ends; then every line is durable,
    /// or the first failed sync is returned.
    pub fn finish(&self) -> std::io::Result<()> {
        self.lock().done = true;
        self.wake.notify_one();
        let synced = self.file.sync_data();
        match self.lock().error.take() {
            Some(e) => Err(e),
            None => synced,
        }
    }
}

/// `batch merge`: results sorted by id, the first of each id kept; returns the lines and
/// the warnings for duplicates.
pub fn merge(parts: &[(String, Vec<u8>)]) -> Result<(Vec<u8>, Vec<String>), String> {
    let mut by_id: BTreeMap<String, JobResult> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (name, text) in parts {
        let keep = complete_part(text);
        if keep < text.len() {
            warnings.push(format!(
                "{name}: ignoring a torn last line ({} bytes without a newline)",
                text.len() - keep
            ));
        }
        for r in parse_lines(&text[..keep], name)? {
            if by_id.contains_key(&r.id) {
                warnings.push(format!(
                    "{name}: id {:?} appears again; keeping the first",
                    r.id
                ));
            } else {
                by_id.insert(r.id.clone(), r);
            }
        }
    }
    let mut out = Vec::new();
    for r in by_id.values() {
        serde_json::to_writer(&mut out, r).map_err(|e| e.to_string())?;
        out.push(b'\n');
    }
    Ok((out, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, v: &str) -> String {
        format!("{{\"id\":\"{id}\",\"verdict\":\"{v}\",\"steps\":[]}}\n")
    }

    #[test]
    fn a_torn_tail_is_cut_and_complete_lines_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        std::fs::write(
            &p,
            format!("{}{}{{\"id\":\"c\",\"ver", line("a", "AC"), line("b", "WA")),
        )
        .unwrap();
        let (f, done) = open(&p).unwrap();
        assert_eq!(done, ["a".to_string(), "b".to_string()].into());
        let r = JobResult {
            id: "c".into(),
            verdict: "OK".into(),
            steps: vec![],
            message: None,
            isolation: None,
        };
        append(&f, &r).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!("{}{}{}", line("a", "AC"), line("b", "WA"), line("c", "OK"))
        );
    }

    #[test]
    fn the_syncer_ends_after_the_last_append_and_reports_success() {
        let dir = tempfile::tempdir().unwrap();
        let (f, _) = open(&dir.path().join("r.jsonl")).unwrap();
        let syncer = Syncer::new(&f);
        std::thread::scope(|s| {
            s.spawn(|| syncer.run());
            for i in 0..50 {
                let r = JobResult {
                    id: format!("j{i}"),
                    verdict: "OK".into(),
                    steps: vec![],
                    message: None,
                    isolation: None,
                };
                append(&f, &r).unwrap();
                syncer.appended();
            }
            assert!(!syncer.failed());
            syncer.finish().unwrap();
        });
        let text = std::fs::read_to_string(dir.path().join("r.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 50);
        // Nothing appended: finishing still ends the thread.
        let syncer = Syncer::new(&f);
        std::thread::scope(|s| {
            s.spawn(|| syncer.run());
            syncer.finish().unwrap();
        });
    }

    #[test]
    fn a_second_batch_on_the_same_results_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        let first = open(&p).unwrap();
        let e = open(&p).unwrap_err().to_string();
        assert!(e.contains("another batch is appending to it"), "{e}");
        drop(first);
        open(&p).unwrap();
    }

    #[test]
    fn a_bad_complete_line_is_named() {
        let e =
            parse_lines(format!("{}nope\n", line("a", "AC")).as_bytes(), "r.jsonl").unwrap_err();
        assert!(e.starts_with("r.jsonl:2: not a batch result line"), "{e}");
    }

    #[test]
    fn merge_sorts_by_id_and_keeps_the_first_duplicate() {
        let parts = vec![
            (
                "p0".to_string(),
                format!("{}{}", line("b", "AC"), line("a", "WA")).into_bytes(),
            ),
            (
                "p1".to_string(),
                format!("{}{}x", line("c", "OK"), line("a", "AC")).into_bytes(),
            ),
        ];
        let (out, warnings) = merge(&parts).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{}{}{}", line("a", "WA"), line("b", "AC"), line("c", "OK"))
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }
}
