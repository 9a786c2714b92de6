//! The kernel's hardening posture: sysctls (expectations in `data/hardening.toml`), active LSMs
//! and the lockdown mode, read below a root directory so a test can point it at a fake tree and a
//! DaemonSet at the host's root mounted elsewhere.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

const CHECKS: &str = include_str!("../data/hardening.toml");

/// How much a failing hardening check matters, for reports and `--fail-on`: the one severity
/// scale of every watertight report.
pub use watertight_report::Severity as CheckSeverity;

/// The outcome of one hardening check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The kernel is set as recommended.
    Pass,
    /// The kernel is set otherwise.
    Fail,
    /// The kernel lacks the switch (no such sysctl, LSM interface not mounted).
    Absent,
    /// The file exists but could not be read or parsed.
    Unreadable,
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "fail",
            CheckStatus::Absent => "absent",
            CheckStatus::Unreadable => "unreadable",
        })
    }
}

/// One line of the hardening report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HardeningCheck {
    /// `kernel.kptr_restrict`, `lsm.landlock`, `lockdown`.
    pub name: String,
    /// `sysctl`, `lsm` or `lockdown`.
    pub kind: &'static str,
    /// The recommended value.
    pub expected: String,
    /// The value read, when it could be read.
    pub current: Option<String>,
    /// The outcome.
    pub status: CheckStatus,
    /// How much a failure matters.
    pub severity: CheckSeverity,
    /// What the recommended value protects against.
    pub why: String,
    /// What the recommended value can break, when it breaks anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaks: Option<String>,
    /// Why the check could not be judged, when it is absent or unreadable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckFile {
    sysctl: Vec<SysctlSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SysctlSpec {
    name: String,
    expect: String,
    severity: CheckSeverity,
    why: String,
    #[serde(default)]
    breaks: Option<String>,
}

/// An expectation on an integer sysctl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    AtLeast(i64),
    AtMost(i64),
    Equal(i64),
    /// 0, or only bits within the mask (and not 1, which means "everything" for sysrq).
    BitsWithin(i64),
}

impl Expect {
    fn parse(text: &str) -> Option<Expect> {
        let (op, n) = text.trim().split_once(' ')?;
        let n: i64 = n.trim().parse().ok()?;
        Some(match op {
            ">=" => Expect::AtLeast(n),
            "<=" => Expect::AtMost(n),
            "==" => Expect::Equal(n),
            "bits" => Expect::BitsWithin(n),
            _ => return None,
        })
    }

    fn holds(self, value: i64) -> bool {
        match self {
            Expect::AtLeast(n) => value >= n,
            Expect::AtMost(n) => value <= n,
            Expect::Equal(n) => value == n,
            Expect::BitsWithin(mask) => value == 0 || (value != 1 && value & !mask == 0),
        }
    }

    fn describe(self) -> String {
        match self {
            Expect::AtLeast(n) => format!(">= {n}"),
            Expect::AtMost(n) => format!("<= {n}"),
            Expect::Equal(n) => format!("{n}"),
            Expect::BitsWithin(mask) => format!("0 or bits within {mask}"),
        }
    }
}

/// Reads the hardening posture below `root` (`/` for this host).
pub struct HardeningReader {
    root: PathBuf,
}

impl HardeningReader {
    /// A reader of the files below `root` (`/` for this host; a copy of /proc and /sys in tests).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Reads every check. Missing files become `absent` entries, never errors.
    pub fn read(&self) -> Vec<HardeningCheck> {
        let mut checks = Vec::new();
        let specs: CheckFile =
            toml::from_str(CHECKS).expect("the built-in hardening table is valid (tested)");
        for spec in specs.sysctl {
            checks.push(self.sysctl(&spec));
        }
        checks.extend(self.lsms());
        checks.push(self.lockdown());
        checks
    }

    fn sysctl(&self, spec: &SysctlSpec) -> HardeningCheck {
        let expect = Expect::parse(&spec.expect).expect("built-in expectations parse (tested)");
        let file = self.path(&format!("proc/sys/{}", spec.name.replace('.', "/")));
        let (current, status) = match read_trimmed(&file) {
            Ok(text) => match text.parse::<i64>() {
                Ok(v) if expect.holds(v) => (Some(text), CheckStatus::Pass),
                Ok(_) => (Some(text), CheckStatus::Fail),
                Err(_) => (Some(text), CheckStatus::Unreadable),
            },
            Err(ReadError::Missing) => (None, CheckStatus::Absent),
            Err(ReadError::Other(e)) => (Some(e), CheckStatus::Unreadable),
        };
        HardeningCheck {
            name: spec.name.clone(),
            kind: "sysctl",
            expected: expect.describe(),
            current,
            status,
            severity: spec.severity,
            why: spec.why.clone(),
            breaks: spec.breaks.clone(),
            note: (status == CheckStatus::Absent).then(|| {
                format!(
                    "{} does not exist: this kernel lacks the switch",
                    file.display()
                )
            }),
        }
    }

    /// Explains a missing securityfs file: unmounted securityfs is common in VMs and containers.
    fn securityfs_note(&self, file: &Path) -> String {
        let dir = self.path("sys/kernel/security");
        let empty = std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(true);
        if empty {
            format!(
                "securityfs is not mounted at {} (mount -t securityfs securityfs {}), so {} cannot be read",
                dir.display(),
                dir.display(),
                file.display()
            )
        } else {
            format!(
                "{} does not exist: this kernel lacks the interface",
                file.display()
            )
        }
    }

