//! `watertight-runc` / `watertight oci`: runc's command line (as containerd-shim-runc-v2,
//! Podman's conmon and Docker call it) over the `watertight-oci` library. Errors are one line
//! on stderr and, with `--log`, one line in the log file in the requested format (runc's JSON
//! shape `{"level":"error","msg":"...","time":"..."}`), exit 1.

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use watertight_oci::plan::{CreateOptions, ProcessPlan};
use watertight_oci::state::DEFAULT_ROOT;

mod exec;
mod gvisor;
mod update;

/// The runc-compatible command line, as `watertight-runc` (argv[0]) parses it.
#[derive(Parser, Debug)]
#[command(
    name = "watertight-runc",
    version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: ", "1.0.2"),
    about = "An OCI runtime with runc's command line (watertight oci)",
    long_about = None
)]
pub struct RuncCli {
    #[command(flatten)]
    args: OciArgs,
}

/// `watertight oci`'s arguments: global options and one command.
#[derive(Args, Debug)]
pub struct OciArgs {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct Global {
    /// Directory for the containers' state.
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Also write errors (and with --debug, debug lines) to this file.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// The --log file's format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// cgroupsPath is systemd's slice:prefix:name (mapped to cgroupfs: no systemd is asked).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Debug lines in the log.
    #[arg(long, global = true)]
    debug: bool,
    /// The hardening floor's runtime.toml (default /etc/watertight/runtime.toml; absent: the
    /// built-in floor). See docs/runtime-floor.md.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// runc's global --rootless (detected from config.json here); `spec --rootless` writes a
    /// rootless config.
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// Accepted for runc compatibility (checkpointing is not supported).
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ListFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// The bundle directory (holds config.json).
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    /// Write the container init's pid to this file.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master (process.terminal).
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// chroot instead of pivot_root.
    #[arg(long)]
    no_pivot: bool,
    /// Accepted: no session keyring is created either way.
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass this many fds from 3 upward to the process.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Container id.
    id: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a container (its init waits for `start`).
    Create(CreateArgs),
    /// Start a created container's process.
    Start {
        /// Container id.
        id: String,
    },
    /// Create, start and wait for a container; delete it afterwards unless --detach.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once it started.
        #[arg(long, short = 'd')]
        detach: bool,
    },
    /// Print the OCI state JSON.
    State {
        /// Container id.
        id: String,
    },
    /// Send a signal (name or number; default SIGTERM) to the init, or with --all to every process.
    Kill {
        /// Every process of the container's cgroup.
        #[arg(long, short = 'a')]
        all: bool,
        /// Container id.
        id: String,
        /// KILL, SIGKILL or 9.
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a created or stopped container (--force: any, killed first).
    Delete {
        /// Kill a running container first.
        #[arg(long, short = 'f')]
        force: bool,
        /// Container id.
        id: String,
    },
    /// Run a new process in a running container.
    Exec(exec::ExecArgs),
    /// The container's processes.
    Ps {
        /// table (ps's columns) or json (pids).
        #[arg(long, short = 'f', value_enum, default_value = "table")]
        format: ListFormat,
        /// Container id.
        id: String,
        /// Options for ps (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze every process.
    Pause {
        /// Container id.
        id: String,
    },
    /// Thaw a paused container.
    Resume {
        /// Container id.
        id: String,
    },
    /// Change the container's resource limits.
    Update(update::UpdateArgs),
    /// Resource statistics (--stats: once; otherwise every --interval).
    Events {
        /// Print one stats event and exit.
        #[arg(long)]
        stats: bool,
        /// Interval between stats events.
        #[arg(long, default_value = "5s")]
        interval: humantime::Duration,
        /// Container id.
        id: String,
    },
    /// The OCI runtime features document.
    Features,
    /// Write a default config.json to the bundle directory.
    Spec {
        /// Where to write config.json.
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
    },
    /// The containers under --root.
    List {
        /// table or json.
        #[arg(long, short = 'f', value_enum, default_value = "table")]
        format: ListFormat,
        /// Ids only.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
}

/// Parses `argv` as the runc-compatible CLI (argv[0] is `watertight-runc` or `runc`) and runs it.
pub fn main_as_runc(argv: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    match RuncCli::try_parse_from(argv) {
        Ok(cli) => std::process::ExitCode::from(run(cli.args)),
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 1,
            };
            let _ = e.print();
            std::process::ExitCode::from(code)
        }
    }
}

/// Runs one command; the exit code (errors reported here: stderr and --log).
pub fn run(args: OciArgs) -> u8 {
    let global = &args.global;
    if global.debug {
        log_line(global, "debug", &format!("{:?}", args.command));
    }
    match dispatch(global, args.command) {
        Ok(code) => code,
        Err(e) => {
            // One line: the message, then each cause it does not already quote.
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let cause = cause.to_string();
                if !msg.contains(&cause) {
                    msg.push_str(": ");
                    msg.push_str(&cause);
                }
            }
            let msg = watertight_sys::text::escape_controls(&msg).into_owned();
            eprintln!("watertight-runc: {msg}");
            log_line(global, "error", &msg);
            1
        }
    }
}

