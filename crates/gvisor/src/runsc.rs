//! Finding runsc and choosing its platform, before anything is created.
//!
//! The platform: gVisor's Sentry intercepts the program's system calls through a "platform".
//! `systrap` (gVisor 2023 on) is the fastest without hardware virtualization, but older runsc
//! (Debian 12's 20221219) does not have it; `ptrace` works wherever ptrace does; `kvm` needs
//! guests that actually run, which an openable /dev/kvm does not prove (nested hosts create VMs
//! whose vCPUs never run), so it is never chosen automatically. The choice is probed once per
//! runsc binary (path, size, mtime) and cached under [`WORK_ROOT`], since `runsc flags` costs a
//! Go start-up (~40 ms) that would otherwise be on every run's path.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::Error;

/// Where watertight's gVisor runs keep their private directories (each a tmpfs in the run's
/// own mount namespace) and the platform cache.
pub const WORK_ROOT: &str = "/run/watertight/gvisor";

/// The environment variable that names runsc's path instead of PATH (a configuration of the
/// host: a runsc outside PATH, or one pinned).
pub const RUNSC_ENV: &str = "WATERTIGHT_RUNSC";

/// The line a missing runsc gives: the package to install.
pub const INSTALL_HINT: &str =
    "install the Debian package `runsc` (apt-get install runsc), or set WATERTIGHT_RUNSC to runsc's path";

/// runsc, found, with the platform it will run on.
#[derive(Debug, Clone)]
pub struct Runsc {
    /// Its absolute path.
    pub path: PathBuf,
    /// `ptrace` or `systrap`.
    pub platform: String,
    /// Why that platform: one line for people (the verdict, `--verbose`).
    pub platform_reason: String,
}

/// Finds runsc ([`RUNSC_ENV`], else PATH) and chooses its platform.
pub fn locate() -> Result<Runsc, Error> {
    let path = find()?;
    let (platform, platform_reason) = platform(&path)?;
    Ok(Runsc {
        path,
        platform,
        platform_reason,
    })
}

/// runsc at `path` (a host's configuration names it, e.g. runtime.toml's `[isolation] runsc`),
/// or as [`locate`] finds it when `None`, with its platform.
pub fn locate_at(path: Option<&Path>) -> Result<Runsc, Error> {
    let Some(path) = path else {
        return locate();
    };
    if !is_executable(path) {
        return Err(Error::RunscMissing(format!(
            "runsc {} is not an executable file: {INSTALL_HINT}",
            path.display()
        )));
    }
    let (platform, platform_reason) = platform(path)?;
    Ok(Runsc {
        path: path.to_path_buf(),
        platform,
        platform_reason,
    })
}

fn find() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os(RUNSC_ENV) {
        let p = PathBuf::from(p);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(Error::RunscMissing(format!(
                "--isolation gvisor: {RUNSC_ENV}={} is not an executable file: {INSTALL_HINT}",
                p.display()
            )))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("runsc"))
        .find(|p| p.is_absolute() && is_executable(p))
        .ok_or_else(|| {
            Error::RunscMissing(format!(
                "--isolation gvisor: gVisor's runsc is not on PATH: {INSTALL_HINT}"
            ))
        })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The platforms `runsc flags` lists in the `-platform` flag's help
/// ("specifies which platform to use: ptrace (default), kvm.").
pub fn listed_platforms(flags_help: &str) -> Vec<String> {
    let mut lines = flags_help.lines();
    while let Some(l) = lines.next() {
        if l.trim_start().starts_with("-platform ") || l.trim() == "-platform string" {
            let help = lines.next().unwrap_or_default();
            let list = help.split_once(':').map(|(_, r)| r).unwrap_or(help);
            return list
                .split([',', '.', ' ', '(', ')'])
                .map(str::trim)
                .filter(|w| ["ptrace", "systrap", "kvm"].contains(w))
                .map(String::from)
                .collect();
        }
    }
    Vec::new()
}

