//! The one output sink of every report command (`audit host|k8s|docker|oci|fleet|kernel`,
//! `net check`): the flags are resolved once into a [`Sink`], the command builds its report, and
//! the sink prints it in the chosen format, to standard output or through `-o FILE`, and turns
//! `--fail-on` into the exit code.
//!
//! Exit codes (README, "Exit codes"): 0 nothing at or above `--fail-on`; 1 findings at or above
//! it; 2 usage or input error (for `audit k8s`, any manifest that could not be evaluated, unless
//! `--fail-on none`). A reader that goes away (`| head -1`) is not an error: the command
//! ends quietly with the exit code its findings decide.

use anyhow::Context as _;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use watertight_report::{render, FailOn, Format, Report};

/// The output flags every report command takes.
#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// Output format: table, json, sarif or prometheus.
    #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = parse_format)]
    pub format: Format,
    /// Exit 1 when a finding is at or above this severity (info, low, medium, high, critical),
    /// or `none` to exit 0 whatever the findings once the inputs were read.
    #[arg(long, value_name = "SEVERITY", default_value = "high", value_parser = parse_fail_on)]
    pub fail_on: FailOn,
    /// Write the report to FILE instead of standard output. FILE is written through (created or
    /// truncated, then written in place) and stays what it is: a regular file keeps its inode, a
    /// symlink its target, a FIFO or a device (/dev/stdout) stays one. A reader may see it half
    /// written: for a textfile collector, add --atomic.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// With -o FILE: write the report to a hidden temporary file beside FILE, then rename it
    /// onto FILE, so a reader (a textfile collector) sees the previous report or the new one,
    /// never half of one. FILE is replaced (a symlink there is replaced, not followed) and its
    /// directory must be writable.
    #[arg(long, requires = "output")]
    pub atomic: bool,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

fn parse_fail_on(s: &str) -> Result<FailOn, String> {
    s.parse()
}

impl ReportArgs {
    /// The sink these flags describe.
    pub fn sink(&self) -> Sink {
        Sink {
            format: self.format,
            fail_on: self.fail_on,
            output: self.output.clone(),
            atomic: self.atomic,
        }
    }
}

/// Where and how a report is printed, and the threshold of its exit code.
#[derive(Debug, Clone)]
pub struct Sink {
    pub format: Format,
    pub fail_on: FailOn,
    pub output: Option<PathBuf>,
    /// Replace `output` by a rename instead of writing through it.
    pub atomic: bool,
}

impl Sink {
    /// Prints the report, names its unreadable inputs, input warnings and skipped inputs on
    /// stderr, and returns the exit code.
    pub fn emit<R: Report>(&self, report: &R) -> anyhow::Result<u8> {
        let text = render(report, self.format);
        match &self.output {
            Some(path) if self.atomic => write_replacing(path, text.as_bytes())?,
            Some(path) => write_through(path, text.as_bytes())?,
            None => write_stdout(text.as_bytes())?,
        }
        for line in report.input_errors() {
            warn(&line);
        }
        for line in report.input_warnings() {
            warn(&format!("warning: {line}"));
        }
        for line in report.input_notes() {
            warn(&line);
        }
        Ok(report.exit_code(self.fail_on))
    }
}

fn write_through(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_file(path, bytes, "--output")
}

/// Writes a command's output file (`-o` reports, `manifest create --out`, `audit kernel
/// --index-out`) through whatever stands at `path`, which stays what it was: a regular file
/// keeps its inode, owner, mode and links (truncated and written), a symlink keeps pointing
/// where it did (its target is written), a FIFO or a device node such as /dev/stdout is opened
/// and written; a new path is created. Never renamed over: replacing the path would turn a
/// device node into a regular file (`-o /dev/null` as root) or break a link. A reader that
/// must never see half a file writes to a temporary name and renames it itself (README's
/// textfile-collector example). `flag` names the option in errors.
pub fn write_file(path: &Path, bytes: &[u8], flag: &str) -> anyhow::Result<()> {
    // Truncation is ignored by FIFOs and devices and empties a regular or symlinked file.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .with_context(|| {
            format!(
                "{flag} {}: cannot open for writing (does the directory exist and is it writable?)",
                path.display()
            )
        })?;
    quiet_on_broken_pipe(file.write_all(bytes).and_then(|()| file.flush()))
        .with_context(|| format!("{flag} {}: cannot write", path.display()))
}

