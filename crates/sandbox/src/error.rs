//! Errors of the sandbox library. Each names what failed and, where there is one, the fix.

use std::io;

/// Why `watertight run` could not start or finish the sandbox: every failure of watertight's own,
/// never the program's (that is the verdict's).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A profile that does not parse or validate.
    #[error("profile {origin}: {message}")]
    Profile {
        /// The profile file, or `(effective profile)` once flags were applied.
        origin: String,
        /// What is wrong, naming the key at fault and what it accepts.
        message: String,
    },
    /// Bad input or host configuration (a flag, a path, a disabled kernel feature), worded as
    /// the fix.
    #[error("{0}")]
    Config(String),
    /// A host operation failed.
    // `err`, not `source`: the message already carries it, and a source would be printed twice.
    #[error("{what}: {err}")]
    Io {
        /// The operation, e.g. `mount /proc`.
        what: String,
        /// The OS error it returned.
        err: io::Error,
    },
    /// A `--stdin`, `--stdout` or `--stderr` file the supervisor could not open (as the caller,
    /// before anything is created).
    #[error("--{flag} {path}: {err}; {fix}")]
    StdioFile {
        /// The flag, e.g. `stdin`.
        flag: &'static str,
        /// The path as given, quoted.
        path: String,
        /// Why it could not be opened.
        err: io::Error,
        /// What to pass instead.
        fix: &'static str,
    },
    /// A `--box` directory that cannot be the sandbox's box.
    #[error("--box {path}: {message}")]
    Box {
        /// The path as given, quoted.
        path: String,
        /// What is wrong, worded as the fix.
        message: String,
    },
    /// The effective uid is not 0.
    #[error("watertight run needs root (it creates cgroups and maps the sandbox to its own host uid); run it as root, e.g. with sudo")]
    NotRoot,
    /// The seccomp profile could not be loaded or compiled.
    // Not `#[from]`/`#[source]`: the inner message is already in ours, and a source would make
    // the CLI print it twice.
    #[error("seccomp: {0}")]
    Seccomp(watertight_seccomp::Error),
    /// The cgroup driver failed (layout, limits, creation, removal).
    #[error("cgroups: {0}")]
    Cgroup(watertight_cgroups::Error),
    /// Every host uid of the `identity` range is taken by a running sandbox.
    #[error(
        "every sandbox slot ({slots}) is in use: wait for a sandbox to end or raise identity.slots"
    )]
    NoFreeSlot {
        /// `identity.slots`: how many sandboxes may run at once.
        slots: u32,
    },
    /// A step of the sandbox's own setup (`contain::sandbox_init`, the program's last steps)
    /// failed; the supervisor gets it through `report.rs` and the verdict (XX) names the stage.
    #[error("sandbox setup failed at {stage}: {message}")]
    Setup {
        /// The setup step that failed.
        stage: Stage,
        /// What failed there.
        message: String,
    },
}

/// The steps of the sandbox's setup, in the order `contain::sandbox_init` takes them: the
/// machine-readable `stage` of a setup failure (the XX verdict's `stage` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The pty slave in place of the caller's terminal streams.
    Terminal,
    /// The signal mask and default signal actions.
    Signals,
    /// Exec-time integrity: memfd_noexec, Landlock exec/write rules, MDWE.
    Integrity,
    /// Audit login uid, the sandbox's uid/gid.
    User,
    /// Bind sources pinned, mounts, new root.
    Mount,
    /// The hostname.
    Uts,
    /// The loopback interface.
    Net,
    /// The working directory inside.
    Workdir,
    /// The cgroup namespace.
    Cgroup,
    /// `--bpf-observe`: the bpffs context handed to the supervisor, the delegated bpffs attached.
    Bpf,
    /// Capabilities, securebits, no_new_privs.
    Privileges,
    /// The seccomp filter and its listener.
    Seccomp,
    /// Starting the program (pid 2).
    Spawn,
    /// The program's own session and controlling terminal.
    Session,
    /// The program's stdout/stderr.
    Stdio,
    /// Inherited descriptors closed.
    Fds,
    /// Resource limits (rlimits).
    Rlimits,
}

