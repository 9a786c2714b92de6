//! `watertight audit seccomp --pid PID`: which system calls a live process's seccomp filters let
//! through to the kernel, read back from the kernel (`PTRACE_SECCOMP_GET_FILTER`) and run over
//! every native call number with the arguments unknown (crates/seccomp `inspect`). Each call of
//! watertight's violation class (mount family, namespaces, ptrace, bpf, keyrings, io_uring,
//! userfaultfd, kexec, modules, perf) that still gets through is a finding; no filter at all is a
//! high one. docs/kernel-audit.md uses it to measure what gVisor's Sentry can ask of the host.

use crate::commands::sink::ReportArgs;
use anyhow::Context;
use serde::Serialize;
use serde_json::{json, Map};
use watertight_report::{Exposition, Location, LogicalLocation, Report, Row, Rule, Severity};
use watertight_seccomp::inspect::{outcomes, CallOutcome, Insn};
use watertight_seccomp::VIOLATION_SYSCALLS;

/// Violation-class calls whose refusal is by argument: allowed for some arguments by design.
const ARGUMENT_FILTERED: [&str; 2] = ["clone", "socket"];

#[derive(clap::Args)]
pub struct Args {
    /// The process to read (its filters are copied while it is stopped for a moment with
    /// PTRACE_INTERRUPT, then it is detached). Needs root.
    #[arg(long, value_name = "PID")]
    pub pid: i32,

    #[command(flatten)]
    pub output: ReportArgs,
}

/// The filters of one process and what they let through.
#[derive(Serialize)]
struct SeccompReport {
    pid: i32,
    /// The process's name (`/proc/PID/comm`).
    comm: String,
    /// Instructions per filter, newest first.
    filters: Vec<usize>,
    /// Calls some argument values let through every filter.
    reaching_kernel: Vec<String>,
    /// Calls left to a tracer or a user-notification supervisor (watertight's supervisor refuses
    /// every one it is handed; another may not).
    deferred: Vec<String>,
    /// Calls no argument values let through.
    refused: Vec<String>,
    /// Violation-class calls that get through (the findings).
    violation_class_reaching: Vec<String>,
    calls: Vec<CallOutcome>,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let sink = args.output.sink();
    let comm_path = format!("/proc/{}/comm", args.pid);
    let comm = std::fs::read_to_string(&comm_path)
        .with_context(|| format!("--pid {}: no such process ({comm_path})", args.pid))?
        .trim()
        .to_string();
    let filters = watertight_sys::seccomp::read_filters(args.pid).with_context(|| {
        format!(
            "--pid {}: cannot read its seccomp filters (needs root: CAP_SYS_ADMIN and ptrace access; fails while another tracer holds it)",
            args.pid
        )
    })?;
    let programs: Vec<Vec<Insn>> = filters
        .iter()
        .map(|f| {
            f.iter()
                .map(|i| Insn {
                    code: i.code,
                    jt: i.jt,
                    jf: i.jf,
                    k: i.k,
                })
                .collect()
        })
        .collect();
    let calls = outcomes(&programs);
    let names = |pick: fn(&CallOutcome) -> bool| -> Vec<String> {
        calls
            .iter()
            .filter(|c| pick(c))
            .map(|c| c.name.clone())
            .collect()
    };
    let violation_class_reaching = if programs.is_empty() {
        Vec::new()
    } else {
        calls
            .iter()
            // Every program needs clone and socket; their danger is in the arguments (namespace
            // flags; packet, alg and vsock families), so only an unconditional allow counts.
            .filter(|c| {
                c.reaches_kernel
                    && (c.unconditional || !ARGUMENT_FILTERED.contains(&c.name.as_str()))
            })
            .filter(|c| VIOLATION_SYSCALLS.contains(&c.name.as_str()))
            .map(|c| c.name.clone())
            .collect()
    };
    let report = SeccompReport {
        pid: args.pid,
        comm,
        filters: programs.iter().map(Vec::len).collect(),
        reaching_kernel: names(|c| c.reaches_kernel),
        deferred: names(|c| c.deferred),
        refused: names(|c| !c.reaches_kernel && !c.deferred),
        violation_class_reaching,
        calls,
    };
    sink.emit(&report)
}

