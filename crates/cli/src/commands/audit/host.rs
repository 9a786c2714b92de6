//! `watertight audit host`: this node, live, from /proc. Also holds the loop every file-based
//! `audit` source shares.

use crate::commands::sink::{warn, ReportArgs};
use anyhow::Context as _;
use std::path::PathBuf;
use std::time::Instant;
use watertight_audit::sources::host::{bpf, scan, HostOptions};
use watertight_audit::{accept::Date, audit_workloads, Report};

/// Audits the workloads each input file yields, names every input that could not be read, and
/// writes the report (the file-based sources: docker, oci).
pub fn audit_files<W: IntoIterator<Item = watertight_model::Workload>>(
    source: &str,
    files: &[std::path::PathBuf],
    load: impl Fn(&std::path::Path) -> Result<W, watertight_audit::AuditError>,
    out: &ReportArgs,
    baselines: &super::BaselineArgs,
) -> anyhow::Result<u8> {
    let started = std::time::Instant::now();
    let baseline = baselines.load(false)?;
    let mut report = Report::new(source);
    let mut workloads = Vec::new();
    for file in files {
        match load(file) {
            Ok(ws) => workloads.extend(ws),
            Err(e) => report.errors.push(watertight_audit::InputError {
                source: file.display().to_string(),
                document: None,
                message: e.detail(),
            }),
        }
    }
    report.workloads = workloads.len();
    report.findings = watertight_audit::audit_workloads(&workloads);
    baselines.finish(&mut report, baseline.as_ref(), Date::today())?;
    report.duration_seconds = started.elapsed().as_secs_f64();
    out.sink().emit(&report)
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The process whose namespaces count as the host's.
    #[arg(long, default_value_t = 1, value_name = "PID")]
    pub reference_pid: u32,
    /// Audit only these pids (repeat or separate with commas).
    #[arg(long = "pid", value_delimiter = ',', value_name = "PID")]
    pub pids: Vec<u32>,
    /// Where the host's procfs is mounted (e.g. /host/proc in a DaemonSet).
    #[arg(long = "proc", default_value = "/proc", value_name = "DIR")]
    pub proc_root: PathBuf,
    /// The node name to report (default: the kernel hostname).
    #[arg(long)]
    pub node: Option<String>,
    /// Audit again every SECONDS seconds, forever (a DaemonSet whose image has no shell to loop
    /// in); a round that fails is reported on stderr and the next one still runs. Pair with
    /// `-o FILE --atomic` for a textfile collector.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub every: Option<u64>,
    /// The BPF gatekeeper's registry (default: /run/watertight/bpf/loaded beside --proc's
    /// host). For tests: a registry of records made up for the test's own program.
    #[arg(long, value_name = "DIR", hide = true)]
    pub bpf_registry: Option<PathBuf>,
    /// The node's runtime floor, compared with the floor each watertight-runc container was
    /// started under (default: /etc/watertight/runtime.toml beside --proc's host; absent: the
    /// built-in floor, as the runtime reads it). For tests: a runtime.toml of the test's own.
    #[arg(long, value_name = "FILE", hide = true)]
    pub runtime_config: Option<PathBuf>,
    #[command(flatten)]
    pub baselines: super::BaselineArgs,
    #[command(flatten)]
    pub output: ReportArgs,
}

/// The node's current floor, read as `watertight-runc` reads it: `--runtime-config`, else the
/// host's /etc/watertight/runtime.toml (absent: the built-in floor).
fn current_floor(args: &Args) -> Result<watertight_model::FloorId, watertight_floor::Error> {
    let floor = match &args.runtime_config {
        Some(path) => watertight_floor::Floor::load(Some(path))?,
        None => {
            let host_root = watertight_audit::sources::host::host_root(&args.proc_root);
            let default = std::path::Path::new(watertight_floor::DEFAULT_CONFIG_PATH);
            let path = host_root.join(default.strip_prefix("/").unwrap_or(default));
            match std::fs::symlink_metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    watertight_floor::Floor::built_in()
                }
                _ => watertight_floor::Floor::load(Some(&path))?,
            }
        }
    };
    Ok(watertight_model::FloorId {
        digest: floor.digest(),
        version: floor.version().to_string(),
    })
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let Some(every) = args.every else {
        return audit_once(&args);
    };
    loop {
        if let Err(e) = audit_once(&args) {
            warn(&format!("audit failed: {e:#}; the next one in {every} s"));
        }
        std::thread::sleep(std::time::Duration::from_secs(every));
    }
}

