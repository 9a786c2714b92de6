//! `watertight bpf load --pubkey KEY.pub OBJ|DIR...`: the gatekeeper. Every object must carry a
//! signature of the key (`OBJ.sig`, from `watertight bpf sign`) and pass the policy; then
//! exactly the verified bytes are loaded, attached as their sections say, optionally pinned, and
//! recorded for `watertight audit host` (watertight_bpf::load; docs/bpf.md "Loading").
//!
//! Exit codes: 0 loaded (with `--hold`: after SIGTERM/SIGINT, everything detached); 1 refused
//! (a signature or the policy; nothing loaded); 2 bad input (a missing object or key, a bad
//! policy file, a malformed object); 3 the kernel refused (load, attach or pin; what this run
//! had loaded is unloaded again).

use super::PolicyArgs;
use crate::commands::sink::{say, warn};
use anyhow::Context as _;
use nix::sys::signal::{SigSet, Signal};
use std::path::{Path, PathBuf};
use watertight_bpf::load::{LoadError, LoadPlan, ObjectSource};
use watertight_integrity::VerifyingKey;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// BPF objects, or directories whose `*.o` files are loaded (each with its `.sig` beside
    /// it; hidden entries, such as a ConfigMap volume's `..data`, are skipped).
    #[arg(required = true, value_name = "OBJ|DIR")]
    pub objects: Vec<PathBuf>,
    /// The signer's public key (`watertight key generate` writes KEY.pub); objects signed by
    /// any other key are refused.
    #[arg(long, value_name = "KEY.pub")]
    pub pubkey: PathBuf,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Pin each program's link (or the program, when it has none) under DIR/<object>/<program>
    /// on a mounted bpffs, so the programs stay attached after this command ends.
    #[arg(long, value_name = "DIR", conflicts_with = "hold")]
    pub pin: Option<PathBuf>,
    /// Stay in the foreground holding the programs until SIGTERM or SIGINT, then detach them
    /// and remove their records (the gatekeeper service and DaemonSet run this way).
    #[arg(long)]
    pub hold: bool,
    /// Where the records of loaded programs go (one `<id>.json` each), for `audit host`.
    #[arg(long, value_name = "DIR", default_value = watertight_model::BPF_REGISTRY_DIR)]
    pub registry: PathBuf,
    /// Print what was loaded as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let (policy, _) = args.policy.load()?;
    let key = VerifyingKey::load(&args.pubkey)?;
    let sources = expand(&args.objects)?;
    if sources.is_empty() {
        anyhow::bail!(
            "{}: no BPF objects (*.o) to load",
            args.objects
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    // Block the signals `--hold` waits for before anything is loaded, so one arriving during
    // the load ends the hold right after it instead of killing the process with programs
    // attached and records written.
    let mut wait_for = SigSet::empty();
    wait_for.add(Signal::SIGTERM);
    wait_for.add(Signal::SIGINT);
    if args.hold {
        wait_for
            .thread_block()
            .context("block SIGTERM/SIGINT for --hold")?;
    }
    let plan = match LoadPlan::new(&sources, &key, &policy, args.pin.clone(), args.registry) {
        Ok(plan) => plan,
        Err(e) => return Ok(report_error(&e)),
    };
    let loaded = match plan.run() {
        Ok(loaded) => loaded,
        Err(e) => return Ok(report_error(&e)),
    };
    say_kernel_admission();
    for skip in loaded.skipped() {
        warn(&format!(
            "{}: program {} not loaded: {}",
            skip.object.display(),
            skip.program,
            skip.reason
        ));
    }
    if args.json {
        say(&serde_json::to_string_pretty(loaded.programs())?)?;
    } else {
        say(&format!(
            "{:<6} {:<16} {:<15} {:<34} {:<20} PIN",
            "ID", "TAG", "TYPE", "ATTACH", "PROGRAM"
        ))?;
        for p in loaded.programs() {
            say(&format!(
                "{:<6} {:<16} {:<15} {:<34} {:<20} {}",
                p.id,
                p.tag,
                p.prog_type,
                p.attach.as_deref().unwrap_or("-"),
                p.name,
                p.pin.as_deref().unwrap_or("-")
            ))?;
        }
    }
    if args.hold {
        let signal = wait_for.wait().context("wait for SIGTERM/SIGINT")?;
        warn(&format!(
            "{signal}: detaching {} program(s)",
            loaded.programs().len()
        ));
        drop(loaded);
    } else if args.pin.is_some() {
        loaded.keep_pinned();
    } else {
        warn("loaded, attached and verified; detached again on exit (use --pin DIR or --hold to keep them)");
        drop(loaded);
    }
    Ok(0)
}

/// Says on stderr whether the kernel itself stops other loaders. Only a BPF LSM program on
/// `bpf_prog_load` could refuse a loader that holds CAP_BPF; where BPF LSM programs cannot
/// attach (this machine kind: every trampoline type is refused at load), nothing in the kernel
/// does, and the gatekeeper's guarantee rests on who holds CAP_BPF plus `audit host` finding
/// every program it did not load.
fn say_kernel_admission() {
    let lsm = watertight_integrity::probe::probe_bpf_lsm();
    if lsm.available {
        warn("kernel admission: BPF LSM programs load here, but watertight installs no lsm/bpf_prog_load admission program yet: other holders of CAP_BPF are not stopped by the kernel; `watertight audit host` reports every program this gatekeeper did not load");
    } else {
        warn(&format!(
            "kernel admission: none on this host ({}): other holders of CAP_BPF are not stopped by the kernel; `watertight audit host` reports every program this gatekeeper did not load",
            lsm.reason
        ));
    }
}

/// One line on stderr and the documented exit code of the step that failed.
fn report_error(e: &LoadError) -> u8 {
    match e {
        LoadError::ReadObject { .. } | LoadError::Malformed { .. } => {
            warn(&e.to_string());
            2
        }
        // An object without a signature file is an unsigned object: refused like a bad one.
        LoadError::ReadSignature { .. }
        | LoadError::Signature { .. }
        | LoadError::Refused { .. }
        | LoadError::Disagree { .. } => {
            warn(&e.to_string());
            1
        }
        LoadError::Load { reason, .. } if is_permission(reason) => {
            warn(&format!(
                "{e} (loading needs CAP_BPF and CAP_PERFMON: run as root or as the gatekeeper service)"
            ));
            3
        }
        _ => {
            warn(&e.to_string());
            3
        }
    }
}

fn is_permission(reason: &str) -> bool {
    reason.contains("Operation not permitted") || reason.contains("Permission denied")
}

#[derive(clap::Args, Debug)]
pub struct UnloadArgs {
    /// The directory given to `bpf load --pin`.
    #[arg(long, value_name = "DIR")]
    pub pin: PathBuf,
    /// The registry `bpf load` recorded the programs in.
    #[arg(long, value_name = "DIR", default_value = watertight_model::BPF_REGISTRY_DIR)]
    pub registry: PathBuf,
}

/// `watertight bpf unload --pin DIR`: removes the pins `bpf load --pin DIR` made (the programs
/// detach and unload) and their records. Exit 0, or 3 when a pin or record cannot be removed.
pub fn unload(args: UnloadArgs) -> anyhow::Result<u8> {
    match watertight_bpf::load::unload_pinned(&args.pin, &args.registry) {
        Ok(removed) => {
            for p in &removed {
                say(&format!(
                    "unloaded {} (id {}, {})",
                    p.name,
                    p.id,
                    p.pin.as_deref().unwrap_or("-")
                ))?;
            }
            if removed.is_empty() {
                warn(&format!(
                    "{}: no program recorded as pinned there",
                    args.pin.display()
                ));
            }
            Ok(0)
        }
        Err(e) => {
            warn(&e.to_string());
            Ok(3)
        }
    }
}

/// Objects named on the command line, directories expanded to their `*.o` files (sorted, so
/// the load order and the records are the same every time).
fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<ObjectSource>> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e} (name a BPF object or a directory of them)",
                path.display()
            )
        })?;
        if meta.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("{}: cannot list the directory", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| is_object_name(p))
                .collect();
            found.sort();
            out.extend(found.into_iter().map(ObjectSource::beside));
        } else {
            out.push(ObjectSource::beside(path.clone()));
        }
    }
    Ok(out)
}

fn is_object_name(p: &Path) -> bool {
    let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    !name.starts_with('.') && name.ends_with(".o") && p.is_file()
}
