//! `watertight profile show [--effective] [NAME|FILE]`: prints a profile in the TOML format
//! `--profile` reads, every key written out: the built-in one, or a file's effective profile
//! (merged over its `extends` chain and the built-in profile). `watertight profile explain
//! [NAME|FILE]`: the plan a sandbox on that profile runs under (its digest and its model) and
//! what the auditor's rules say of it: the same rules `watertight audit` applies to containers.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use watertight_audit::{Finding, Severity};
use watertight_sandbox::{Job, Plan, Profile};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print a profile as complete TOML: `default` (the built-in one) or a profile file's
    /// effective profile (validated), which loads back to the same profile.
    Show {
        /// `default` or a profile file (`./default` for a file of that name).
        #[arg(default_value = "default")]
        name: String,
        /// The effective profile: the file merged over the files its `extends` chain names and
        /// the built-in profile, every key written out. A file is always shown this way; the
        /// flag says so in scripts.
        #[arg(long)]
        effective: bool,
    },
    /// Check a profile file (and every file its `extends` chain names); prints nothing and exits
    /// 0 when it is valid.
    Check { file: PathBuf },
    /// Print the plan of a sandbox on this profile (`default` or a file), run from the current
    /// directory: its digest, its isolation model, and the auditor's findings on it. Exits 1
    /// when a finding is at or above --fail-on.
    Explain {
        #[arg(default_value = "default")]
        name: String,
        /// `text` for people, `json` ({plan_digest, workload, findings}) for tools.
        #[arg(long, value_enum, default_value = "text")]
        format: ExplainFormat,
        /// Exit 1 when a finding is at or above this severity (info, low, medium, high,
        /// critical), or `none`.
        #[arg(long, default_value = "medium", value_name = "SEVERITY")]
        fail_on: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ExplainFormat {
    Text,
    Json,
}

fn load(name: &str) -> anyhow::Result<Profile> {
    Ok(if name == "default" {
        watertight_sandbox::default_profile()
    } else {
        Profile::load(std::path::Path::new(name))?
    })
}

pub fn run(cmd: Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Show { name, effective: _ } => {
            let text = if name == "default" {
                watertight_sandbox::default_profile().to_toml()
            } else {
                let layered = Profile::load_layered(std::path::Path::new(&name))?;
                let chain: Vec<String> = layered
                    .files
                    .iter()
                    .map(|f| watertight_sys::text::quote(f.as_os_str().as_bytes()))
                    .collect();
                format!(
                    "# The effective profile of {}, over the built-in profile.\n{}",
                    chain.join(" extends "),
                    layered.profile.to_toml()
                )
            };
            print_out(&text)?;
        }
        Command::Check { file } => {
            Profile::load(&file)?;
        }
        Command::Explain {
            name,
            format,
            fail_on,
        } => return explain(&name, format, &fail_on),
    }
    Ok(0)
}

/// Writes `text` to standard output; a reader that closed it early (`| head`) is not an error.
fn print_out(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn explain(name: &str, format: ExplainFormat, fail_on: &str) -> anyhow::Result<u8> {
    let threshold = match fail_on {
        "none" => None,
        s => Some(s.parse::<Severity>().map_err(|_| {
            anyhow::anyhow!(
                "--fail-on {s}: not a severity (info, low, medium, high, critical, none)"
            )
        })?),
    };
    let job = Job {
        profile: load(name)?,
        argv: vec![OsString::from("PROGRAM")],
        workdir: None,
        box_dir: None,
        stdio: Default::default(),
        env: Vec::new(),
        secrets: Vec::new(),
        events: None,
        forensics: Default::default(),
        bridge_port: None,
        integrity: None,
    };
    // The root sandbox's plan, whoever asks: what the profile is when run as root (a rootless
    // run says in its verdict what it did not enforce).
    let plan = Plan::for_caller(&job, None)?;
    let workload = plan.workload();
    let findings = watertight_audit::audit_workloads(std::slice::from_ref(&workload));
    let mut out = std::io::stdout().lock();
    let written = match format {
        ExplainFormat::Json => {
            let doc = serde_json::json!({
                "plan_digest": plan.digest(),
                "workload": workload,
                "findings": findings,
            });
            serde_json::to_writer_pretty(&mut out, &doc)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
        }
        ExplainFormat::Text => write_text(&mut out, &plan, &workload, &findings),
    };
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r?,
    }
    let failed = threshold.is_some_and(|t| findings.iter().any(|f| f.severity >= t));
    Ok(u8::from(failed))
}

fn write_text(
    out: &mut impl Write,
    plan: &Plan,
    w: &watertight_model::Workload,
    findings: &[Finding],
) -> std::io::Result<()> {
    let s = &w.subjects[0];
    writeln!(out, "profile      {}", plan.profile.name)?;
    writeln!(out, "plan digest  {}", plan.digest())?;
    let kinds = |state| {
        s.namespaces
            .kinds_in(state)
            .map(|k| k.proc_name())
            .collect::<Vec<_>>()
            .join(" ")
    };
    writeln!(
        out,
        "namespaces   own: {}; host's: {}",
        kinds(watertight_model::NamespaceState::Isolated),
        kinds(watertight_model::NamespaceState::Shared)
    )?;
    writeln!(out, "capabilities none (every set empty)")?;
    writeln!(
        out,
        "seccomp      filter ({}), on violation: {:?}",
        s.seccomp.profile.as_deref().unwrap_or("-"),
        plan.profile.seccomp.on_violation
    )?;
    writeln!(out, "no_new_privs yes")?;
    writeln!(
        out,
        "user         uid {} gid {} inside; host uid {}+slot (one of {})",
        plan.profile.identity.uid,
        plan.profile.identity.gid,
        plan.profile.identity.host_id_base,
        plan.profile.identity.slots
    )?;
    writeln!(
        out,
        "root         {}",
        if s.readonly_rootfs == Some(true) {
            "read-only"
        } else {
            "writable (throwaway overlay)"
        }
    )?;
    writeln!(out, "mounts")?;
    for m in &s.mounts {
        writeln!(
            out,
            "  {:<24} {:<10} {}{}",
            m.target,
            if m.read_only { "read-only" } else { "writable" },
            m.fs_type.as_deref().unwrap_or("bind"),
            m.host_path
                .as_deref()
                .map(|h| format!(" of host {}", watertight_sys::text::quote(h.as_bytes())))
                .unwrap_or_default()
        )?;
    }
    let masked = s.masked_paths.as_deref().unwrap_or_default();
    writeln!(out, "masked       {} paths", masked.len())?;
    writeln!(out, "findings     {}", findings.len())?;
    for f in findings {
        writeln!(
            out,
            "  {:<8} {:<24} {}",
            f.severity.as_str(),
            f.rule,
            f.message
        )?;
    }
    Ok(())
}
