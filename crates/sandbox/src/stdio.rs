//! `--stdin`, `--stdout`, `--stderr`: the program's standard streams from and to files the
//! supervisor opens as the caller, with the caller's permissions, before anything is created.
//! The sandbox never names them: stdin is handed to the program as an open descriptor, and the
//! output files are the destinations of the counted pipes of `output.rs` (so the output limit
//! and the OL verdict hold as they do for the caller's own stdout and stderr). An output file
//! is created (mode 0666 less the umask) or truncated and written through, never replaced.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::terminal::Streams;

/// The files asked for, by path (`Job::stdio`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdioPaths {
    /// `--stdin FILE`: read by the program as its stdin.
    pub stdin: Option<PathBuf>,
    /// `--stdout FILE`: the program's stdout, created or truncated.
    pub stdout: Option<PathBuf>,
    /// `--stderr FILE`: the program's stderr, created or truncated (the same path as `--stdout`
    /// is one file for both, as with `>FILE 2>&1`).
    pub stderr: Option<PathBuf>,
}

/// The files, open.
#[derive(Debug, Default)]
pub struct StdioFiles {
    /// The program's stdin.
    pub stdin: Option<OwnedFd>,
    /// The destinations of the program's stdout and stderr, in place of the caller's.
    pub output: [Option<OwnedFd>; 2],
}

impl StdioFiles {
    /// Which of the caller's streams these files replace (never a terminal then).
    pub fn redirected(&self) -> Streams {
        Streams {
            stdin: self.stdin.is_some(),
            stdout: self.output[0].is_some(),
            stderr: self.output[1].is_some(),
        }
    }
}

fn shown(p: &Path) -> String {
    watertight_sys::text::quote(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()))
}

fn error(flag: &'static str, path: &Path, err: std::io::Error, fix: &'static str) -> Error {
    Error::StdioFile {
        flag,
        path: shown(path),
        err,
        fix,
    }
}

/// A terminal named by path would bypass the pty (`terminal.rs`) and its escape filter: the
/// program would hold the terminal itself (TIOCSTI, modes) or write raw escapes to it.
fn refuse_terminal(flag: &'static str, path: &Path, f: &File) -> Result<(), Error> {
    if nix::unistd::isatty(f.as_fd()).unwrap_or(false) {
        return Err(Error::StdioFile {
            flag,
            path: shown(path),
            err: std::io::Error::other("a terminal"),
            fix: "leave the flag out to use the caller's terminal (through the program's own pty)",
        });
    }
    Ok(())
}

const OUTPUT_FIX: &str =
    "pass a path in a directory you can write to (the file is created or truncated)";

impl StdioPaths {
    /// Opens every file: stdin for reading, the output files for writing. An output file that
    /// is the stdin file is refused before it is truncated; until every file opened, none is
    /// truncated.
    pub fn open(&self) -> Result<StdioFiles, Error> {
        let stdin = match &self.stdin {
            None => None,
            Some(p) => {
                let f = OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOCTTY)
                    .open(p)
                    .map_err(|e| error("stdin", p, e, "pass an existing file you can read"))?;
                let m = f
                    .metadata()
                    .map_err(|e| error("stdin", p, e, "pass an existing file you can read"))?;
                if m.is_dir() {
                    return Err(error(
                        "stdin",
                        p,
                        std::io::Error::from_raw_os_error(libc::EISDIR),
                        "pass a file, not a directory",
                    ));
                }
                refuse_terminal("stdin", p, &f)?;
                Some(f)
            }
        };
        let open_out = |flag: &'static str, p: &Path| -> Result<File, Error> {
            let f = OpenOptions::new()
                .write(true)
                .create(true)
                .mode(0o666)
                .custom_flags(libc::O_NOCTTY)
                .open(p)
                .map_err(|e| error(flag, p, e, OUTPUT_FIX))?;
            let m = f.metadata().map_err(|e| error(flag, p, e, OUTPUT_FIX))?;
            refuse_terminal(flag, p, &f)?;
            // Only a regular file is truncated (and so could lose the input).
            if let (Some(i), true) = (&stdin, m.is_file()) {
                let s = i.metadata().map_err(|e| error(flag, p, e, OUTPUT_FIX))?;
                if (s.dev(), s.ino()) == (m.dev(), m.ino()) {
                    return Err(Error::StdioFile {
                        flag,
                        path: shown(p),
                        err: std::io::Error::other("it is the --stdin file"),
                        fix: "pass another path (writing would truncate the input)",
                    });
                }
            }
            Ok(f)
        };
        let stdout = self
            .stdout
            .as_deref()
            .map(|p| open_out("stdout", p))
            .transpose()?;
        let mut stderr = self
            .stderr
            .as_deref()
            .map(|p| open_out("stderr", p))
            .transpose()?;
        // One file for both streams: one open file, so one pipe and one offset (`2>&1`).
        if let (Some(o), Some(e)) = (&stdout, &stderr) {
            let (mo, me) = (o.metadata(), e.metadata());
            if let (Ok(mo), Ok(me)) = (mo, me) {
                if (mo.dev(), mo.ino()) == (me.dev(), me.ino()) {
                    stderr = Some(o.try_clone().map_err(|e| {
                        error("stderr", self.stderr.as_deref().unwrap(), e, OUTPUT_FIX)
                    })?);
                }
            }
        }
        // Every file is open: now truncate the regular ones (a device or FIFO has nothing to cut).
        for (flag, f, p) in [
            ("stdout", &stdout, &self.stdout),
            ("stderr", &stderr, &self.stderr),
        ] {
            if let (Some(f), Some(p)) = (f, p) {
                if f.metadata().is_ok_and(|m| m.is_file()) {
                    f.set_len(0).map_err(|e| error(flag, p, e, OUTPUT_FIX))?;
                }
            }
        }
        Ok(StdioFiles {
            stdin: stdin.map(OwnedFd::from),
            output: [stdout.map(OwnedFd::from), stderr.map(OwnedFd::from)],
        })
    }
}