/// Writes `bytes` to `.NAME.PID.tmp` beside `path` and renames it onto `path`: readers see the
/// old file or the new one, never a part (`--atomic`). The temporary file is removed on failure;
/// its name does not end like `path`'s, so a collector globbing `*.prom` never picks it up.
fn write_replacing(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path.file_name().with_context(|| {
        format!(
            "--output {} --atomic: name a file, not a directory",
            path.display()
        )
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .with_context(|| {
                format!(
                    "--output {} --atomic: cannot create {} (is the directory writable?)",
                    path.display(),
                    tmp.display()
                )
            })?;
        file.write_all(bytes)
            .and_then(|()| file.flush())
            .with_context(|| format!("--output {}: cannot write the report", path.display()))?;
        std::fs::rename(&tmp, path).with_context(|| {
            format!(
                "--output {} --atomic: cannot rename {} onto it",
                path.display(),
                tmp.display()
            )
        })
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Writes `bytes` to standard output; a closed pipe ends the output quietly.
pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    quiet_on_broken_pipe(out.write_all(bytes).and_then(|()| out.flush()))
        .context("cannot write the report to standard output")
}

/// One line of a non-report message on standard output (`wrote FILE ...`), quiet on a closed
/// pipe like the reports.
pub fn say(line: &str) -> anyhow::Result<()> {
    write_stdout(format!("{line}\n").as_bytes())
}

/// One line on stderr, prefixed `watertight: `; a closed stderr is ignored (nothing else could
/// be told).
pub fn warn(line: &str) {
    let _ = writeln!(io::stderr().lock(), "watertight: {line}");
}

/// A reader that went away is the reader's choice, not a failure of the command.
fn quiet_on_broken_pipe(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn output_file_is_written_through_a_symlink_keeping_the_inode() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.prom");
        std::fs::write(&target, "old, and longer than the new text\n").unwrap();
        let link = dir.path().join("link.prom");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let inode = std::fs::metadata(&target).unwrap().ino();
        write_through(&link, b"new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new\n");
        assert_eq!(std::fs::metadata(&target).unwrap().ino(), inode);
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_regular_file_is_written_through_keeping_its_inode_and_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.prom");
        std::fs::write(&path, "old report, longer than the new one\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        write_file(&path, b"new\n", "--output").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.ino(), inode, "written in place, never renamed over");
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "new\n",
            "truncated first"
        );
        write_file(&dir.path().join("new.json"), b"x", "--output").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn an_atomic_output_replaces_the_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("watertight.prom");
        std::fs::write(&target, "old\n").unwrap();
        let inode = std::fs::metadata(&target).unwrap().ino();
        write_replacing(&target, b"new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new\n");
        // A new inode: a reader holding the old file keeps reading all of the old report.
        assert_ne!(std::fs::metadata(&target).unwrap().ino(), inode);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["watertight.prom"]);
        let err = write_replacing(&dir.path().join("missing/x.prom"), b"x").unwrap_err();
        assert!(
            format!("{err:#}").contains("--atomic: cannot create"),
            "{err:#}"
        );
    }

    #[test]
    fn an_unwritable_output_names_the_flag_and_the_file() {
        let err = write_through(Path::new("/nonexistent-wt/x.json"), b"x").unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("--output /nonexistent-wt/x.json"), "{text}");
    }

    #[test]
    fn a_broken_pipe_is_quiet_and_other_errors_are_not() {
        assert!(quiet_on_broken_pipe(Err(io::ErrorKind::BrokenPipe.into())).is_ok());
        assert!(quiet_on_broken_pipe(Err(io::ErrorKind::StorageFull.into())).is_err());
    }
}
