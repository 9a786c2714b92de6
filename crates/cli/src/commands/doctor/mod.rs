//! `watertight doctor`: what this host supports, capability by capability, and what each
//! missing piece disables. `facts.rs` measures (kernel files, harmless probes, programs on
//! PATH), `assess.rs` turns the measurements into checks (a pure function, unit-tested on
//! described hosts), and the report goes through the one sink like every report command.
//!
//! Exit codes (README, "Reports and exit codes"): 0 when everything `watertight run`'s default
//! profile needs is present (some checks may still be degraded or missing: they say what they
//! cost); 1 when something it needs is missing or could not be probed (named on stderr); 2 on a
//! usage error or an `-o FILE` that cannot be written.

mod assess;
mod facts;

use serde::Serialize;
use serde_json::{Map, Value};
use watertight_report::{
    Exposition, FailOn, Format, Location, LogicalLocation, Report, Row, Rule, Severity,
};

use super::sink::{warn, Sink};
use assess::{Check, Status};
use facts::HostFacts;

/// `watertight doctor` flags.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format: text or json.
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = parse_format)]
    format: Format,
    /// Write the report to FILE instead of standard output (written through, like the report
    /// commands' -o).
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<std::path::PathBuf>,
}

fn parse_format(s: &str) -> Result<Format, String> {
    match s.parse::<Format>() {
        Ok(f @ (Format::Table | Format::Json)) => Ok(f),
        _ => Err(format!("unknown format {s:?} (expected text or json)")),
    }
}

/// Probes the host, prints the report, returns the exit code.
pub fn run(a: Args) -> anyhow::Result<u8> {
    let report = DoctorReport::new(&HostFacts::probe());
    let sink = Sink {
        format: a.format,
        fail_on: FailOn::Never,
        output: a.output,
        atomic: false,
    };
    let code = sink.emit(&report)?;
    if !report.default_profile_missing.is_empty() {
        warn(&format!(
            "watertight run's default profile cannot run here: it needs {} ({})",
            report.default_profile_missing.join(", "),
            if report.euid == 0 {
                "missing"
            } else {
                "missing, or not probed without root: run doctor as root"
            }
        ));
    }
    Ok(code)
}

/// The report: the host and every check. JSON is this structure.
#[derive(Debug, Serialize)]
pub struct DoctorReport {
    /// Always `doctor`.
    command: &'static str,
    /// `watertight -V`'s version and revision.
    version: &'static str,
    /// The running kernel (`uname -r`).
    kernel: String,
    /// The effective uid doctor ran as (probes that need root were skipped without it).
    euid: u32,
    /// Whether everything `run`'s default profile needs is present.
    default_profile_ready: bool,
    /// The checks that hold the default profile back (missing or not probed).
    default_profile_missing: Vec<&'static str>,
    /// Every check, in a fixed order.
    capabilities: Vec<Check>,
}

impl DoctorReport {
    fn new(facts: &HostFacts) -> DoctorReport {
        let capabilities = assess::assess(facts);
        let default_profile_missing: Vec<&'static str> = capabilities
            .iter()
            .filter(|c| c.blocks_default())
            .map(|c| c.name)
            .collect();
        DoctorReport {
            command: "doctor",
            version: crate::version::short(),
            kernel: facts.kernel.clone(),
            euid: facts.euid,
            default_profile_ready: default_profile_missing.is_empty(),
            default_profile_missing,
            capabilities,
        }
    }
}

impl Report for DoctorReport {
    fn command(&self) -> &str {
        self.command
    }

    /// Every check that is not ok, on the one scale: what the default profile needs and lacks
    /// is high, a degraded capability medium, anything else low (unknown: info).
    fn rows(&self) -> Vec<Row> {
        self.capabilities
            .iter()
            .filter(|c| c.status != Status::Ok)
            .map(|c| {
                let severity = match (c.blocks_default(), c.status) {
                    (true, _) => Severity::High,
                    (false, Status::Degraded) => Severity::Medium,
                    (false, Status::Unknown) => Severity::Info,
                    (false, _) => Severity::Low,
                };
                let mut rule = Rule::new(format!("doctor/{}", c.name), c.enables);
                rule.help = c.fix.clone();
                let mut properties = Map::new();
                properties.insert("status".into(), Value::from(c.status.as_str()));
                Row {
                    rule,
                    severity,
                    message: format!(
                        "{} {}: {}; without it: {}",
                        c.name,
                        c.status.as_str(),
                        c.detail,
                        c.without
                    ),
                    location: Location {
                        file: None,
                        region: None,
                        logical: vec![LogicalLocation {
                            name: "host".into(),
                            fully_qualified_name: None,
                            kind: "resource",
                        }],
                    },
                    fingerprint: Some(format!("doctor/{}/{}", c.name, c.status.as_str())),
                    properties,
                    gates: c.blocks_default(),
                    suppression: None,
                }
            })
            .collect()
    }

    fn write_table(&self, out: &mut String) {
        out.push_str(&format!(
            "watertight doctor: Linux {}, running as {}\n\n",
            self.kernel,
            if self.euid == 0 {
                "root".to_owned()
            } else {
                format!("euid {} (probes that need root are unknown)", self.euid)
            }
        ));
        // A `*` marks what watertight run's default profile needs.
        let name = |c: &Check| format!("{}{}", c.name, if c.needed_by_default { "*" } else { "" });
        let width = self
            .capabilities
            .iter()
            .map(|c| name(c).len())
            .max()
            .unwrap_or(0);
        let indent = " ".repeat(10 + width + 2);
        let one = |s: &str| watertight_report::table::clip(s, 400);
        for c in &self.capabilities {
            out.push_str(&format!(
                "{:<10}{:<width$}  {}\n",
                c.status.as_str(),
                name(c),
                one(&c.detail),
            ));
            if c.status == Status::Ok {
                out.push_str(&format!("{indent}for: {}\n", one(c.enables)));
            } else {
                out.push_str(&format!("{indent}without it: {}\n", one(&c.without)));
                if let Some(fix) = &c.fix {
                    out.push_str(&format!("{indent}fix: {}\n", one(fix)));
                }
            }
        }
        out.push_str("\n* needed by watertight run's default profile\n");
        out.push('\n');
        if self.default_profile_ready {
            out.push_str(
                "watertight run's default profile: ready (everything it needs is present)\n",
            );
        } else {
            out.push_str(&format!(
                "watertight run's default profile: not ready: needs {}\n",
                self.default_profile_missing.join(", ")
            ));
        }
    }

    fn write_metrics(&self, out: &mut Exposition) {
        let mut family = out.gauge(
            "watertight_doctor_capability_ok",
            "Whether a capability watertight uses is present and working on this host (1) or not (0).",
        );
        for c in &self.capabilities {
            family.sample(
                &[("capability", c.name), ("status", c.status.as_str())],
                u8::from(c.status == Status::Ok),
            );
        }
    }

    /// 0 ready, 1 when the default profile lacks something, whatever `--fail-on` (doctor has
    /// none).
    fn exit_code(&self, _: FailOn) -> u8 {
        u8::from(!self.default_profile_ready)
    }
}
