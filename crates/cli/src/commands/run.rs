//! `watertight run`: flags are overrides on top of a profile (the built-in default unless
//! `--profile`). Exit code: see `Verdict::exit_code` (the program's, like `timeout`; 125 for
//! watertight's own errors).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use watertight_sandbox::forensic::ForensicConfig;
use watertight_sandbox::layers::{env, secrets};
use watertight_sandbox::profile::{Bind, HostSockets, Isolation, OnViolation, TerminalEscapes};
use watertight_sandbox::{default_profile, ExitCodes, Job, Profile, Size, Status, Verdict};

/// `--isolation`: exactly a tier's name.
pub fn parse_isolation(s: &str) -> Result<Isolation, String> {
    s.parse()
}

/// The text after `watertight run --help`'s flags: sizes, exit status.
fn after_help() -> String {
    format!(
        "SIZE: a number of bytes with an optional {} suffix (powers of 1024), e.g. 256M.\n\n\
Exit status (--exit-codes program, the default): the program's own; 128+N if signal N \
killed it; 124 time limit; 137 memory limit; 153 output limit; 159 security violation; 125 watertight failed; \
126/127 command not executable / not found. The program can exit with any of these itself: --result is the \
authority. With --exit-codes verdict: OK 0, RE 1, SG 2, TO 3, ML 4, OL 5, SV 6, XX 125 (126/127 as above).",
        watertight_sandbox::size::UNITS_TEXT
    )
}

