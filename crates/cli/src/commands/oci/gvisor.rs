//! Containers handed to gVisor by the choice by risk. With `[isolation] policy = FILE` in
//! runtime.toml, `create` asks the policy (kernel-audit `policy.rs`, the file `batch
//! --isolation-policy` reads) whether this node's kernel exposes more reachable CVEs than it
//! allows. If it does, runsc creates the container, with its own state directory below --root,
//! and every later command naming that id goes to runsc with the same arguments: the container
//! gets a kernel in user space instead of the host's system-call surface, whatever the caller
//! (containerd's runc shim, conmon, Docker) is.
//!
//! What watertight still does for such a container: the floor's refusals (a privileged config,
//! an unsupported field) before anything is created; the hardened config.json (capability
//! ceiling, no_new_privs, masked and read-only paths, devices) in a shadow bundle runsc reads;
//! the container's own seccomp profile enforced inside the Sentry (`--oci-seccomp`). What it
//! does not: its second seccomp filter, the audit trail and `on_violation` (runsc's Sentry, not
//! the host kernel, answers the calls), and the published entry for `audit host`.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory below --root for delegated containers: `@` is not allowed in a container id,
/// so it never collides with one.
const DIR: &str = "@gvisor";

/// The annotation a delegated container's config (and `state`) carries.
pub const ISOLATION_ANNOTATION: &str = "run.oci.watertight/isolation";
/// Why the policy chose gVisor (its one sentence).
pub const REASON_ANNOTATION: &str = "run.oci.watertight/isolation.reason";

/// How to reach runsc for one delegated container, kept in `<root>/@gvisor/<id>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    /// runsc's path.
    pub runsc: PathBuf,
    /// runsc's global arguments for this container (root, platform, network), before any
    /// per-call --log/--debug.
    pub args: Vec<String>,
    /// The caller's bundle (runsc knows only the shadow one), shown in `state` and `list`.
    #[serde(default)]
    pub bundle: Option<PathBuf>,
}

/// A delegated container's OCI state as this runtime shows it: runsc's, with the isolation
/// annotation, the caller's bundle, and the creation time (runsc's state has none) from the
/// marker.
fn presented(root: &Path, id: &str, d: &Delegation, v: &mut serde_json::Value) {
    if !v["annotations"].is_object() {
        v["annotations"] = serde_json::json!({});
    }
    v["annotations"][ISOLATION_ANNOTATION] = "gvisor".into();
    if let Some(b) = &d.bundle {
        v["bundle"] = b.to_string_lossy().into_owned().into();
    }
    if v.get("created").is_none_or(|c| c.is_null()) {
        if let Ok(t) = std::fs::metadata(marker(root, id)).and_then(|m| m.modified()) {
            v["created"] = humantime::format_rfc3339_nanos(t).to_string().into();
        }
    }
}

fn dir(root: &Path) -> PathBuf {
    root.join(DIR)
}

fn marker(root: &Path, id: &str) -> PathBuf {
    dir(root).join(format!("{id}.json"))
}

fn shadow_bundle(root: &Path, id: &str) -> PathBuf {
    dir(root).join(format!("{id}.bundle"))
}

/// The delegation of container `id`, if runsc has it.
pub fn delegated(root: &Path, id: &str) -> Option<Delegation> {
    if watertight_oci::plan::validate_id(id).is_err() {
        return None;
    }
    let bytes = std::fs::read(marker(root, id)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The tier the policy chose for this node, cached in `<root>/@gvisor/choice.json` while the
/// policy file, its CVE data and the running kernel stay the same (deciding reads the CVE index:
/// tenths of a second that would otherwise be on every create).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// "namespaces" or "gvisor".
    pub tier: String,
    /// The policy's sentence.
    pub reason: String,
    key: String,
}

fn fingerprint(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) => format!(
            "{}:{}:{}.{}:{}",
            path.display(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ino()
        ),
        Err(_) => format!("{}:absent", path.display()),
    }
}