fn log_line(global: &Global, level: &str, msg: &str) {
    let Some(path) = &global.log else { return };
    let time = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
    let line = match global.log_format {
        LogFormat::Json => {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        }
        LogFormat::Text => format!("time=\"{time}\" level={level} msg={msg:?}"),
    };
    // Appended through: the caller (conmon, the shim) reads this file or FIFO.
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

fn create_options(global: &Global, c: &CreateArgs) -> CreateOptions {
    CreateOptions {
        id: c.id.clone(),
        bundle: c.bundle.clone(),
        pid_file: c.pid_file.clone(),
        console_socket: c.console_socket.clone(),
        no_pivot: c.no_pivot,
        preserve_fds: c.preserve_fds,
        systemd_cgroup: global.systemd_cgroup,
        floor_config: global.config.clone(),
    }
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// The command's name and container id, for the commands that name one existing container.
fn names_container(command: &Command) -> Option<(&'static str, &str)> {
    Some(match command {
        Command::Start { id } => ("start", id),
        Command::State { id } => ("state", id),
        Command::Kill { id, .. } => ("kill", id),
        Command::Delete { id, .. } => ("delete", id),
        Command::Exec(a) => ("exec", &a.id),
        Command::Ps { id, .. } => ("ps", id),
        Command::Pause { id } => ("pause", id),
        Command::Resume { id } => ("resume", id),
        Command::Update(a) => ("update", &a.id),
        Command::Events { id, .. } => ("events", id),
        _ => return None,
    })
}

/// With runtime.toml's `[isolation] policy`: the policy's choice for this node (`None`: no
/// policy, namespaces as always).
fn policy_choice(global: &Global) -> anyhow::Result<Option<(gvisor::Choice, Option<PathBuf>)>> {
    let floor = watertight_floor::Floor::load(global.config.as_deref())?;
    let Some(isolation) = floor.settings.isolation else {
        return Ok(None);
    };
    let choice = gvisor::choose(&global.root, &isolation.policy)?;
    Ok(Some((choice, isolation.runsc)))
}

/// `create` or `run` handed to runsc when the isolation policy chooses gVisor for this node:
/// its exit code, or `None` when the container stays with this runtime.
fn delegate(
    global: &Global,
    c: &CreateArgs,
    launch: gvisor::Launch,
    log: &[std::ffi::OsString],
) -> anyhow::Result<Option<u8>> {
    let Some((choice, runsc)) = policy_choice(global)? else {
        return Ok(None);
    };
    if choice.tier != "gvisor" {
        return Ok(None);
    }
    if global.debug {
        log_line(global, "debug", &format!("isolation: {}", choice.reason));
    }
    let req = gvisor::CreateRequest {
        launch,
        id: &c.id,
        bundle: &c.bundle,
        pid_file: c.pid_file.as_deref(),
        console_socket: c.console_socket.as_deref(),
        preserve_fds: c.preserve_fds,
        floor_config: global.config.as_deref(),
        systemd_cgroup: global.systemd_cgroup,
        log,
    };
    gvisor::create(&global.root, &req, runsc.as_deref(), &choice.reason).map(Some)
}

fn dispatch(global: &Global, command: Command) -> anyhow::Result<u8> {
    use watertight_oci::lifecycle;
    let root = global.root.as_path();
    let log = gvisor::log_args(
        global.log.as_deref(),
        global.log_format == LogFormat::Json,
        global.debug,
    );
    if let Some((name, id)) = names_container(&command) {
        if let Some(d) = gvisor::delegated(root, id) {
            return gvisor::forward(root, id, &d, name, &log);
        }
    }
    match command {
        Command::Create(c) => {
            if let Some(code) = delegate(global, &c, gvisor::Launch::Create, &log)? {
                return Ok(code);
            }
            lifecycle::create(root, &create_options(global, &c))?;
            Ok(0)
        }
        Command::Run { create, detach } => {
            if let Some(code) = delegate(global, &create, gvisor::Launch::Run { detach }, &log)? {
                return Ok(code);
            }
            let code = lifecycle::run(root, &create_options(global, &create), detach)?;
            Ok(code.clamp(0, 255) as u8)
        }
        Command::Start { id } => {
            lifecycle::start(root, &id)?;
            Ok(0)
        }
        Command::State { id } => {
            print_json(&lifecycle::state(root, &id)?)?;
            Ok(0)
        }
        Command::Kill { all, id, signal } => {
            let signal = watertight_oci::signal::parse(&signal)?;
            lifecycle::kill(root, &id, signal, all)?;
            Ok(0)
        }
        Command::Delete { force, id } => {
            lifecycle::delete(root, &id, force)?;
            Ok(0)
        }
        Command::Exec(args) => exec::run(root, global.config.as_deref(), args),
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps(root, &id, format, &ps_args),
        Command::Pause { id } => {
            lifecycle::pause(root, &id, true)?;
            Ok(0)
        }
        Command::Resume { id } => {
            lifecycle::pause(root, &id, false)?;
            Ok(0)
        }
        Command::Update(args) => update::run(root, args),
        Command::Events {
            stats,
            interval,
            id,
        } => loop {
            let event = lifecycle::stats(root, &id)?;
            println!("{event}");
            if stats {
                return Ok(0);
            }
            std::thread::sleep(*interval);
        },
        Command::Features => {
            print_json(&watertight_oci::features::features())?;
            Ok(0)
        }
        Command::Spec { bundle } => {
            let rootless = global.rootless.as_deref() == Some("true");
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("{}: already exists; remove it first", path.display());
            }
            let text =
                serde_json::to_string_pretty(&watertight_oci::features::default_spec(rootless))?;
            std::fs::write(&path, text + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(0)
        }
        Command::List { format, quiet } => list(root, format, quiet),
    }
}

fn ps(root: &Path, id: &str, format: ListFormat, ps_args: &[String]) -> anyhow::Result<u8> {
    let pids = watertight_oci::lifecycle::pids(root, id)?;
    if format == ListFormat::Json {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("running ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|c| c == "PID")
        .context("ps printed no PID column")?;
    println!("{header}");
    for line in lines {
        let pid: Option<i32> = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(0)
}

fn list(root: &Path, format: ListFormat, quiet: bool) -> anyhow::Result<u8> {
    let mut rows = Vec::new();
    for id in watertight_oci::state::list(root) {
        if let Ok(state) = watertight_oci::lifecycle::state(root, &id) {
            rows.push(state);
        }
    }
    rows.extend(gvisor::states(root));
    if quiet {
        for r in &rows {
            println!("{}", r["id"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    if format == ListFormat::Json {
        println!("{}", Value::Array(rows));
        return Ok(0);
    }
    println!(
        "{:<24} {:<8} {:<10} {:<40} {:<32}",
        "ID", "PID", "STATUS", "BUNDLE", "CREATED"
    );
    for r in rows {
        println!(
            "{:<24} {:<8} {:<10} {:<40} {:<32}",
            r["id"].as_str().unwrap_or_default(),
            r["pid"].as_i64().unwrap_or(0),
            r["status"].as_str().unwrap_or_default(),
            r["bundle"].as_str().unwrap_or_default(),
            r["created"].as_str().unwrap_or_default()
        );
    }
    Ok(0)
}

/// config.json's process, or --process FILE, as a checked plan for `exec`: under the same
/// floor as the container (no_new_privs, capabilities, its second seccomp filter).
fn process_plan(
    bundle: &Path,
    floor_config: Option<&Path>,
    process: oci_spec::runtime::Process,
    preserve_fds: u32,
) -> anyhow::Result<ProcessPlan> {
    let (mut spec, mut raw) = watertight_oci::plan::load_config(bundle)?;
    raw["process"] = serde_json::to_value(&process)?;
    spec.set_process(Some(process));
    let (spec, raw, hardening) =
        watertight_oci::plan::harden_loaded(spec, raw, floor_config, &bundle.join("config.json"))?;
    let process = spec
        .process()
        .clone()
        .context("config.json has no process")?;
    let new_userns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        });
    let annotations = raw.get("annotations").cloned().unwrap_or(Value::Null);
    let mut plan = ProcessPlan::new(
        "process",
        &process,
        raw.pointer("/linux/seccomp"),
        &annotations,
        preserve_fds,
        new_userns,
    )?;
    plan.floor_seccomp = watertight_oci::plan::floor_filter(&hardening)?;
    Ok(plan)
}