#[derive(clap::Args)]
#[command(after_help = after_help())]
pub struct Args {
    /// The boundary between the program and the host kernel: `namespaces` (watertight's own
    /// layers on the shared kernel; the default), `gvisor` (gVisor's runsc, a user-space
    /// kernel, inside watertight's cgroup and limits; docs/isolation.md) or `vm` (a kernel of
    /// its own in a QEMU microvm guest; KVM when it works, else TCG; docs/isolation-vm.md).
    /// Overrides the profile's `isolation`.
    #[arg(long, value_name = "namespaces|gvisor|vm", value_parser = parse_isolation)]
    isolation: Option<Isolation>,
    /// Profile file (TOML): only the keys it changes, over the built-in profile or the file its
    /// `extends` names (`watertight profile show --effective FILE` prints the result); default:
    /// the built-in profile.
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// Use DIR as the sandbox's root (read-only) instead of the host's own directories.
    #[arg(long, value_name = "DIR")]
    rootfs: Option<PathBuf>,
    /// With --rootfs: writes anywhere go to a throwaway layer that vanishes with the sandbox.
    #[arg(long)]
    writable_root: bool,
    /// Bind a host path read-write at DST.
    #[arg(long, value_name = "SRC:DST")]
    bind: Vec<OsString>,
    /// Bind a host path read-only at DST.
    #[arg(long, value_name = "SRC:DST")]
    bind_ro: Vec<OsString>,
    /// Show host FILE read-only at /run/secrets/NAME (memory-backed, never propagated). FILE
    /// must be a regular file, reached without symbolic links, at most --secret-size-limit.
    #[arg(long, value_name = "NAME=FILE")]
    secret: Vec<OsString>,
    /// Largest --secret file, e.g. 4M (default 1M).
    #[arg(long, value_name = "SIZE")]
    secret_size_limit: Option<String>,
    /// Unix sockets under bound directories (and the bound working directory): `mask` hides
    /// each one (a host service is not reachable through a bind), `allow` binds them as they are.
    #[arg(long, value_enum, value_name = "MODE")]
    host_sockets: Option<HostSocketsArg>,
    /// Docker/OCI seccomp JSON profile instead of the built-in allowlist.
    #[arg(long, value_name = "FILE")]
    seccomp: Option<PathBuf>,
    /// What a violation-class syscall (mount, unshare, ptrace, bpf, ...) does.
    #[arg(long, value_enum, value_name = "MODE")]
    on_violation: Option<ViolationArg>,
    /// Network: `none` (loopback only, the default) or `bridge:BR` (a veth on bridge BR with
    /// per-port anti-spoofing; needs --ip).
    #[arg(long, value_name = "none|bridge:BR", default_value = "none")]
    net: String,
    /// The sandbox's address on the bridge, with prefix (repeatable: IPv4 and IPv6).
    #[arg(long, value_name = "ADDR/PREFIX")]
    ip: Vec<String>,
    /// A permanent neighbour entry inside the sandbox, e.g. 10.0.0.53=02:42:ac:11:00:35.
    #[arg(long, value_name = "IP=MAC")]
    static_neigh: Vec<String>,
    /// Signed manifest of the --rootfs tree: verify it, then allow executing only what was verified.
    #[arg(long, value_name = "FILE", requires = "pubkey")]
    manifest: Option<PathBuf>,
    /// Public key the manifest must be signed with.
    #[arg(long, value_name = "FILE", requires = "manifest")]
    pubkey: Option<PathBuf>,
    /// Run even when this kernel lacks some integrity enforcement layer (says which).
    #[arg(long)]
    allow_weaker_integrity: bool,
    /// Let the program load observe-only eBPF programs (tracepoint, raw_tracepoint) through a
    /// BPF token from a delegated bpffs at /sys/fs/bpf, without CAP_BPF on the host; each load
    /// is vetted by the supervisor (observing helpers only). It can then watch every process on
    /// the host (docs/bpf-observe.md).
    #[arg(long)]
    bpf_observe: bool,
    /// Write the audit trail (denied syscalls, limits hit, evidence) as JSON Lines to FILE.
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// Bytes this run writes to the --events file at most, e.g. 1M (default 16M, at least 4K).
    #[arg(long, value_name = "SIZE")]
    events_limit: Option<String>,
    /// With --on-violation deny: kill the sandbox (status SV) at N violations; 0 for no limit
    /// (default 1000).
    #[arg(long, value_name = "N")]
    max_violations: Option<u64>,
    /// With --on-violation forensic: where evidence bundles go.
    #[arg(long, value_name = "DIR", default_value = watertight_sandbox::forensic::DEFAULT_EVIDENCE_DIR)]
    evidence_dir: PathBuf,
    /// With --on-violation forensic: the host's evidence signing key (created if missing).
    #[arg(long, value_name = "FILE", default_value = watertight_sandbox::forensic::DEFAULT_KEY_PATH)]
    evidence_key: PathBuf,
    /// With --on-violation forensic: most bytes one evidence bundle takes, e.g. 200M (beyond it
    /// the evidence is cut and marked truncated) [default: /tmp + /dev/shm size (+ /tmp size
    /// again with --writable-root) + 16M].
    #[arg(long, value_name = "SIZE")]
    evidence_limit: Option<String>,
    /// CPU-time limit of the whole sandbox, seconds (verdict TO); the wall-time limit is then
    /// 2 x it + 1 unless --wall-time-limit.
    #[arg(long, value_name = "S")]
    time_limit: Option<f64>,
    /// Wall-time limit, seconds, or `none` (also 0) for no limit (verdict TO; default: the
    /// profile's, 10 in the built-in one; with --time-limit T: 2T+1).
    #[arg(long, value_name = "S|none")]
    wall_time_limit: Option<String>,
    /// Memory limit of the whole sandbox, e.g. 256M (verdict ML).
    #[arg(long, value_name = "SIZE")]
    memory_limit: Option<String>,
    /// Task limit of the whole sandbox.
    #[arg(long, value_name = "N")]
    pids_limit: Option<u64>,
    /// CPU bandwidth in cores, e.g. 0.5.
    #[arg(long, value_name = "CORES")]
    cpus: Option<f64>,
    /// Bytes the program may write to stdout+stderr, e.g. 1M (verdict OL).
    #[arg(long, value_name = "SIZE")]
    output_limit: Option<String>,
    /// When the caller has a terminal: escape sequences from the program (titles, clipboard
    /// writes, cursor and mode changes) are removed (`strip`, keeping plain SGR colours) or
    /// passed as written (`pass`).
    #[arg(long, value_enum, value_name = "MODE")]
    terminal_escapes: Option<EscapesArg>,
    /// uid (and gid, unless --gid) inside the sandbox.
    #[arg(long, value_name = "N")]
    uid: Option<u32>,
    #[arg(long, value_name = "N")]
    gid: Option<u32>,
    /// Working directory inside the sandbox (default: /box with --box, the caller's with
    /// --bind-cwd, else /tmp).
    #[arg(long, value_name = "DIR")]
    workdir: Option<PathBuf>,
    /// Show the caller's working directory read-only at the same path and start there
    /// (`[root] bind_cwd`; off by default: the program cannot read the caller's files).
    #[arg(long)]
    bind_cwd: bool,
    /// The program's own writable directory: host DIR (made mode 0700 if missing; its parent
    /// must not be searchable by other users) appears at /box, the working directory; what the
    /// program makes there belongs to the caller (an idmapped mount), setuid/setgid bits are
    /// cleared after the run.
    #[arg(long = "box", value_name = "DIR")]
    box_dir: Option<PathBuf>,
    /// With --box: the box is a tmpfs of SIZE (e.g. 16M) over DIR, in the supervisor's own
    /// mount namespace: DIR's contents are copied in before and back after the run; a write
    /// past SIZE fails with ENOSPC (the verdict's box_full says so); counted against the memory
    /// limit too.
    #[arg(long, value_name = "SIZE", requires = "box_dir")]
    box_size: Option<String>,
    /// The program's stdin: FILE, opened by watertight as the caller before the sandbox starts.
    #[arg(long, value_name = "FILE")]
    stdin: Option<PathBuf>,
    /// The program's stdout into FILE (created or truncated by watertight as the caller, written
    /// through; counted against --output-limit).
    #[arg(long, value_name = "FILE")]
    stdout: Option<PathBuf>,
    /// The program's stderr into FILE, like --stdout (the same FILE as --stdout: one file for
    /// both, in order).
    #[arg(long, value_name = "FILE")]
    stderr: Option<PathBuf>,
    /// Set an environment variable inside.
    #[arg(long, value_name = "K=V")]
    env: Vec<OsString>,
    /// Write the verdict as JSON to FILE (`-` for stderr).
    #[arg(long, value_name = "FILE")]
    result: Option<PathBuf>,
    /// What the exit code reports: `program` (its own exit code, like timeout) or `verdict`
    /// (one code per status, none of which the program can forge).
    #[arg(long, value_enum, value_name = "MODE", default_value = "program")]
    exit_codes: ExitCodesArg,
    /// Print a one-line verdict to stderr.
    #[arg(short, long)]
    verbose: bool,
    /// The program and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum HostSocketsArg {
    /// Hide every host socket the sandbox could reach under a bound directory.
    Mask,
    /// Bind host sockets as they are.
    Allow,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExitCodesArg {
    /// The program's own exit code; 124/125/137/153/159 for watertight's verdicts.
    Program,
    /// OK 0, RE 1, SG 2, TO 3, ML 4, OL 5, SV 6, XX 125.
    Verdict,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ViolationArg {
    /// The call fails with EPERM and the program goes on.
    Deny,
    /// The sandbox is killed (status SV).
    Kill,
    /// Freeze, capture a signed evidence bundle, kill (status SV).
    Forensic,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum EscapesArg {
    /// Only text, tab/newline/CR/backspace/bell and SGR colours reach the terminal.
    Strip,
    /// Every byte as the program wrote it (for a trusted full-screen program).
    Pass,
}

/// A caller's value shown in a message: quoted, every control or non-UTF-8 byte escaped.
fn shown(s: impl AsRef<OsStr>) -> String {
    watertight_sys::text::quote(s.as_ref().as_bytes())
}

fn split_bind(spec: &OsStr, read_only: bool) -> anyhow::Result<Bind> {
    let b = spec.as_bytes();
    let colon = b.iter().position(|&c| c == b':');
    let (src, dst) = match colon {
        Some(i) if i > 0 && i + 1 < b.len() => (&b[..i], &b[i + 1..]),
        _ => anyhow::bail!("--bind {}: expected SRC:DST", shown(spec)),
    };
    Ok(Bind {
        source: Path::new(OsStr::from_bytes(src)).into(),
        target: Path::new(OsStr::from_bytes(dst)).into(),
        read_only,
    })
}

/// A path the profile holds as text: refused (not mangled) when it is not UTF-8.
fn utf8_path(flag: &str, path: &Path) -> anyhow::Result<String> {
    path.to_str().map(str::to_owned).ok_or_else(|| {
        anyhow::anyhow!(
            "--{flag} {}: the path is not valid UTF-8, which a profile cannot hold; rename it or pass a UTF-8 path (e.g. a symlink) to it",
            shown(path)
        )
    })
}

fn size(flag: &str, s: &str) -> anyhow::Result<Size> {
    s.parse::<Size>()
        .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

/// `--wall-time-limit`: seconds, or `none`/`0` for no limit.
fn wall_time(s: &str) -> anyhow::Result<Option<f64>> {
    if s == "none" {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(0.0) => Ok(None),
        Ok(v) => seconds("wall-time-limit", v).map(Some),
        Err(_) => anyhow::bail!(
            "--wall-time-limit {}: expected a number of seconds, or none (also 0) for no limit",
            shown(s)
        ),
    }
}

fn seconds(flag: &str, v: f64) -> anyhow::Result<f64> {
    anyhow::ensure!(
        v > 0.0 && v.is_finite(),
        "--{flag} {v}: must be a positive number of seconds"
    );
    Ok(v)
}

/// The effective profile: the base one with every flag applied.
pub fn effective_profile(a: &Args) -> anyhow::Result<Profile> {
    let mut p = match &a.profile {
        Some(path) => Profile::load(path)?,
        None => default_profile(),
    };
    if let Some(dir) = &a.rootfs {
        let dir = std::fs::canonicalize(dir).map_err(|e| {
            anyhow::anyhow!("--rootfs {}: {e} (pass an existing directory)", shown(dir))
        })?;
        p.root.source = utf8_path("rootfs", &dir)?;
    }
    if a.writable_root {
        p.root.writable = true;
    }
    for b in &a.bind {
        p.binds.push(split_bind(b, false)?);
    }
    for b in &a.bind_ro {
        p.binds.push(split_bind(b, true)?);
    }
    if let Some(h) = a.host_sockets {
        p.root.host_sockets = match h {
            HostSocketsArg::Mask => HostSockets::Mask,
            HostSocketsArg::Allow => HostSockets::Allow,
        };
    }
    if let Some(s) = &a.seccomp {
        p.seccomp.profile = utf8_path("seccomp", s)?;
    }
    if let Some(v) = a.on_violation {
        p.seccomp.on_violation = match v {
            ViolationArg::Deny => OnViolation::Deny,
            ViolationArg::Kill => OnViolation::Kill,
            ViolationArg::Forensic => OnViolation::Forensic,
        };
    }
    if let Some(n) = a.max_violations {
        p.seccomp.max_violations = n;
    }
    if a.bpf_observe {
        p.bpf.observe = true;
    }
    if let Some(i) = a.isolation {
        p.isolation = i;
    }
    if let Some(l) = &a.events_limit {
        p.events.limit = size("events-limit", l)?;
        anyhow::ensure!(
            p.events.limit.bytes() >= watertight_sandbox::events::MIN_FILE_LIMIT,
            "--events-limit {l}: must be at least 4K"
        );
    }
    if let Some(t) = a.time_limit {
        p.limits.cpu_time = Some(seconds("time-limit", t)?);
        if a.wall_time_limit.is_none() {
            // 2T+1: the flag overrides the profile's wall limit (the built-in 10 s would
            // otherwise end a longer CPU limit first).
            p.limits.wall_time = Some(2.0 * t + 1.0);
        }
    }
    if let Some(t) = &a.wall_time_limit {
        p.limits.wall_time = wall_time(t)?;
    }
    if a.bind_cwd {
        p.root.bind_cwd = true;
    }
    if let Some(m) = &a.memory_limit {
        p.limits.memory = Some(size("memory-limit", m)?);
    }
    if let Some(n) = a.pids_limit {
        anyhow::ensure!(n > 0, "--pids-limit must be at least 1");
        p.limits.pids = Some(n);
    }
    if let Some(c) = a.cpus {
        p.limits.cpus = Some(c);
    }
    if let Some(o) = &a.output_limit {
        p.limits.output = Some(size("output-limit", o)?);
    }
    if let Some(e) = a.terminal_escapes {
        p.terminal.escapes = match e {
            EscapesArg::Strip => TerminalEscapes::Strip,
            EscapesArg::Pass => TerminalEscapes::Pass,
        };
    }
    if let Some(u) = a.uid {
        p.identity.uid = u;
        p.identity.gid = a.gid.unwrap_or(u);
    } else if let Some(g) = a.gid {
        p.identity.gid = g;
    }
    p.validate().map_err(|m| anyhow::anyhow!("{m}"))?;
    Ok(p)
}

fn sandbox_hint() -> String {
    format!("wt{}", std::process::id())
}

/// `--net`, `--ip`, `--static-neigh` as a bridge-port request (None for loopback only).
fn bridge_port(a: &Args, hint: &str) -> anyhow::Result<Option<watertight_net::SandboxPortRequest>> {
    let bridge = match a.net.as_str() {
        "none" => {
            anyhow::ensure!(
                a.ip.is_empty() && a.static_neigh.is_empty(),
                "--ip and --static-neigh need --net bridge:BR"
            );
            return Ok(None);
        }
        other => other
            .strip_prefix("bridge:")
            .filter(|b| !b.is_empty())
            .ok_or_else(|| anyhow::anyhow!("--net {other:?}: expected none or bridge:BRIDGE"))?,
    };
    anyhow::ensure!(
        !a.ip.is_empty(),
        "--net bridge:{bridge} needs --ip ADDR/PREFIX (e.g. 10.0.0.10/24)"
    );
    let addresses =
        a.ip.iter()
            .map(|s| {
                s.parse::<watertight_net::IpNet>()
                    .map_err(|e| anyhow::anyhow!("--ip {s:?}: {e} (expected ADDR/PREFIX)"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
    let mut req = watertight_net::SandboxPortRequest::new(bridge, addresses, hint);
    for s in &a.static_neigh {
        req.static_neighbours
            .push(watertight_net::sandbox::parse_static_neighbour(s)?);
    }
    Ok(Some(req))
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let profile = effective_profile(&a)?;
    if profile.isolation == Isolation::Vm {
        return run_vm(&a, profile);
    }
    let verdict = verdict_of(&a, profile)?;
    if let Some(path) = &a.result {
        let json = serde_json::to_string_pretty(&verdict)? + "\n";
        if path.as_os_str() == "-" {
            eprint!("{json}");
        } else {
            std::fs::write(path, json).with_context(|| format!("write result {}", shown(path)))?;
        }
    }
    if verdict.status == Status::XX || (verdict.status == Status::SV && !a.verbose) {
        // Messages quote what they take from the caller or the sandbox; this keeps any other
        // control character from reaching the reader's terminal or log as well.
        eprintln!(
            "watertight: {}",
            watertight_sys::text::escape_controls(
                verdict.message.as_deref().unwrap_or("internal error")
            )
        );
    } else if a.verbose {
        eprintln!(
            "watertight: {:?} exit={} signal={} cpu={:.3}s wall={:.3}s rss={}KiB{}",
            verdict.status,
            verdict.exit_code.map_or("-".into(), |c| c.to_string()),
            verdict.signal.map_or("-".into(), |s| s.to_string()),
            verdict.cpu_time_s,
            verdict.wall_time_s,
            verdict.max_rss_kb,
            verdict
                .message
                .as_ref()
                .map(|m| format!(" ({})", watertight_sys::text::escape_controls(m)))
                .unwrap_or_default()
        );
    }
    Ok(verdict.exit_code_as(match a.exit_codes {
        ExitCodesArg::Program => ExitCodes::Program,
        ExitCodesArg::Verdict => ExitCodes::Verdict,
    }))
}

/// The verdict of `a`'s program under `profile` (a namespace or gVisor profile; the VM tier
/// goes through `run_vm`): the job built from the flags, run, the sized box copied back. Shared
/// by `run` and by `batch`'s step workers (commands/batch/worker.rs), so a batch step is
/// isolated exactly as `run` isolates it.
pub fn verdict_of(a: &Args, profile: Profile) -> anyhow::Result<Verdict> {
    let env = a
        .env
        .iter()
        .map(|s| env::parse_assignment(s))
        .collect::<Result<Vec<_>, _>>()?;
    let secrets = read_secrets(a)?;
    let evidence_limit = match &a.evidence_limit {
        Some(s) => {
            let n = size("evidence-limit", s)?.bytes();
            anyhow::ensure!(
                n > 0,
                "--evidence-limit {s}: must be more than 0 bytes (e.g. 200M)"
            );
            Some(n)
        }
        None => None,
    };
    let forensics = ForensicConfig::for_profile(
        &profile,
        a.evidence_dir.clone(),
        a.evidence_key.clone(),
        evidence_limit,
    );
    let bridge_port = bridge_port(a, &sandbox_hint())?;
    let integrity = match (&a.manifest, &a.pubkey) {
        (Some(manifest), Some(pubkey)) => {
            let report = watertight_integrity::probe_enforcement();
            let layers: Vec<String> = report
                .layers
                .iter()
                .map(|l| {
                    format!(
                        "{} {}",
                        l.layer.name(),
                        if l.available { "on" } else { "off" }
                    )
                })
                .collect();
            eprintln!(
                "watertight: integrity layers: noexec-writable on, {}",
                layers.join(", ")
            );
            Some(watertight_sandbox::layers::integrity::IntegrityRequest {
                manifest: manifest.clone(),
                pubkey: pubkey.clone(),
                allow_weaker: a.allow_weaker_integrity,
                report,
            })
        }
        _ => None,
    };
    let job = Job {
        profile,
        argv: a.command.clone(),
        workdir: a.workdir.clone(),
        box_dir: a.box_dir.clone(),
        stdio: watertight_sandbox::stdio::StdioPaths {
            stdin: a.stdin.clone(),
            stdout: a.stdout.clone(),
            stderr: a.stderr.clone(),
        },
        env,
        secrets,
        events: a.events.clone(),
        forensics,
        bridge_port,
        integrity,
    };
    // The tmpfs box before anything else of the sandbox: the process is single-threaded here.
    let sized_box = match (&a.box_dir, &a.box_size) {
        (Some(dir), Some(s)) => Some(watertight_sandbox::layers::workbox::SizedBox::mount(
            dir,
            size("box-size", s)?.bytes(),
        )?),
        _ => None,
    };
    let mut verdict = run_isolated(&job, a.verbose)?;
    if let Some(b) = &sized_box {
        verdict.box_full = Some(b.full());
        b.copy_back()?;
    }
    Ok(verdict)
}

/// The dispatch point between isolation tiers: each tier takes the same job (profile, files,
/// limits) and returns the same verdict. A new tier is one arm here.
fn run_isolated(job: &Job, verbose: bool) -> anyhow::Result<Verdict> {
    match job.profile.isolation {
        Isolation::Namespaces => Ok(watertight_sandbox::run(job)?),
        Isolation::Gvisor => {
            let tier = watertight_gvisor::Gvisor::new(job)?;
            if verbose {
                let r = tier.runsc();
                eprintln!(
                    "watertight: isolation gvisor: {} on platform {} ({})",
                    r.path.display(),
                    r.platform,
                    r.platform_reason
                );
            }
            Ok(tier.run()?)
        }
        // `run` hands the VM tier to `run_vm` before a job is built.
        Isolation::Vm => anyhow::bail!("the VM tier runs through run_vm, not a namespace job"),
    }
}

/// `--isolation vm`: the program in a guest of its own (crates/vm). Flags that reach host
/// resources the guest has no way to (read-write binds, boxes, secrets, bridges, host files
/// for the streams, the events file, forensic capture, integrity, BPF) are refused rather
/// than silently dropped.
/// `--secret NAME=FILE`s, read (each at most --secret-size-limit).
fn read_secrets(a: &Args) -> anyhow::Result<Vec<secrets::Secret>> {
    let secret_size_limit = match &a.secret_size_limit {
        Some(s) => size("secret-size-limit", s)?.bytes(),
        None => secrets::DEFAULT_SIZE_LIMIT,
    };
    Ok(a.secret
        .iter()
        .map(|s| secrets::parse(s, secret_size_limit))
        .collect::<Result<Vec<_>, _>>()?)
}

fn run_vm(a: &Args, profile: Profile) -> anyhow::Result<u8> {
    let unsupported = [
        // The guest's root is the host's, read-only: --bind-ro and --rootfs name the same
        // paths there, a read-write bind could write nothing back.
        ("--bind", !a.bind.is_empty()),
        ("--box", a.box_dir.is_some()),
        ("--net", a.net != "none"),
        ("--manifest", a.manifest.is_some()),
        ("--bpf-observe", a.bpf_observe),
        ("--bind-cwd", profile.root.bind_cwd),
        (
            "--on-violation forensic",
            profile.seccomp.on_violation == OnViolation::Forensic,
        ),
    ];
    if let Some((flag, _)) = unsupported.iter().find(|(_, used)| *used) {
        anyhow::bail!("{flag} is not supported with --isolation vm yet (docs/isolation-vm.md); drop it or use --isolation namespaces");
    }
    let env = a
        .env
        .iter()
        .map(|s| env::parse_assignment(s))
        .collect::<Result<Vec<_>, _>>()?;
    // Opened as for the namespace tier (same checks, same one-line errors), before QEMU starts.
    let stdio = watertight_sandbox::stdio::StdioPaths {
        stdin: a.stdin.clone(),
        stdout: a.stdout.clone(),
        stderr: a.stderr.clone(),
    }
    .open()?;
    let [out, err] = stdio.output;
    let secrets = read_secrets(a)?;
    // Appended to, as the namespace tier's event log is.
    let events = a
        .events
        .as_deref()
        .map(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("open event log {} (--events)", shown(p)))
        })
        .transpose()?;
    let outcome = watertight_vm::run(&watertight_vm::VmRequest {
        profile,
        argv: a.command.clone(),
        env,
        workdir: a.workdir.clone(),
        events,
        secrets,
        stdin: stdio.stdin.map(std::fs::File::from),
        output: [out.map(std::fs::File::from), err.map(std::fs::File::from)],
    })?;
    if let Some(path) = &a.result {
        let json = serde_json::to_string_pretty(&outcome.verdict)? + "\n";
        if path.as_os_str() == "-" {
            eprint!("{json}");
        } else {
            std::fs::write(path, json).with_context(|| format!("write result {}", shown(path)))?;
        }
    }
    let message = outcome.verdict["message"].as_str();
    if outcome.status == Status::XX || a.verbose {
        eprintln!(
            "watertight: {:?} (vm, {}){}",
            outcome.status,
            outcome.verdict["accelerator"].as_str().unwrap_or("?"),
            message
                .map(|m| format!(": {}", watertight_sys::text::escape_controls(m)))
                .unwrap_or_default()
        );
    }
    Ok(watertight_sandbox::verdict::exit_code_of(
        outcome.status,
        outcome.exit_code,
        outcome.signal,
        match a.exit_codes {
            ExitCodesArg::Program => ExitCodes::Program,
            ExitCodesArg::Verdict => ExitCodes::Verdict,
        },
    ))
}

/// How `run` is called, for a tip in its usage errors.
const RUN_USAGE: &str = "watertight run [OPTIONS] -- PROGRAM [ARGS...]";

/// `e` (a usage error of `run`) with a tip on where the program goes, when the arguments have no
/// `--`: `watertight run ./a.out -x` is an error because everything before `--` is an option of
/// watertight's. When the arguments parse with `--` put before the first unexpected one
/// (`parses` says whether a list of arguments does), the tip shows that command line too.
pub fn with_program_hint(
    mut e: clap::Error,
    args: &[OsString],
    parses: impl Fn(&[OsString]) -> bool,
) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if args.iter().any(|a| a == "--") {
        return e;
    }
    let unexpected = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let mut tips = match e.kind() {
        ErrorKind::MissingRequiredArgument => {
            vec![format!("name the program after `--`: {RUN_USAGE}")]
        }
        // An unknown option (`-x`) is more likely a typo: clap's own tip says how to pass it on.
        ErrorKind::UnknownArgument
            if !unexpected.as_deref().is_some_and(|a| a.starts_with('-')) =>
        {
            vec![format!(
                "the program and its arguments go after `--`: {RUN_USAGE}"
            )]
        }
        _ => return e,
    };
    // The first place `--` can go that makes the whole line parse: the program's first word is
    // then one of the arguments clap did not expect.
    let fixed = unexpected.and_then(|arg| {
        (0..args.len())
            .filter(|&i| args[i] == arg.as_str())
            .map(|i| {
                let mut v = args[..i].to_vec();
                v.push("--".into());
                v.extend_from_slice(&args[i..]);
                v
            })
            .find(|v| parses(v))
    });
    if let Some(line) = fixed.and_then(|v| shell_line(&v)) {
        tips.push(format!("here: watertight run {line}"));
    }
    let mut list: Vec<clap::builder::StyledStr> = match e.get(ContextKind::Suggested) {
        Some(ContextValue::StyledStrs(v)) => v.clone(),
        _ => Vec::new(),
    };
    list.extend(tips.into_iter().map(Into::into));
    e.insert(ContextKind::Suggested, ContextValue::StyledStrs(list));
    e
}

/// `args` as one shell command line (single quotes where a word needs them); `None` when a word
/// is not UTF-8 or holds a control character, which a line to copy could not show faithfully.
fn shell_line(args: &[OsString]) -> Option<String> {
    let words = args
        .iter()
        .map(|a| {
            let s = a.to_str()?;
            if s.chars().any(char::is_control) {
                return None;
            }
            let plain = !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b));
            Some(if plain {
                s.to_owned()
            } else {
                format!("'{}'", s.replace('\'', r"'\''"))
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_time_takes_seconds_or_none() {
        assert_eq!(wall_time("none").unwrap(), None);
        assert_eq!(wall_time("0").unwrap(), None);
        assert_eq!(wall_time("2.5").unwrap(), Some(2.5));
        for bad in ["-1", "soon", "inf"] {
            let e = wall_time(bad).unwrap_err().to_string();
            assert!(e.starts_with("--wall-time-limit"), "{e}");
        }
    }

    #[test]
    fn shell_lines_quote_only_what_needs_it() {
        let args: Vec<OsString> = ["--env", "A=b c", "--", "./a.out", "it's", ""]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            shell_line(&args).unwrap(),
            r"--env 'A=b c' -- ./a.out 'it'\''s' ''"
        );
        assert_eq!(shell_line(&[OsString::from("a\nb")]), None);
        use std::os::unix::ffi::OsStringExt;
        assert_eq!(shell_line(&[OsString::from_vec(vec![0xff])]), None);
    }
}