    fn lsms(&self) -> Vec<HardeningCheck> {
        let file = self.path("sys/kernel/security/lsm");
        let note = matches!(read_trimmed(&file), Err(ReadError::Missing))
            .then(|| self.securityfs_note(&file));
        let listed = read_trimmed(&file);
        let active: Option<Vec<String>> = listed
            .as_ref()
            .ok()
            .map(|t| t.split(',').map(|s| s.trim().to_string()).collect());
        let current = match (&listed, &active) {
            (Ok(_), Some(a)) => Some(a.join(",")),
            (Err(ReadError::Other(e)), _) => Some(e.clone()),
            _ => None,
        };
        let verdict = |wanted: &[&str]| match (&listed, &active) {
            (Ok(_), Some(a)) if a.iter().any(|l| wanted.contains(&l.as_str())) => CheckStatus::Pass,
            (Ok(_), _) => CheckStatus::Fail,
            (Err(ReadError::Missing), _) => CheckStatus::Absent,
            (Err(ReadError::Other(_)), _) => CheckStatus::Unreadable,
        };
        vec![
            HardeningCheck {
                name: "lsm.landlock".into(),
                kind: "lsm",
                expected: "landlock active".into(),
                current: current.clone(),
                status: verdict(&["landlock"]),
                severity: CheckSeverity::Medium,
                why: "watertight layers Landlock filesystem and network rules in every sandbox; without Landlock that layer is missing (boot with lsm=...,landlock)".into(),
                breaks: None,
                note: note.clone(),
            },
            HardeningCheck {
                name: "lsm.mac".into(),
                kind: "lsm",
                expected: "one of apparmor, selinux, smack, tomoyo active".into(),
                current,
                status: verdict(&["apparmor", "selinux", "smack", "tomoyo"]),
                severity: CheckSeverity::Low,
                why: "a mandatory access control LSM confines container runtimes and host daemons beyond what watertight's own layers cover".into(),
                breaks: None,
                note,
            },
        ]
    }

    fn lockdown(&self) -> HardeningCheck {
        let file = self.path("sys/kernel/security/lockdown");
        let (current, status) = match read_trimmed(&file) {
            // "none [integrity] confidentiality": the bracketed word is the active mode.
            Ok(text) => match text
                .split_whitespace()
                .find(|w| w.starts_with('[') && w.ends_with(']'))
                .map(|w| w.trim_matches(['[', ']']).to_string())
            {
                Some(mode) if mode == "integrity" || mode == "confidentiality" => {
                    (Some(mode), CheckStatus::Pass)
                }
                Some(mode) => (Some(mode), CheckStatus::Fail),
                None => (Some(text), CheckStatus::Unreadable),
            },
            Err(ReadError::Missing) => (None, CheckStatus::Absent),
            Err(ReadError::Other(e)) => (Some(e), CheckStatus::Unreadable),
        };
        let note = (status == CheckStatus::Absent).then(|| self.securityfs_note(&file));
        HardeningCheck {
            name: "lockdown".into(),
            kind: "lockdown",
            expected: "integrity or confidentiality".into(),
            current,
            status,
            severity: CheckSeverity::Medium,
            why: "lockdown stops root (including a process that escaped a container) from altering the running kernel: /dev/mem, unsigned modules and kexec images, BPF writes to kernel memory".into(),
            breaks: Some("confidentiality also blocks reading kernel memory (kcore, some tracing and BPF reads)".into()),
            note,
        }
    }
}

enum ReadError {
    Missing,
    Other(String),
}

fn read_trimmed(path: &Path) -> Result<String, ReadError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ReadError::Missing),
        Err(e) => Err(ReadError::Other(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_table_is_valid() {
        let specs: CheckFile = toml::from_str(CHECKS).unwrap();
        assert!(specs.sysctl.len() >= 18);
        for s in &specs.sysctl {
            assert!(Expect::parse(&s.expect).is_some(), "{}", s.name);
        }
        let names: Vec<_> = specs.sysctl.iter().map(|s| s.name.as_str()).collect();
        for required in [
            "kernel.unprivileged_bpf_disabled",
            "user.max_user_namespaces",
            "kernel.kptr_restrict",
            "kernel.dmesg_restrict",
            "kernel.perf_event_paranoid",
            "kernel.io_uring_disabled",
            "vm.unprivileged_userfaultfd",
            "kernel.kexec_load_disabled",
            "kernel.yama.ptrace_scope",
            "fs.protected_symlinks",
            "fs.protected_hardlinks",
            "fs.protected_fifos",
            "fs.protected_regular",
            "dev.tty.legacy_tiocsti",
            "kernel.sysrq",
        ] {
            assert!(names.contains(&required), "{required}");
        }
    }

    #[test]
    fn expectations() {
        assert!(Expect::BitsWithin(176).holds(0));
        assert!(Expect::BitsWithin(176).holds(16));
        assert!(Expect::BitsWithin(176).holds(176));
        assert!(!Expect::BitsWithin(176).holds(1));
        assert!(!Expect::BitsWithin(176).holds(438));
        assert!(Expect::AtLeast(2).holds(3));
        assert!(!Expect::AtLeast(2).holds(1));
        assert!(Expect::AtMost(0).holds(0));
        assert!(Expect::parse("> 1").is_none());
        assert!(Expect::parse(">=1").is_none());
    }
}