/// One audit of this host, written through the sink; returns its exit code.
fn audit_once(args: &Args) -> anyhow::Result<u8> {
    let started = Instant::now();
    // Read every round: an edited baseline counts from the next one.
    let baseline = args.baselines.load(false)?;
    let current_floor = match current_floor(args) {
        Ok(floor) => Some(floor),
        Err(e) => {
            warn(&format!(
                "warning: {e}; containers' runtime floors are reported without comparing them"
            ));
            None
        }
    };
    let opts = HostOptions {
        proc_root: args.proc_root.clone(),
        reference_pid: args.reference_pid,
        pids: (!args.pids.is_empty()).then(|| args.pids.clone()),
        node: args.node.clone(),
        // The auditor is not a workload of the host it audits.
        exclude_pids: watertight_audit::sources::host::own_pid_in(&args.proc_root)
            .into_iter()
            .collect(),
        current_floor,
    };
    let mut scanned = scan(&opts)
        .with_context(|| format!("cannot audit this host via {}", args.proc_root.display()))?;
    // Without the host's namespaces nothing can be compared: every namespace would be
    // "unknown" and the report empty, which reads as "isolated". An error, not "No findings".
    if let Some(dir) = &scanned.reference_unreadable {
        anyhow::bail!(
            "cannot read {}/* (the namespaces of the reference process, permission denied): \
             run as root in the host PID namespace, or pass --reference-pid of a host process \
             whose namespaces can be read",
            dir.display()
        );
    }
    if !scanned.ns_unreadable.is_empty() {
        let first = args
            .proc_root
            .join(scanned.ns_unreadable[0].to_string())
            .join("ns");
        let what = format!(
            "cannot read the namespaces of {} process(es) (e.g. {}, permission denied)",
            scanned.ns_unreadable.len(),
            first.display()
        );
        if !running_as_root() {
            anyhow::bail!(
                "{what}: other users' processes can only be audited by root: run as root"
            );
        }
        // Root denied (a process of the machine's supervisor, as PID 1 on this VM): its
        // namespaces are reported unknown, never isolated.
        warn(&format!("warning: {what}; reported as unknown"));
    }
    for w in &scanned.warnings {
        warn(&format!("warning: {w}"));
    }
    if !args.pids.is_empty() && scanned.processes == 0 {
        anyhow::bail!(
            "none of the pids given with --pid is a running user-space process (check `ps -p`)"
        );
    }
    // The host's BPF programs (host-wide: not taken when --pid narrows the audit to some
    // processes); marks the gatekeeper's process before the workloads' rules run.
    let bpf = args.pids.is_empty().then(|| {
        let host_root = watertight_audit::sources::host::host_root(&args.proc_root);
        let registry = args.bpf_registry.clone().unwrap_or_else(|| {
            let published = std::path::Path::new(watertight_model::BPF_REGISTRY_DIR);
            host_root.join(published.strip_prefix("/").unwrap_or(published))
        });
        let running = watertight_audit::sources::host::running_sandboxes_dir(&args.proc_root);
        bpf::inventory(&args.proc_root, &registry, &running, &mut scanned)
    });
    if let Some(why) = bpf.as_ref().and_then(|b| b.not_taken.as_ref()) {
        warn(&format!("warning: BPF inventory not taken: {why}"));
    }
    let mut report = Report::new("host");
    report.node = Some(scanned.node.clone());
    report.workloads = scanned.workloads.len();
    report.findings = audit_workloads(&scanned.workloads);
    if let Some(bpf) = &bpf {
        let source = format!("host:{}", scanned.node);
        report
            .findings
            .extend(watertight_audit::rules::evaluate_bpf(bpf, &source));
        watertight_audit::report::sort_findings(&mut report.findings);
    }
    report.bpf = bpf;
    report.floors = watertight_audit::report::floor_counts(&scanned.workloads);
    args.baselines
        .finish(&mut report, baseline.as_ref(), Date::today())?;
    report.duration_seconds = started.elapsed().as_secs_f64();
    args.output.sink().emit(&report)
}
