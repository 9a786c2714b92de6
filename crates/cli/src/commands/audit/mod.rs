//! `watertight audit ...`: one module per source.

pub mod docker;
pub mod fleet;
pub mod host;
pub mod k8s;
pub mod kernel;
pub mod oci;
pub mod seccomp;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Audit this node, live: every workload's isolation from /proc.
    Host(host::Args),
    /// Audit Kubernetes YAML (files or directories) against Pod Security Standards and more.
    K8s(k8s::Args),
    /// Audit the JSON output of `docker inspect`.
    Docker(docker::Args),
    /// Audit an OCI runtime bundle's config.json.
    Oci(oci::Args),
    /// Merge many nodes' JSON reports into one summary.
    Fleet(fleet::Args),
    /// Which published kernel CVEs affect this kernel, and its hardening posture.
    Kernel(kernel::Args),
    /// Which system calls a live process's seccomp filters let through to the kernel.
    Seccomp(seccomp::Args),
}

pub fn run(cmd: Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Host(a) => host::run(a),
        Command::K8s(a) => k8s::run(a),
        Command::Docker(a) => docker::run(a),
        Command::Oci(a) => oci::run(a),
        Command::Fleet(a) => fleet::run(a),
        Command::Kernel(a) => kernel::run(a),
        Command::Seccomp(a) => seccomp::run(a),
    }
}

/// The baseline flags of `audit k8s`, `host`, `docker` and `oci` (docs/audit.md, "A baseline
/// file"), applied the same way by each.
#[derive(clap::Args, Debug, Clone)]
pub struct BaselineArgs {
    /// Accept the findings listed in FILE (written by --write-baseline), each with the entry's
    /// reason, through its `until` day if it has one; entries that match no finding are noted.
    #[arg(long, value_name = "FILE", conflicts_with = "write_baseline")]
    pub baseline: Option<std::path::PathBuf>,
    /// Write every finding that counts (not accepted) to FILE as a baseline, each entry with a
    /// reason to fill in; FILE is written through, like -o.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<std::path::PathBuf>,
}

/// A `--baseline` file, read before auditing.
pub struct LoadedBaseline {
    baseline: watertight_audit::accept::Baseline,
    path: std::path::PathBuf,
}

impl BaselineArgs {
    /// Reads `--baseline` unless `ignore` (`--ignore-accepted`): a missing or broken file stops
    /// the run with one line naming it and the fix (exit 2).
    pub fn load(&self, ignore: bool) -> anyhow::Result<Option<LoadedBaseline>> {
        match &self.baseline {
            Some(path) if !ignore => Ok(Some(LoadedBaseline {
                baseline: watertight_audit::accept::Baseline::load(path)
                    .map_err(anyhow::Error::msg)?,
                path: path.clone(),
            })),
            _ => Ok(None),
        }
    }

    /// Moves the findings `loaded` accepts to `report.accepted` (expired entries warn, stale
    /// ones are noted), then writes `--write-baseline` from the findings that still count.
    pub fn finish(
        &self,
        report: &mut watertight_audit::Report,
        loaded: Option<&LoadedBaseline>,
        today: watertight_audit::accept::Date,
    ) -> anyhow::Result<()> {
        use watertight_audit::accept;
        if let Some(loaded) = loaded {
            let findings = std::mem::take(&mut report.findings);
            let out = accept::apply_baseline(
                findings,
                &report.accepted,
                &loaded.baseline,
                &loaded.path,
                today,
            );
            report.findings = out.kept;
            report.accepted.extend(out.accepted);
            report.warnings.extend(out.warnings);
            report.notes.extend(out.notes);
        }
        watertight_audit::report::sort_findings(&mut report.findings);
        report
            .accepted
            .sort_by_key(|a| std::cmp::Reverse(a.finding.severity));
        if let Some(path) = &self.write_baseline {
            let written = accept::Baseline::from_findings(&report.findings);
            crate::commands::sink::write_file(
                path,
                written.to_json().as_bytes(),
                "--write-baseline",
            )?;
            crate::commands::sink::warn(&format!(
                "wrote {} baseline entr{} to {}: replace each reason with why the finding is \
                 acceptable, then pass --baseline {}",
                written.entries.len(),
                if written.entries.len() == 1 {
                    "y"
                } else {
                    "ies"
                },
                path.display(),
                path.display()
            ));
        }
        Ok(())
    }
}
