//! Which exec-integrity enforcement layers this kernel offers, each with a one-line reason.
//! Every answer comes from trying the real thing (a Landlock domain on a throwaway thread,
//! loading the real BPF objects), not from config files: `bpftool feature probe` and the LSM list
//! both claim BPF LSM where the kernel refuses it at load.

use crate::gate::object;
use serde::Serialize;
use std::fmt;

/// One enforcement layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// Landlock EXECUTE restricted to the verified tree.
    Landlock,
    /// tp_btf sched_process_exec + sys_enter mmap/mprotect gate with SIGKILL.
    BpfExecGate,
    /// BPF LSM bprm_check_security/mmap_file (refuses with EPERM instead of killing).
    BpfLsm,
    /// `vm.memfd_noexec` sysctl (set to 2 in the sandbox's pid namespace).
    MemfdNoexec,
}

impl Layer {
    /// The layer's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Landlock => "landlock",
            Layer::BpfExecGate => "bpf-exec-gate",
            Layer::BpfLsm => "bpf-lsm",
            Layer::MemfdNoexec => "memfd-noexec",
        }
    }
}

/// Whether one enforcement layer is available on this kernel, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerStatus {
    /// The layer.
    pub layer: Layer,
    /// Whether this kernel offers it.
    pub available: bool,
    /// What was found: the version or feature that makes it work, or what is missing.
    pub reason: String,
}

/// The result of [`probe_enforcement`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnforcementReport {
    /// Every layer, in [`Layer`] order.
    pub layers: Vec<LayerStatus>,
}

impl EnforcementReport {
    /// The status of one layer.
    pub fn get(&self, layer: Layer) -> &LayerStatus {
        self.layers
            .iter()
            .find(|l| l.layer == layer)
            .expect("probe_enforcement reports every layer")
    }

    /// Whether this kernel offers `layer`.
    pub fn available(&self, layer: Layer) -> bool {
        self.get(layer).available
    }

    /// The layers of `required` this kernel does not offer (empty: the profile can be met).
    /// `watertight run` refuses to start on a non-empty answer unless told to accept weaker
    /// integrity.
    pub fn missing(&self, required: &[Layer]) -> Vec<Layer> {
        required
            .iter()
            .copied()
            .filter(|l| !self.available(*l))
            .collect()
    }
}

impl fmt::Display for EnforcementReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.layers {
            let mark = if l.available { "active" } else { "absent" };
            writeln!(f, "{:<14} {mark:<7} {}", l.layer.name(), l.reason)?;
        }
        Ok(())
    }
}

/// Probes every layer. Loading BPF needs root; as non-root the BPF layers say so.
pub fn probe_enforcement() -> EnforcementReport {
    EnforcementReport {
        layers: vec![
            probe_landlock(),
            probe_exec_gate(),
            probe_bpf_lsm(),
            probe_memfd_noexec(),
        ],
    }
}

fn probe_landlock() -> LayerStatus {
    use landlock::{
        Access, AccessFs, LandlockStatus, Ruleset, RulesetAttr, RulesetCreatedAttr, ABI,
    };
    // restrict_self on a thread that exits right away tells the kernel's ABI without confining
    // anything else (a Landlock domain binds the calling thread only).
    let outcome = std::thread::spawn(|| {
        let execute = AccessFs::from_all(ABI::V1) & AccessFs::Execute;
        Ruleset::default()
            .handle_access(execute)
            .and_then(|r| r.create())
            .and_then(|r| r.add_rules(landlock::path_beneath_rules(["/"], execute)))
            .and_then(|r| r.restrict_self())
            .map(|s| s.landlock)
            .map_err(|e| e.to_string())
    })
    .join();
    let (available, reason) = match outcome {
        Ok(Ok(LandlockStatus::Available {
            effective_abi,
            kernel_abi,
        })) => {
            let abi = kernel_abi.unwrap_or(effective_abi as i32);
            (
                true,
                format!("Landlock ABI {abi}: execute limited to the verified tree"),
            )
        }
        Ok(Ok(LandlockStatus::NotEnabled)) => (
            false,
            "Landlock built in but not enabled (add landlock to lsm= on the kernel command line)"
                .into(),
        ),
        Ok(Ok(LandlockStatus::NotImplemented)) => (false, "kernel built without Landlock".into()),
        Ok(Err(e)) => (false, format!("Landlock probe failed: {e}")),
        Err(_) => (false, "Landlock probe thread panicked".into()),
    };
    LayerStatus {
        layer: Layer::Landlock,
        available,
        reason,
    }
}

