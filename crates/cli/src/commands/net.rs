//! `watertight net`: per-port anti-spoofing guards for container bridges.
//!
//! Exit codes: 0 = done / guard in place and no poisoned neighbour; 1 = `check` found problems
//! at or above `--fail-on` (default: any); 2 = bad input or the kernel refused (nothing applied).

use crate::commands::sink::{say, write_stdout, ReportArgs};
use anyhow::Context;
use std::path::PathBuf;
use watertight_net::{Bindings, Netns};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Apply (or with --remove, take down) the anti-spoofing table of a bridge, atomically.
    Guard(GuardArgs),
    /// Compare the live guard and neighbour caches with the bindings.
    Check(CheckArgs),
    /// Install permanent neighbour entries inside a network namespace.
    Neigh(NeighArgs),
}

#[derive(clap::Args)]
pub struct GuardArgs {
    /// The bridge to guard.
    #[arg(long)]
    bridge: String,
    /// TOML file listing each port's MAC and addresses ([[port]] iface/mac/ipv4/ipv6).
    #[arg(long, required_unless_present = "remove", conflicts_with = "remove")]
    bindings: Option<PathBuf>,
    /// Remove the bridge's guard table entirely.
    #[arg(long)]
    remove: bool,
    /// Print the nft script instead of applying it.
    #[arg(long, conflicts_with = "remove")]
    dry_run: bool,
}

/// `net check` fails on any finding unless told otherwise: the guard either matches the
/// bindings or it does not.
#[derive(clap::Args)]
#[command(mut_arg("fail_on", |a| a.default_value("info")))]
pub struct CheckArgs {
    #[arg(long)]
    bridge: String,
    #[arg(long)]
    bindings: PathBuf,
    /// Also check the neighbour cache of this network namespace (an `ip netns` name or a path
    /// such as /proc/PID/ns/net); repeatable. Without it the current namespace is checked.
    #[arg(long = "netns")]
    namespaces: Vec<String>,
    /// `--format text` is `table`, as before.
    #[command(flatten)]
    output: ReportArgs,
}

#[derive(clap::Args)]
pub struct NeighArgs {
    /// The namespace (an `ip netns` name or a path such as /proc/PID/ns/net).
    #[arg(long)]
    netns: String,
    /// The interface inside the namespace.
    #[arg(long, default_value = "eth0")]
    dev: String,
    /// IP=MAC, e.g. 10.0.0.53=02:42:ac:11:00:35; repeatable.
    #[arg(long = "static", required = true)]
    entries: Vec<String>,
}

pub fn run(cmd: Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Guard(args) => guard(args),
        Command::Check(args) => check(args),
        Command::Neigh(args) => neigh(args),
    }
}

fn guard(args: GuardArgs) -> anyhow::Result<u8> {
    if args.remove {
        watertight_net::remove_guard(&args.bridge)?;
        say(&format!(
            "removed the guard of bridge {} (table bridge {})",
            args.bridge,
            watertight_net::ruleset::table_name(&args.bridge)
        ))?;
        return Ok(0);
    }
    let path = args
        .bindings
        .expect("clap requires --bindings without --remove");
    let bindings = Bindings::load(&path)?;
    if args.dry_run {
        write_stdout(watertight_net::render_guard(&args.bridge, &bindings)?.as_bytes())?;
        return Ok(0);
    }
    watertight_net::apply_guard(&args.bridge, &bindings)?;
    say(&format!(
        "guarded bridge {}: {} ports (table bridge {})",
        args.bridge,
        bindings.ports.len(),
        watertight_net::ruleset::table_name(&args.bridge)
    ))?;
    Ok(0)
}

fn check(args: CheckArgs) -> anyhow::Result<u8> {
    let bindings = Bindings::load(&args.bindings)?;
    let namespaces: Vec<Netns> = args.namespaces.iter().map(|n| Netns::from_arg(n)).collect();
    let sink = args.output.sink();
    let report = watertight_net::check_guard(&args.bridge, &bindings, &namespaces)?;
    sink.emit(&report)
}

fn neigh(args: NeighArgs) -> anyhow::Result<u8> {
    let entries = args
        .entries
        .iter()
        .map(|e| watertight_net::parse_static_neighbour(e))
        .collect::<Result<Vec<_>, _>>()?;
    let ns = Netns::from_arg(&args.netns);
    watertight_net::install_static_neighbours(&ns, &args.dev, &entries)
        .with_context(|| format!("static neighbours in {}", ns.path().display()))?;
    say(&format!(
        "installed {} permanent neighbour entries on {} in {}",
        entries.len(),
        args.dev,
        ns.path().display()
    ))?;
    Ok(0)
}