/// Asks the policy (or its cached answer).
pub fn choose(root: &Path, policy_path: &Path) -> anyhow::Result<Choice> {
    use watertight_kernel_audit::{IsolationTier, RiskPolicy};
    let policy = RiskPolicy::load(policy_path)
        .with_context(|| "runtime.toml [isolation] policy".to_string())?;
    let source = policy
        .cve_index
        .as_deref()
        .or(policy.cve_db.as_deref())
        .unwrap_or(Path::new(""));
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let key = format!(
        "{}|{}|{}|{}",
        fingerprint(policy_path),
        fingerprint(source),
        release.trim(),
        policy.kernel_version.as_deref().unwrap_or("")
    );
    let cache = dir(root).join("choice.json");
    if let Ok(bytes) = std::fs::read(&cache) {
        if let Ok(c) = serde_json::from_slice::<Choice>(&bytes) {
            if c.key == key {
                return Ok(c);
            }
        }
    }
    let decided = policy.decide(Path::new("/"))?;
    // The decision's pool has finished; its threads may not have left yet, and a namespace
    // container is forked next. If one is still here after this, the fork says so.
    watertight_sys::process::wait_until_single_threaded(std::time::Duration::from_secs(2))?;
    if decided.tier == IsolationTier::Vm {
        bail!(
            "runtime.toml [isolation] policy {}: escalate_to = \"vm\" is not a runtime tier: watertight-runc hands containers to gVisor only; use \"gvisor\"",
            policy_path.display()
        );
    }
    let c = Choice {
        tier: decided.tier.as_str().to_string(),
        reason: decided.reason,
        key,
    };
    // A cache that cannot be written costs the next create the decision again, nothing more.
    let _ = std::fs::create_dir_all(dir(root)).and_then(|()| {
        let tmp = cache.with_extension(format!("json.{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec(&c).unwrap_or_default())?;
        std::fs::rename(&tmp, &cache)
    });
    Ok(c)
}

/// What `create` was asked, as runsc needs it.
pub struct CreateRequest<'a> {
    /// `create`, or `run` (create, start and, unless detached, wait and delete).
    pub launch: Launch,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub preserve_fds: u32,
    pub floor_config: Option<&'a Path>,
    pub systemd_cgroup: bool,
    pub log: &'a [OsString],
}

/// Which command made the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// `create`: runsc creates it; `start` and the rest follow.
    Create,
    /// `run`: runsc runs it; with `detach` it returns once the container started (and stays
    /// delegated), else when it ended, and runsc has deleted it.
    Run {
        /// `--detach`.
        detach: bool,
    },
}

/// runsc's network flag for a config: its own network namespace without a path is an empty one
/// (runsc's netstack with loopback only, as runc would make it); one joined by path is used as
/// is (runsc's default); none at all is the host's network.
fn network_flag(config: &serde_json::Value) -> Option<&'static str> {
    let namespaces = config.pointer("/linux/namespaces")?.as_array()?;
    match namespaces.iter().find(|n| n["type"] == "network") {
        None => Some("--network=host"),
        Some(n)
            if n.get("path")
                .and_then(|p| p.as_str())
                .is_none_or(str::is_empty) =>
        {
            Some("--network=none")
        }
        Some(_) => None,
    }
}