/// The destinations of the program's stdout and stderr: the files of `files`, else duplicates
/// of the caller's own descriptors (None where the caller has none open).
pub fn destinations(files: &mut StdioFiles) -> [Option<OwnedFd>; 2] {
    let caller = [
        std::io::stdout().as_fd().try_clone_to_owned().ok(),
        std::io::stderr().as_fd().try_clone_to_owned().ok(),
    ];
    let [o, e] = std::mem::take(&mut files.output);
    let [co, ce] = caller;
    [o.or(co), e.or(ce)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn output_files_are_truncated_in_place_and_one_path_is_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.txt");
        std::fs::write(&out, b"old contents").unwrap();
        let ino = std::fs::metadata(&out).unwrap().ino();
        let paths = StdioPaths {
            stdin: None,
            stdout: Some(out.clone()),
            stderr: Some(out.clone()),
        };
        let files = paths.open().unwrap();
        let m = std::fs::metadata(&out).unwrap();
        assert_eq!((m.len(), m.ino()), (0, ino), "truncated, never replaced");
        let [o, e] = &files.output;
        let (o, e) = (o.as_ref().unwrap(), e.as_ref().unwrap());
        assert!(watertight_sys::process::same_open_file(o.as_fd(), e.as_fd()).unwrap());
        assert_eq!(
            files.redirected(),
            Streams {
                stdin: false,
                stdout: true,
                stderr: true
            }
        );
    }

    #[test]
    fn a_missing_stdin_is_named_with_the_fix_and_nothing_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.txt");
        std::fs::write(&out, b"keep").unwrap();
        let paths = StdioPaths {
            stdin: Some(dir.path().join("missing.txt")),
            stdout: Some(out.clone()),
            stderr: None,
        };
        let e = paths.open().unwrap_err().to_string();
        assert!(
            e.starts_with("--stdin \"")
                && e.contains("missing.txt")
                && e.contains("pass an existing file"),
            "{e}"
        );
        assert_eq!(std::fs::read(&out).unwrap(), b"keep");
    }

    #[test]
    fn a_terminal_is_refused_for_every_stream() {
        let pair = nix::pty::openpty(None, None).unwrap();
        let tty = PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&pair.slave)
        ));
        for paths in [
            StdioPaths {
                stdin: Some(tty.clone()),
                ..StdioPaths::default()
            },
            StdioPaths {
                stdout: Some(tty.clone()),
                ..StdioPaths::default()
            },
            StdioPaths {
                stderr: Some(tty.clone()),
                ..StdioPaths::default()
            },
        ] {
            let e = paths.open().unwrap_err().to_string();
            assert!(e.contains("a terminal; leave the flag out"), "{e}");
        }
        // Control: /dev/null is no terminal and is taken.
        StdioPaths {
            stdin: Some("/dev/null".into()),
            stdout: Some("/dev/null".into()),
            stderr: None,
        }
        .open()
        .unwrap();
    }

    #[test]
    fn the_stdin_file_is_not_an_output_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("io.txt");
        std::fs::write(&f, b"input").unwrap();
        let paths = StdioPaths {
            stdin: Some(f.clone()),
            stdout: Some(f.clone()),
            stderr: None,
        };
        let e = paths.open().unwrap_err().to_string();
        assert!(e.contains("--stdin file"), "{e}");
        assert_eq!(std::fs::read(&f).unwrap(), b"input");
        let mut ok = StdioPaths {
            stdin: Some(f.clone()),
            ..StdioPaths::default()
        }
        .open()
        .unwrap();
        let mut s = String::new();
        File::from(ok.stdin.take().unwrap())
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "input");
        let _ = std::io::stdout().flush();
    }
}