/// The choice for a runsc offering `listed`, given whether a systrap probe ran a sandbox.
pub fn choose(listed: &[String], systrap_works: Option<bool>) -> (String, String) {
    let offered = listed.join(", ");
    let has = |p: &str| listed.iter().any(|l| l == p);
    match systrap_works {
        Some(true) => (
            "systrap".into(),
            format!("systrap: offered ({offered}) and a probe sandbox ran on it"),
        ),
        Some(false) => (
            "ptrace".into(),
            format!("ptrace: systrap is offered ({offered}) but a probe sandbox failed on it; kvm is never chosen automatically"),
        ),
        None if has("systrap") => (
            "ptrace".into(),
            "ptrace: systrap was not probed".into(),
        ),
        None => (
            "ptrace".into(),
            format!("ptrace: this runsc offers {offered} (no systrap); kvm is never chosen automatically (an openable /dev/kvm does not prove guests run)"),
        ),
    }
}

#[derive(serde::Serialize, serde::Deserialize, PartialEq)]
struct Cached {
    runsc: PathBuf,
    size: u64,
    mtime_ns: i128,
    platform: String,
    reason: String,
}

fn platform(runsc: &Path) -> Result<(String, String), Error> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(runsc).map_err(|source| Error::Process {
        what: "stat runsc",
        source,
    })?;
    let (size, mtime_ns) = (
        m.size(),
        m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
    );
    let cache = Path::new(WORK_ROOT).join("platform.json");
    if let Ok(text) = std::fs::read(&cache) {
        if let Ok(c) = serde_json::from_slice::<Cached>(&text) {
            if c.runsc == runsc && c.size == size && c.mtime_ns == mtime_ns {
                return Ok((c.platform, c.reason));
            }
        }
    }
    let out = Command::new(runsc)
        .arg("flags")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Process {
            what: "runsc flags",
            source,
        })?;
    let mut help = String::from_utf8_lossy(&out.stdout).into_owned();
    help.push_str(&String::from_utf8_lossy(&out.stderr));
    let listed = listed_platforms(&help);
    let systrap = listed
        .iter()
        .any(|p| p == "systrap")
        .then(|| probe_systrap(runsc));
    let (platform, reason) = choose(&listed, systrap);
    let c = Cached {
        runsc: runsc.into(),
        size,
        mtime_ns,
        platform: platform.clone(),
        reason: reason.clone(),
    };
    // A cache that cannot be written only costs the next run the probe again.
    let _ = std::fs::create_dir_all(WORK_ROOT).and_then(|()| {
        let tmp = cache.with_extension(format!("json.{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec(&c).unwrap_or_default())?;
        std::fs::rename(&tmp, &cache)
    });
    Ok((platform, reason))
}

/// Runs /bin/true in a throwaway runsc sandbox on systrap (`runsc do`), at most 10 s.
fn probe_systrap(runsc: &Path) -> bool {
    let Ok(state) = tempfile_dir() else {
        return false;
    };
    let child = Command::new(runsc)
        .args([
            "--platform=systrap",
            "--network=none",
            "--ignore-cgroups",
            "--root",
        ])
        .arg(&state)
        .args(["do", "/bin/true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let ok = match child {
        Ok(mut c) => {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                match c.try_wait() {
                    Ok(Some(s)) => break s.success(),
                    Ok(None) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(std::time::Duration::from_millis(20))
                    }
                    _ => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break false;
                    }
                }
            }
        }
        Err(_) => false,
    };
    let _ = std::fs::remove_dir_all(&state);
    ok
}

fn tempfile_dir() -> std::io::Result<PathBuf> {
    let d = Path::new(WORK_ROOT).join(format!("probe-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_are_read_from_the_flag_help() {
        let help = "  -platform string\n    \tspecifies which platform to use: ptrace (default), kvm. (default \"ptrace\")\n  -profile\n";
        assert_eq!(listed_platforms(help), ["ptrace", "kvm"]);
        let newer = "  -platform string\n    \tspecifies which platform to use: systrap (default), ptrace, kvm.\n";
        assert_eq!(listed_platforms(newer), ["systrap", "ptrace", "kvm"]);
        assert!(listed_platforms("nothing here").is_empty());
    }

    #[test]
    fn ptrace_unless_systrap_is_offered_and_works() {
        let old = vec!["ptrace".to_string(), "kvm".to_string()];
        let (p, why) = choose(&old, None);
        assert_eq!(p, "ptrace");
        assert!(why.contains("no systrap"), "{why}");
        let new = vec!["systrap".to_string(), "ptrace".to_string()];
        assert_eq!(choose(&new, Some(true)).0, "systrap");
        let (p, why) = choose(&new, Some(false));
        assert_eq!(p, "ptrace");
        assert!(why.contains("probe sandbox failed"), "{why}");
    }
}
