//! `watertight audit kernel`: which published kernel CVEs affect this node's kernel (from the
//! kernel CNA's records or a shipped index), which a default sandbox reaches, and the kernel's
//! hardening posture. The work lives in crate `watertight-kernel-audit`.

use crate::commands::sink::{say, warn, write_file, ReportArgs};
use anyhow::{bail, Context};
use std::path::PathBuf;
use watertight_kernel_audit::{
    audit, AuditInput, CveDatabase, HardeningReader, IsolationTier, KernelRelease, TierMaps,
};

/// How many skipped record files are named on stderr before summarizing the rest.
const SKIPPED_SHOWN: usize = 20;

#[derive(clap::Args)]
pub struct Args {
    /// The kernel CNA's CVE JSON 5.1 records: the cve/published directory of a checkout of the
    /// vulns repository.
    #[arg(long, value_name = "DIR", conflicts_with = "cve_index")]
    pub cve_db: Option<PathBuf>,

    /// A compact index written earlier with --index-out (instead of --cve-db).
    #[arg(long, value_name = "FILE")]
    pub cve_index: Option<PathBuf>,

    /// Write a compact index of --cve-db to FILE (for shipping to nodes) and exit.
    #[arg(long, value_name = "FILE", requires = "cve_db")]
    pub index_out: Option<PathBuf>,

    /// The kernel release to check, e.g. 6.1.100 or 6.1.0-18-amd64 (default: the running
    /// kernel, read from <host-root>/proc/sys/kernel/osrelease like `uname -r`).
    #[arg(long, value_name = "VERSION")]
    pub kernel_version: Option<String>,

    /// Decide a distro or vendor kernel by its upstream part anyway (backports make this an
    /// over-estimate).
    #[arg(long)]
    pub assume_upstream: bool,

    /// With --fail-on, count only CVEs reachable from a sandbox of the --isolation tier.
    #[arg(long)]
    pub fail_on_reachable_only: bool,

    /// The isolation tier the headline and --fail-on-reachable-only are about: namespaces (a
    /// default `watertight run`), gvisor (`run --isolation gvisor`) or vm (`run --isolation vm`).
    /// Every report shows all three side by side.
    #[arg(long, value_name = "TIER", default_value = "namespaces", value_parser = parse_tier)]
    pub isolation: IsolationTier,

    /// Root of the host's filesystem for the hardening checks and the running kernel's release
    /// (e.g. /host in a DaemonSet that mounts the node's / there).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub host_root: PathBuf,

    /// Skip the hardening checks (CVE exposure only).
    #[arg(long)]
    pub no_hardening: bool,

    #[command(flatten)]
    pub output: ReportArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let sink = args.output.sink();
    let database = match (&args.cve_db, &args.cve_index) {
        // The library's errors already name the directory or file and the fix.
        (Some(dir), _) => Some(CveDatabase::from_records_dir(dir)?),
        (None, Some(file)) => Some(CveDatabase::from_index(file)?),
        (None, None) => None,
    };
    if let Some(db) = &database {
        report_skipped(db);
    }

    if let Some(out) = &args.index_out {
        let db = database
            .as_ref()
            .context("--index-out needs --cve-db DIR")?;
        let bytes = watertight_kernel_audit::index::encode(&db.index_body());
        write_file(out, &bytes, "--index-out")?;
        say(&format!(
            "wrote {} ({} CVEs, {} bytes, {} record files skipped)",
            out.display(),
            db.records.len(),
            bytes.len(),
            db.source.skipped_count
        ))?;
        return Ok(0);
    }

    let osrelease = args.host_root.join("proc/sys/kernel/osrelease");
    let running = std::fs::read_to_string(&osrelease).map(|s| s.trim().to_string());
    let release_text = match (&args.kernel_version, &running) {
        (Some(v), _) => v.clone(),
        (None, Ok(r)) => r.clone(),
        (None, Err(e)) => bail!(
            "cannot read the running kernel's release from {}: {e} (pass --kernel-version or --host-root)",
            osrelease.display()
        ),
    };
    let release = KernelRelease::parse(&release_text).context("--kernel-version")?;

    let hardening = if args.no_hardening {
        Vec::new()
    } else {
        HardeningReader::new(&args.host_root).read()
    };
    let reachability = TierMaps::built_in();
    let mut report = audit(AuditInput {
        release: &release,
        assume_upstream: args.assume_upstream,
        database: database.as_ref(),
        reachability: &reachability,
        isolation: args.isolation,
        hardening,
    });
    if !args.no_hardening {
        if let (Some(given), Ok(running)) = (&args.kernel_version, &running) {
            if given != running {
                report.notes.push(format!(
                    "hardening checks describe the host at {} (running {running}), not {given}",
                    args.host_root.display()
                ));
            }
        }
    }
    report.gate_reachable_only = args.fail_on_reachable_only;
    sink.emit(&report)
}

fn parse_tier(s: &str) -> Result<IsolationTier, String> {
    s.parse()
}

/// Names skipped record files on stderr so they are seen whatever the output format.
fn report_skipped(db: &CveDatabase) {
    for s in db.source.skipped.iter().take(SKIPPED_SHOWN) {
        warn(&format!(
            "skipped CVE record {}: {}",
            s.path.display(),
            s.reason
        ));
    }
    if db.source.skipped.len() > SKIPPED_SHOWN {
        warn(&format!(
            "... and {} more skipped record files",
            db.source.skipped.len() - SKIPPED_SHOWN
        ));
    }
}
