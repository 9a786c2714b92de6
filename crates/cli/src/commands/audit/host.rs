//! `watertight audit host`: this node, live, from /proc. Also holds the output options every
//! `audit` source shares.

use anyhow::Context as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;
use watertight_audit::sources::host::{scan, HostOptions};
use watertight_audit::{audit_workloads, Format, Report, Severity};

/// Output options shared by every audit source.
#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// Output format: table, json, sarif or prometheus.
    #[arg(long, default_value = "table", value_parser = parse_format)]
    pub format: Format,
    /// Exit 1 when a finding is at or above this severity (info, low, medium, high, critical),
    /// or `none` to always exit 0 when the inputs were read.
    #[arg(long, value_name = "SEVERITY", default_value = "high", value_parser = parse_fail_on)]
    pub fail_on: FailOn,
    /// Write the report to this file (atomically, via a temporary file and rename) instead of
    /// standard output; for the node-exporter textfile collector.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// The `--fail-on` threshold (`None`: never fail on findings).
#[derive(Debug, Clone, Copy)]
pub struct FailOn(pub Option<Severity>);

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

fn parse_fail_on(s: &str) -> Result<FailOn, String> {
    if s.eq_ignore_ascii_case("none") || s.eq_ignore_ascii_case("never") {
        return Ok(FailOn(None));
    }
    s.parse::<Severity>()
        .map(|s| FailOn(Some(s)))
        .map_err(|e| format!("{e}, or none"))
}

/// Audits the workloads each input file yields, names every input that could not be read, and
/// writes the report (the file-based sources: docker, oci).
pub fn audit_files<W: IntoIterator<Item = watertight_model::Workload>>(
    source: &str,
    files: &[std::path::PathBuf],
    load: impl Fn(&std::path::Path) -> Result<W, watertight_audit::AuditError>,
    out: &OutputArgs,
) -> anyhow::Result<u8> {
    let started = std::time::Instant::now();
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
    report.duration_seconds = started.elapsed().as_secs_f64();
    emit(&report, out)
}

/// Writes the report and returns the exit code.
pub fn emit(report: &Report, out: &OutputArgs) -> anyhow::Result<u8> {
    let text = report.render(out.format);
    match &out.output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let name = path
                .file_name()
                .with_context(|| format!("--output {}: not a file path", path.display()))?;
            let tmp = dir.join(format!(
                ".{}.tmp{}",
                name.to_string_lossy(),
                std::process::id()
            ));
            std::fs::write(&tmp, text.as_bytes()).with_context(|| {
                format!(
                    "cannot write {} (is the directory writable?)",
                    tmp.display()
                )
            })?;
            std::fs::rename(&tmp, path).with_context(|| {
                let _ = std::fs::remove_file(&tmp);
                format!("cannot replace {}", path.display())
            })?;
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a message.
            if let Err(e) = stdout
                .write_all(text.as_bytes())
                .and_then(|_| stdout.flush())
            {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e).context("cannot write the report to standard output");
                }
            }
        }
    }
    for e in &report.errors {
        let doc = e
            .document
            .map(|d| format!(" (document {d})"))
            .unwrap_or_default();
        eprintln!("watertight: {}{doc}: {}", e.source, e.message);
    }
    Ok(report.exit_code(out.fail_on.0))
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
    #[command(flatten)]
    pub output: OutputArgs,
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
    let started = Instant::now();
    if !running_as_root() {
        eprintln!(
            "watertight: warning: not running as root: other users' processes cannot be read and \
             their namespaces are reported as unknown (run with sudo)"
        );
    }
    let opts = HostOptions {
        proc_root: args.proc_root.clone(),
        reference_pid: args.reference_pid,
        pids: (!args.pids.is_empty()).then(|| args.pids.clone()),
        node: args.node.clone(),
    };
    let scanned = scan(&opts)
        .with_context(|| format!("cannot audit this host via {}", args.proc_root.display()))?;
    for w in &scanned.warnings {
        eprintln!("watertight: warning: {w}");
    }
    if !args.pids.is_empty() && scanned.processes == 0 {
        anyhow::bail!(
            "none of the pids given with --pid is a running user-space process (check `ps -p`)"
        );
    }
    let mut report = Report::new("host");
    report.node = Some(scanned.node.clone());
    report.workloads = scanned.workloads.len();
    report.findings = audit_workloads(&scanned.workloads);
    report.duration_seconds = started.elapsed().as_secs_f64();
    emit(&report, &args.output)
}
