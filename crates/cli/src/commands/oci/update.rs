//! `update`: --resources FILE|- (linux.resources JSON) and runc's flag forms.

use anyhow::Context;
use clap::Args;
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;

#[derive(Args, Debug)]
pub(super) struct UpdateArgs {
    /// A linux.resources JSON file, or - for stdin.
    #[arg(long, short = 'r')]
    resources: Option<String>,
    /// Memory limit in bytes (suffixes k, m, g).
    #[arg(long)]
    memory: Option<String>,
    /// Memory plus swap limit in bytes (-1: unlimited).
    #[arg(long)]
    memory_swap: Option<String>,
    /// Memory reservation (soft limit).
    #[arg(long)]
    memory_reservation: Option<String>,
    /// CPU shares.
    #[arg(long)]
    cpu_shares: Option<u64>,
    /// CFS quota in microseconds.
    #[arg(long)]
    cpu_quota: Option<i64>,
    /// CFS period in microseconds.
    #[arg(long)]
    cpu_period: Option<u64>,
    /// CPUs (cpuset).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Memory nodes (cpuset).
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Maximum number of tasks.
    #[arg(long)]
    pids_limit: Option<i64>,
    /// Block IO weight.
    #[arg(long)]
    blkio_weight: Option<u64>,
    /// Container id.
    pub(super) id: String,
}

fn bytes(flag: &str, text: &str) -> anyhow::Result<i64> {
    if text == "-1" {
        return Ok(-1);
    }
    let lower = text.to_ascii_lowercase();
    let (num, mult) = match lower.trim_end_matches('b').chars().last() {
        Some('k') => (&lower[..lower.trim_end_matches('b').len() - 1], 1i64 << 10),
        Some('m') => (&lower[..lower.trim_end_matches('b').len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (lower.trim_end_matches('b'), 1),
    };
    let n: i64 = num
        .parse()
        .with_context(|| format!("--{flag} {text:?}: not a size"))?;
    Ok(n * mult)
}

pub(super) fn run(root: &Path, a: UpdateArgs) -> anyhow::Result<u8> {
    let mut r: Value = match a.resources.as_deref() {
        Some("-") => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            serde_json::from_str(&text).context("--resources -: not JSON")?
        }
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("--resources {path}"))?;
            serde_json::from_str(&text).with_context(|| format!("--resources {path}: not JSON"))?
        }
        None => json!({}),
    };
    let obj = |r: &mut Value, k: &str| {
        if !r[k].is_object() {
            r[k] = json!({});
        }
    };
    if let Some(m) = &a.memory {
        obj(&mut r, "memory");
        r["memory"]["limit"] = bytes("memory", m)?.into();
    }
    if let Some(m) = &a.memory_swap {
        obj(&mut r, "memory");
        r["memory"]["swap"] = bytes("memory-swap", m)?.into();
    }
    if let Some(m) = &a.memory_reservation {
        obj(&mut r, "memory");
        r["memory"]["reservation"] = bytes("memory-reservation", m)?.into();
    }
    if let Some(v) = a.cpu_shares {
        obj(&mut r, "cpu");
        r["cpu"]["shares"] = v.into();
    }
    if let Some(v) = a.cpu_quota {
        obj(&mut r, "cpu");
        r["cpu"]["quota"] = v.into();
    }
    if let Some(v) = a.cpu_period {
        obj(&mut r, "cpu");
        r["cpu"]["period"] = v.into();
    }
    if let Some(v) = &a.cpuset_cpus {
        obj(&mut r, "cpu");
        r["cpu"]["cpus"] = v.clone().into();
    }
    if let Some(v) = &a.cpuset_mems {
        obj(&mut r, "cpu");
        r["cpu"]["mems"] = v.clone().into();
    }
    if let Some(v) = a.pids_limit {
        r["pids"] = json!({"limit": v});
    }
    if let Some(v) = a.blkio_weight {
        r["blockIO"] = json!({"weight": v});
    }
    watertight_oci::lifecycle::update(root, &a.id, &r)?;
    Ok(0)
}