/// Creates (or runs) container `req.id` with runsc: the floor's checks, a shadow bundle holding
/// the hardened config, the marker, then `runsc create` (or `run`). On failure, and after a
/// `run` that waited for the end, nothing is left.
pub fn create(
    root: &Path,
    req: &CreateRequest<'_>,
    settings_runsc: Option<&Path>,
    reason: &str,
) -> anyhow::Result<u8> {
    watertight_oci::plan::validate_id(req.id)?;
    if root.join(req.id).exists() || marker(root, req.id).exists() {
        bail!("container {} already exists", req.id);
    }
    if req.preserve_fds > 0 {
        bail!(
            "--preserve-fds {}: not passed to a container the isolation policy hands to gVisor (runsc create has no such option)",
            req.preserve_fds
        );
    }
    let runsc = watertight_gvisor::runsc::locate_at(settings_runsc)
        .map_err(|e| anyhow::anyhow!("the isolation policy chose gvisor ({reason}), but {e}"))?;
    let bundle = std::fs::canonicalize(req.bundle)
        .with_context(|| format!("bundle {}", req.bundle.display()))?;
    // The floor refuses what it refuses for any container (privileged, unsupported fields).
    let (_, mut hardened, _) = watertight_oci::plan::load_hardened(&bundle, req.floor_config)?;
    let root_path = hardened
        .pointer("/root/path")
        .and_then(|p| p.as_str())
        .unwrap_or("rootfs")
        .to_string();
    hardened["root"]["path"] =
        serde_json::Value::String(bundle.join(&root_path).to_string_lossy().into_owned());
    let notes = hardened["annotations"]
        .as_object_mut()
        .context("the hardened config has no annotations object")?;
    notes.insert(ISOLATION_ANNOTATION.into(), "gvisor".into());
    notes.insert(REASON_ANNOTATION.into(), reason.into());
    // What the floor's record says it added must be what this container gets: its second
    // seccomp filter and the violation response belong to the host kernel's path, which a
    // container on the Sentry does not take.
    let added_key = format!("{}added", watertight_floor::ANNOTATION_PREFIX);
    if let Some(list) = notes.get(&added_key).and_then(|v| v.as_str()) {
        if let Ok(items) = serde_json::from_str::<Vec<String>>(list) {
            let kept: Vec<String> = items
                .into_iter()
                .filter(|i| !i.starts_with("seccomp-filter"))
                .collect();
            notes.insert(added_key, serde_json::to_string(&kept)?.into());
        }
    }
    notes.insert(
        format!("{}on_violation", watertight_floor::ANNOTATION_PREFIX),
        "not applied: gvisor".into(),
    );

    let mut args = vec![
        "--root".to_string(),
        dir(root).join("runsc").to_string_lossy().into_owned(),
        format!("--platform={}", runsc.platform),
        "--oci-seccomp".to_string(),
    ];
    if let Some(flag) = network_flag(&hardened) {
        args.push(flag.to_string());
    }
    if req.systemd_cgroup {
        args.push("--systemd-cgroup".to_string());
    }
    let delegation = Delegation {
        runsc: runsc.path.clone(),
        args,
        bundle: Some(bundle.clone()),
    };

    std::fs::create_dir_all(dir(root))
        .with_context(|| format!("cannot make {}", dir(root).display()))?;
    // create_new: two creates of one id race here, and one loses.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(marker(root, req.id))
        .with_context(|| format!("container {} already exists", req.id))?;
    let shadow = shadow_bundle(root, req.id);
    let result = (|| -> anyhow::Result<u8> {
        f.write_all(&serde_json::to_vec(&delegation)?)?;
        std::fs::create_dir(&shadow)
            .with_context(|| format!("cannot make {}", shadow.display()))?;
        std::fs::write(
            shadow.join("config.json"),
            serde_json::to_vec_pretty(&hardened)?,
        )?;
        let mut cmd = Command::new(&delegation.runsc);
        cmd.args(&delegation.args).args(req.log);
        match req.launch {
            Launch::Create => cmd.arg("create"),
            Launch::Run { detach: false } => cmd.arg("run"),
            Launch::Run { detach: true } => cmd.args(["run", "--detach"]),
        };
        cmd.arg("--bundle").arg(&shadow);
        if let Some(p) = req.pid_file {
            cmd.arg("--pid-file").arg(p);
        }
        if let Some(s) = req.console_socket {
            cmd.arg("--console-socket").arg(s);
        }
        cmd.arg(req.id);
        let status = cmd
            .status()
            .with_context(|| format!("cannot run {}", delegation.runsc.display()))?;
        Ok(exit_code(status))
    })();
    // A container that is over (a `run` that returned) or never was (a failed create) leaves
    // nothing: not in runsc, not here.
    let over = req.launch == Launch::Run { detach: false };
    if over || !matches!(result, Ok(0)) {
        if runsc_has(&delegation, req.id) {
            let _ = Command::new(&delegation.runsc)
                .args(&delegation.args)
                .args(["delete", "--force", req.id])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&shadow);
        let _ = std::fs::remove_file(marker(root, req.id));
    }
    result
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c.clamp(0, 255) as u8,
        (None, Some(s)) => (128 + s).clamp(0, 255) as u8,
        _ => 1,
    }
}