impl SeccompReport {
    fn location(&self) -> Location {
        Location {
            file: None,
            region: None,
            logical: vec![LogicalLocation {
                name: format!("pid {} ({})", self.pid, self.comm),
                fully_qualified_name: None,
                kind: "process",
            }],
        }
    }
}

impl Report for SeccompReport {
    fn command(&self) -> &str {
        "seccomp"
    }

    fn rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        let mut props = Map::new();
        props.insert("pid".into(), json!(self.pid));
        if self.filters.is_empty() {
            let mut rule = Rule::new("seccomp/no-filter", "the process has no seccomp filter");
            rule.help = Some("run it under a seccomp profile (watertight run, watertight-runc, Docker's default profile)".into());
            rows.push(Row {
                rule,
                severity: Severity::High,
                message: format!(
                    "pid {} ({}) has no seccomp filter: every system call reaches the kernel",
                    self.pid, self.comm
                ),
                location: self.location(),
                fingerprint: Some(format!("seccomp/no-filter|{}", self.comm)),
                properties: props,
                gates: true,
                suppression: None,
            });
            return rows;
        }
        for name in &self.violation_class_reaching {
            let mut rule = Rule::new(
                format!("seccomp/reaches/{name}"),
                format!("`{name}` gets through the seccomp filters"),
            );
            rule.help = Some(format!(
                "refuse `{name}` in the process's seccomp profile unless it needs it"
            ));
            let mut props = props.clone();
            props.insert("syscall".into(), json!(name));
            rows.push(Row {
                rule,
                severity: Severity::Medium,
                message: format!(
                    "pid {} ({}): `{name}` (watertight's violation class) gets through its seccomp filters",
                    self.pid, self.comm
                ),
                location: self.location(),
                fingerprint: Some(format!("seccomp/reaches/{name}|{}", self.comm)),
                properties: props,
                gates: true,
                suppression: None,
            });
        }
        rows
    }

    fn write_table(&self, out: &mut String) {
        out.push_str(&format!(
            "pid {} ({}): {} seccomp filter(s) ({} instructions, newest first)\n",
            self.pid,
            self.comm,
            self.filters.len(),
            self.filters
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        out.push_str(&format!(
            "{} of {} system calls can reach the kernel (for some arguments):\n",
            self.reaching_kernel.len(),
            self.calls.len()
        ));
        out.push_str(&wrap(&self.reaching_kernel));
        if !self.deferred.is_empty() {
            out.push_str(&format!(
                "{} left to a tracer or a user-notification supervisor:\n",
                self.deferred.len()
            ));
            out.push_str(&wrap(&self.deferred));
        }
        if !self.violation_class_reaching.is_empty() {
            out.push_str(&format!(
                "violation class that gets through: {}\n",
                self.violation_class_reaching.join(", ")
            ));
        }
    }

    fn write_metrics(&self, out: &mut Exposition) {
        let pid = self.pid.to_string();
        let labels = [("pid", pid.as_str()), ("comm", self.comm.as_str())];
        out.gauge(
            "watertight_seccomp_filters",
            "seccomp filters installed on the process.",
        )
        .sample(&labels, self.filters.len());
        out.gauge(
            "watertight_seccomp_syscalls_reaching_kernel",
            "Native system calls the process's filters let through for some arguments.",
        )
        .sample(&labels, self.reaching_kernel.len());
    }
}

/// Names wrapped to about 100 columns, indented.
fn wrap(names: &[String]) -> String {
    let mut out = String::new();
    let mut line = String::from(" ");
    for name in names {
        if line.len() + name.len() + 1 > 100 {
            out.push_str(&line);
            out.push('\n');
            line = String::from(" ");
        }
        line.push(' ');
        line.push_str(name);
    }
    if !line.trim().is_empty() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}