impl Stage {
    /// Every stage, in setup order.
    pub const ALL: [Stage; 17] = [
        Stage::Terminal,
        Stage::Signals,
        Stage::Integrity,
        Stage::User,
        Stage::Mount,
        Stage::Uts,
        Stage::Net,
        Stage::Workdir,
        Stage::Cgroup,
        Stage::Bpf,
        Stage::Privileges,
        Stage::Seccomp,
        Stage::Spawn,
        Stage::Session,
        Stage::Stdio,
        Stage::Fds,
        Stage::Rlimits,
    ];

    /// The name in messages, the report pipe and the verdict's JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Terminal => "terminal",
            Stage::Signals => "signals",
            Stage::Integrity => "integrity",
            Stage::User => "user",
            Stage::Mount => "mount",
            Stage::Uts => "uts",
            Stage::Net => "net",
            Stage::Workdir => "workdir",
            Stage::Cgroup => "cgroup",
            Stage::Bpf => "bpf",
            Stage::Privileges => "privileges",
            Stage::Seccomp => "seccomp",
            Stage::Spawn => "spawn",
            Stage::Session => "session",
            Stage::Stdio => "stdio",
            Stage::Fds => "fds",
            Stage::Rlimits => "rlimits",
        }
    }

    /// The stage named `name` (`as_str`), if any.
    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed step of the sandbox's own setup, as its pid 1 reports it (`report.rs`): which step
/// and why. Setup code returns it (through [`AtStage::at`]), so no error leaves the sandbox
/// without its stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sandbox setup failed at {stage}: {message}")]
pub struct SetupError {
    /// The setup step that failed.
    pub stage: Stage,
    /// What failed there (the operation and the OS error).
    pub message: String,
}

impl From<SetupError> for Error {
    fn from(e: SetupError) -> Error {
        Error::Setup {
            stage: e.stage,
            message: e.message,
        }
    }
}

/// Names the setup step an error happened in: `layer::step().at(Stage::Mount)?`.
pub trait AtStage<T> {
    /// An error already carrying a stage keeps it (the layer knew better); any other is
    /// reported at `stage`.
    fn at(self, stage: Stage) -> Result<T, SetupError>;
}

impl<T> AtStage<T> for Result<T, Error> {
    fn at(self, stage: Stage) -> Result<T, SetupError> {
        self.map_err(|e| match e {
            Error::Setup { stage, message } => SetupError { stage, message },
            other => SetupError {
                stage,
                message: other.to_string(),
            },
        })
    }
}

impl From<watertight_seccomp::Error> for Error {
    fn from(e: watertight_seccomp::Error) -> Error {
        Error::Seccomp(e)
    }
}

impl From<watertight_cgroups::Error> for Error {
    fn from(e: watertight_cgroups::Error) -> Error {
        Error::Cgroup(e)
    }
}

impl Error {
    /// An [`Error::Io`]: `what` failed with `source`.
    pub fn io(what: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            what: what.into(),
            err: source,
        }
    }
}

/// Adds context to io results: `.ctx(|| format!("mount {}", p))?`.
pub trait IoContext<T> {
    /// Maps the error to [`Error::Io`] named by `what` (called only on failure).
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T, Error>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T, Error> {
        self.map_err(|e| Error::io(what(), e))
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T, Error> {
        self.map_err(|e| Error::io(what(), io::Error::from(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_names_round_trip_and_match_the_json() {
        for stage in Stage::ALL {
            assert_eq!(Stage::from_name(stage.as_str()), Some(stage));
            assert_eq!(
                serde_json::to_value(stage).unwrap(),
                serde_json::json!(stage.as_str())
            );
        }
        assert_eq!(Stage::from_name("sandbox"), None);
    }

    #[test]
    fn at_names_the_stage_once() {
        let plain: Result<(), Error> = Err(Error::Config("no".into()));
        let e = plain.at(Stage::Privileges).unwrap_err();
        assert_eq!(e.stage, Stage::Privileges);
        assert_eq!(e.to_string(), "sandbox setup failed at privileges: no");
        // A layer's own stage survives the step's.
        let staged: Result<(), Error> = Err(e.into());
        assert_eq!(
            staged.at(Stage::Seccomp).unwrap_err().stage,
            Stage::Privileges
        );
    }
}