/// runc's global options that take a value (`--root DIR` or `--root=DIR`).
const GLOBAL_WITH_VALUE: &[&str] = &["--root", "--log", "--log-format", "--config", "--criu"];
/// runc's global switches.
const GLOBAL_SWITCHES: &[&str] = &["--systemd-cgroup", "--debug"];

/// How many arguments a global option at `args[i]` spans (0: not a global option).
fn global_span(args: &[OsString], i: usize) -> usize {
    let a = args[i].to_string_lossy();
    if GLOBAL_SWITCHES.contains(&a.as_ref()) {
        return 1;
    }
    if GLOBAL_WITH_VALUE.contains(&a.as_ref()) {
        return 2.min(args.len() - i);
    }
    if GLOBAL_WITH_VALUE
        .iter()
        .chain(GLOBAL_SWITCHES)
        .chain(&["--rootless"])
        .any(|g| a.starts_with(&format!("{g}=")))
    {
        return 1;
    }
    if a == "--rootless" {
        let next_is_value = args
            .get(i + 1)
            .is_some_and(|n| n == "true" || n == "false" || n == "auto");
        return if next_is_value { 2 } else { 1 };
    }
    0
}

/// The command's own arguments: everything after the subcommand `name` in `argv` (argv[0] and,
/// for `watertight oci`, the `oci` word skipped), without runc's global options, which the
/// delegation supplies itself.
pub fn command_tail(argv: &[OsString], name: &str) -> Vec<OsString> {
    let mut i = 1;
    let mut found = None;
    while i < argv.len() {
        let span = global_span(argv, i);
        if span > 0 {
            i += span;
            continue;
        }
        if argv[i] == name {
            found = Some(i);
            break;
        }
        i += 1;
    }
    let Some(start) = found else {
        return Vec::new();
    };
    let mut tail = Vec::new();
    let mut i = start + 1;
    while i < argv.len() {
        // After `--` (exec's program) nothing is an option of ours.
        if argv[i] == "--" {
            tail.extend_from_slice(&argv[i..]);
            break;
        }
        let span = global_span(argv, i);
        if span > 0 {
            i += span;
            continue;
        }
        tail.push(argv[i].clone());
        i += 1;
    }
    tail
}

/// runsc's per-call logging options from ours (runc's own spelling, which runsc shares).
pub fn log_args(log: Option<&Path>, json: bool, debug: bool) -> Vec<OsString> {
    let mut out = Vec::new();
    if let Some(l) = log {
        out.push("--log".into());
        out.push(l.as_os_str().to_owned());
        out.push("--log-format".into());
        out.push(if json { "json" } else { "text" }.into());
    }
    if debug {
        out.push("--debug".into());
    }
    out
}

/// Runs `name` with its arguments on runsc for a delegated container. `delete` removes the
/// marker and the shadow bundle once runsc has deleted it; `state` adds the isolation
/// annotation; everything else replaces this process (signals, stdio and the exit code are
/// runsc's, as the caller expects of a runtime).
pub fn forward(
    root: &Path,
    id: &str,
    d: &Delegation,
    name: &str,
    log: &[OsString],
) -> anyhow::Result<u8> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let tail = command_tail(&argv, name);
    let mut cmd = Command::new(&d.runsc);
    cmd.args(&d.args).args(log).arg(name).args(&tail);
    match name {
        "delete" => {
            let status = cmd
                .status()
                .with_context(|| format!("cannot run {}", d.runsc.display()))?;
            let code = exit_code(status);
            let gone = code == 0 || !runsc_has(d, id);
            if gone {
                let _ = std::fs::remove_dir_all(shadow_bundle(root, id));
                let _ = std::fs::remove_file(marker(root, id));
            }
            Ok(code)
        }
        "state" => {
            let out = cmd
                .stderr(std::process::Stdio::inherit())
                .output()
                .with_context(|| format!("cannot run {}", d.runsc.display()))?;
            let code = exit_code(out.status);
            let mut stdout = std::io::stdout().lock();
            match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                Ok(mut v) if code == 0 && v.is_object() => {
                    presented(root, id, d, &mut v);
                    serde_json::to_writer_pretty(&mut stdout, &v)?;
                    writeln!(stdout)?;
                }
                _ => stdout.write_all(&out.stdout)?,
            }
            Ok(code)
        }
        _ => {
            let e = cmd.exec();
            Err(e).with_context(|| format!("cannot run {}", d.runsc.display()))
        }
    }
}

