//! `watertight run`: flags are overrides on top of a profile (the built-in default unless
//! `--profile`). Exit code: see `Verdict::exit_code` (the program's, like `timeout`; 125 for
//! watertight's own errors).

use std::path::PathBuf;

use anyhow::Context;
use watertight_sandbox::forensic::ForensicConfig;
use watertight_sandbox::layers::{env, secrets};
use watertight_sandbox::profile::{Bind, OnViolation};
use watertight_sandbox::{default_profile, Job, Profile, Size, Status};

#[derive(clap::Args)]
#[command(
    after_help = "Exit status: the program's own; 128+N if signal N killed it; 124 time limit; 137 memory \
limit; 153 output limit; 159 security violation; 125 watertight failed; 126/127 command not executable / not found."
)]
pub struct Args {
    /// Profile file (TOML); default: the built-in profile (`watertight profile show default`).
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
    bind: Vec<String>,
    /// Bind a host path read-only at DST.
    #[arg(long, value_name = "SRC:DST")]
    bind_ro: Vec<String>,
    /// Show host FILE read-only at /run/secrets/NAME (memory-backed, never propagated).
    #[arg(long, value_name = "NAME=FILE")]
    secret: Vec<String>,
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
    /// CPU-time limit of the whole sandbox, seconds (verdict TO).
    #[arg(long, value_name = "S")]
    time_limit: Option<f64>,
    /// Wall-time limit, seconds (default with --time-limit: 2 x it + 1).
    #[arg(long, value_name = "S")]
    wall_time_limit: Option<f64>,
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
    /// uid (and gid, unless --gid) inside the sandbox.
    #[arg(long, value_name = "N")]
    uid: Option<u32>,
    #[arg(long, value_name = "N")]
    gid: Option<u32>,
    /// Working directory inside the sandbox.
    #[arg(long, value_name = "DIR")]
    workdir: Option<PathBuf>,
    /// Set an environment variable inside.
    #[arg(long, value_name = "K=V")]
    env: Vec<String>,
    /// Write the verdict as JSON to FILE (`-` for stderr).
    #[arg(long, value_name = "FILE")]
    result: Option<PathBuf>,
    /// Print a one-line verdict to stderr.
    #[arg(short, long)]
    verbose: bool,
    /// The program and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
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

fn split_bind(spec: &str, read_only: bool) -> anyhow::Result<Bind> {
    let (src, dst) = spec
        .split_once(':')
        .with_context(|| format!("--bind {spec:?}: expected SRC:DST"))?;
    anyhow::ensure!(
        !src.is_empty() && !dst.is_empty(),
        "--bind {spec:?}: expected SRC:DST"
    );
    Ok(Bind {
        source: src.into(),
        target: dst.into(),
        read_only,
    })
}

fn size(flag: &str, s: &str) -> anyhow::Result<Size> {
    s.parse::<Size>()
        .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

fn seconds(flag: &str, v: f64) -> anyhow::Result<f64> {
    anyhow::ensure!(
        v > 0.0 && v.is_finite(),
        "--{flag} {v}: must be a positive number of seconds"
    );
    Ok(v)
}

/// The effective profile: the base one with every flag applied.
fn effective_profile(a: &Args) -> anyhow::Result<Profile> {
    let mut p = match &a.profile {
        Some(path) => Profile::load(path)?,
        None => default_profile(),
    };
    if let Some(dir) = &a.rootfs {
        let dir = std::fs::canonicalize(dir).map_err(|e| {
            anyhow::anyhow!(
                "--rootfs {}: {e} (pass an existing directory)",
                dir.display()
            )
        })?;
        p.root.source = dir.display().to_string();
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
    if let Some(s) = &a.seccomp {
        p.seccomp.profile = s.display().to_string();
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
    if let Some(l) = &a.events_limit {
        p.events.limit = size("events-limit", l)?;
        anyhow::ensure!(
            p.events.limit.bytes() >= watertight_sandbox::events::MIN_FILE_LIMIT,
            "--events-limit {l}: must be at least 4K"
        );
    }
    if let Some(t) = a.time_limit {
        p.limits.cpu_time = Some(seconds("time-limit", t)?);
        if a.wall_time_limit.is_none() && p.limits.wall_time.is_none() {
            p.limits.wall_time = Some(2.0 * t + 1.0);
        }
    }
    if let Some(t) = a.wall_time_limit {
        p.limits.wall_time = Some(seconds("wall-time-limit", t)?);
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
    let env = a
        .env
        .iter()
        .map(|s| env::parse_assignment(s))
        .collect::<Result<Vec<_>, _>>()?;
    let secrets = a
        .secret
        .iter()
        .map(|s| secrets::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut forensics = ForensicConfig {
        evidence_dir: a.evidence_dir.clone(),
        key_path: a.evidence_key.clone(),
        ..Default::default()
    };
    // Read-write binds are writable places too: their contents go into the evidence.
    for (i, b) in profile.binds.iter().filter(|b| !b.read_only).enumerate() {
        forensics
            .writable
            .push((format!("bind{i}"), b.target.clone()));
    }
    let bridge_port = bridge_port(&a, &sandbox_hint())?;
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
        env,
        secrets,
        events: a.events.clone(),
        forensics,
        bridge_port,
        integrity,
    };
    let verdict = watertight_sandbox::run(&job)?;
    if let Some(path) = &a.result {
        let json = serde_json::to_string_pretty(&verdict)? + "\n";
        if path.as_os_str() == "-" {
            eprint!("{json}");
        } else {
            std::fs::write(path, json)
                .with_context(|| format!("write result {}", path.display()))?;
        }
    }
    if verdict.status == Status::XX || (verdict.status == Status::SV && !a.verbose) {
        eprintln!(
            "watertight: {}",
            verdict.message.as_deref().unwrap_or("internal error")
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
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        );
    }
    Ok(verdict.exit_code())
}