fn probe_exec_gate() -> LayerStatus {
    // A refusal is an answer here, not an error to print: libbpf would dump the verifier log.
    let previous = libbpf_rs::set_print(None);
    let result =
        object::open(object::EXEC_GATE_OBJECT, "open object").and_then(|o| object::load(o, "load"));
    libbpf_rs::set_print(previous);
    let (available, reason) = match result {
        Ok(_loaded_then_dropped) => (
            true,
            "tp_btf sched_process_exec + sys_enter mmap/mprotect programs load; SIGKILL on unverified code".to_string(),
        ),
        Err(e) => (false, one_line(&e.to_string())),
    };
    LayerStatus {
        layer: Layer::BpfExecGate,
        available,
        reason,
    }
}

/// The first line of a loader error, at most 160 characters: a reason in a one-line refusal.
fn one_line(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    match first.char_indices().nth(160) {
        Some((i, _)) => format!("the programs do not load: {}...", &first[..i]),
        None => format!("the programs do not load: {first}"),
    }
}

/// Whether BPF LSM programs load here (the exec gate's refusal, and an admission program for
/// other BPF loaders, need them), and why not.
pub fn probe_bpf_lsm() -> LayerStatus {
    if !object::is_root() {
        return LayerStatus {
            layer: Layer::BpfLsm,
            available: false,
            reason: "not probed: loading BPF programs needs root (CAP_BPF and CAP_PERFMON)".into(),
        };
    }
    let listed = match std::fs::read_to_string("/sys/kernel/security/lsm") {
        Ok(s) if s.split(',').any(|l| l.trim() == "bpf") => "`bpf` is in the LSM list",
        Ok(_) => "`bpf` is not in the LSM list",
        Err(_) => "LSM list unreadable: securityfs not mounted",
    };
    // The expected refusal would make libbpf print a misleading "try raising ulimit -l" hint;
    // silence its log for this one load.
    let previous = libbpf_rs::set_print(None);
    let result = object::open(object::LSM_PROBE_OBJECT, "open lsm probe")
        .and_then(|o| object::load(o, "load lsm probe"));
    libbpf_rs::set_print(previous);
    let (available, reason) = match result {
        Ok(_) => (
            true,
            "lsm/bprm_check_security loads: exec can be refused with EPERM".to_string(),
        ),
        Err(e) => {
            let why = match e {
                crate::Error::Bpf { reason, .. } => reason,
                other => other.to_string(),
            };
            (
                false,
                format!(
                    "kernel refuses BPF LSM programs at load ({}; {listed})",
                    short(&why)
                ),
            )
        }
    };
    LayerStatus {
        layer: Layer::BpfLsm,
        available,
        reason,
    }
}

fn probe_memfd_noexec() -> LayerStatus {
    let (available, reason) = match std::fs::read_to_string("/proc/sys/vm/memfd_noexec") {
        Ok(v) => (
            true,
            format!("vm.memfd_noexec supported (host value {}); the sandbox sets 2 in its own pid namespace", v.trim()),
        ),
        Err(_) => (false, "no /proc/sys/vm/memfd_noexec (kernel older than 6.3): memfd exec is left to the BPF gate and seccomp".into()),
    };
    LayerStatus {
        layer: Layer::MemfdNoexec,
        available,
        reason,
    }
}

/// First line, at most 160 characters: libbpf errors can carry a whole verifier log.
fn short(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    line.chars().take(160).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_lists_only_unavailable_required_layers() {
        let status = |layer, available| LayerStatus {
            layer,
            available,
            reason: "r".into(),
        };
        let report = EnforcementReport {
            layers: vec![
                status(Layer::Landlock, true),
                status(Layer::BpfExecGate, true),
                status(Layer::BpfLsm, false),
                status(Layer::MemfdNoexec, true),
            ],
        };
        assert_eq!(
            report.missing(&[Layer::Landlock, Layer::BpfLsm]),
            [Layer::BpfLsm]
        );
        assert!(report.missing(&[Layer::BpfExecGate]).is_empty());
        assert!(report.to_string().contains("bpf-lsm        absent  r"));
    }
}