/// Whether runsc still knows container `id` (its state answers).
fn runsc_has(d: &Delegation, id: &str) -> bool {
    Command::new(&d.runsc)
        .args(&d.args)
        .args(["state", id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The OCI state of every delegated container (for `list`).
pub fn states(root: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir(root)) else {
        return out;
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .filter(|id| id != "choice")
        .collect();
    ids.sort();
    for id in ids {
        let Some(d) = delegated(root, &id) else {
            continue;
        };
        let out_json = Command::new(&d.runsc)
            .args(&d.args)
            .args(["state", &id])
            .stderr(std::process::Stdio::null())
            .output();
        if let Ok(o) = out_json {
            if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&o.stdout) {
                if o.status.success() {
                    presented(root, &id, &d, &mut v);
                    out.push(v);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_tail_drops_globals_wherever_they_are_and_keeps_the_program() {
        let a = argv(&[
            "watertight-runc",
            "--root",
            "/run/x",
            "--log=/l.json",
            "--log-format",
            "json",
            "--systemd-cgroup",
            "kill",
            "--all",
            "c1",
            "KILL",
        ]);
        assert_eq!(command_tail(&a, "kill"), argv(&["--all", "c1", "KILL"]));
        // `watertight oci`: the `oci` word is not the command; a global after the command too.
        let a = argv(&[
            "watertight",
            "oci",
            "exec",
            "--debug",
            "--pid-file",
            "/p",
            "c1",
            "--",
            "sh",
            "--root",
            "x",
        ]);
        assert_eq!(
            command_tail(&a, "exec"),
            argv(&["--pid-file", "/p", "c1", "--", "sh", "--root", "x"])
        );
        // A global's value that spells a command name is a value, not the command.
        let a = argv(&["runc", "--root", "state", "state", "c2"]);
        assert_eq!(command_tail(&a, "state"), argv(&["c2"]));
        let a = argv(&["runc", "--rootless", "true", "delete", "-f", "c3"]);
        assert_eq!(command_tail(&a, "delete"), argv(&["-f", "c3"]));
        let a = argv(&["runc", "--rootless", "delete", "c3"]);
        assert_eq!(command_tail(&a, "delete"), argv(&["c3"]));
        assert!(command_tail(&argv(&["runc", "list"]), "state").is_empty());
    }

    #[test]
    fn the_network_flag_follows_the_config() {
        let with = |ns: serde_json::Value| serde_json::json!({"linux": {"namespaces": ns}});
        assert_eq!(
            network_flag(&with(serde_json::json!([{"type": "network"}]))),
            Some("--network=none")
        );
        assert_eq!(
            network_flag(&with(
                serde_json::json!([{"type": "network", "path": "/var/run/netns/p"}])
            )),
            None
        );
        assert_eq!(
            network_flag(&with(serde_json::json!([{"type": "pid"}]))),
            Some("--network=host")
        );
    }

    #[test]
    fn a_marker_is_found_only_for_a_valid_id() {
        let root = tempfile::tempdir().unwrap();
        let d = Delegation {
            runsc: "/usr/bin/runsc".into(),
            args: vec!["--root".into(), "/r".into()],
            bundle: Some("/b".into()),
        };
        std::fs::create_dir(dir(root.path())).unwrap();
        std::fs::write(marker(root.path(), "c1"), serde_json::to_vec(&d).unwrap()).unwrap();
        assert_eq!(delegated(root.path(), "c1"), Some(d));
        assert_eq!(delegated(root.path(), "c2"), None);
        assert_eq!(delegated(root.path(), "../@gvisor/c1"), None);
        // The cache of the choice is no container.
        std::fs::write(dir(root.path()).join("choice.json"), "{}").unwrap();
        assert!(watertight_oci::state::list(root.path()).is_empty());
    }
}
