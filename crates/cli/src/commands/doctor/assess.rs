//! From what was measured ([`HostFacts`]) to what it means: one [`Check`] per capability, with
//! its status, the detail measured, the watertight feature it enables, what is lost without it,
//! and whether `watertight run`'s default profile needs it. A pure function of the facts, so
//! the unit tests below describe other hosts (pure v2, v1 without swap accounting, user
//! namespaces switched off, an old kernel) without root.

use serde::Serialize;
use watertight_cgroups::{Controller, DeviceBackend, Layout, Mode, Placement};
use watertight_integrity::Layer;

use super::facts::{HostFacts, Probe, Tool};

/// How a capability stands on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Present and working.
    Ok,
    /// Present, but weaker than it could be (the detail says how).
    Degraded,
    /// Absent: what it enables does not work here.
    Missing,
    /// Not probed (doctor needs root for it) or no clear answer.
    Unknown,
}

impl Status {
    /// The word in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Degraded => "degraded",
            Status::Missing => "missing",
            Status::Unknown => "unknown",
        }
    }
}

/// One capability of the host, assessed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// A stable name (`cgroup-memory`, `user-namespaces`, ...).
    pub name: &'static str,
    pub status: Status,
    /// What was measured.
    pub detail: String,
    /// The watertight feature this capability enables.
    pub enables: &'static str,
    /// What does not work, or works less well, without it.
    pub without: String,
    /// How to get it, when it is not ok and there is a known fix.
    pub fix: Option<String>,
    /// `watertight run` on its default profile needs it: doctor exits 1 when such a check is
    /// missing or unknown.
    pub needed_by_default: bool,
}

impl Check {
    fn new(name: &'static str, needed_by_default: bool, enables: &'static str) -> Check {
        Check {
            name,
            status: Status::Ok,
            detail: String::new(),
            enables,
            without: String::new(),
            fix: None,
            needed_by_default,
        }
    }

    fn status(mut self, status: Status, detail: impl Into<String>) -> Check {
        self.status = status;
        self.detail = detail.into();
        self
    }

    fn without(mut self, without: impl Into<String>) -> Check {
        self.without = without.into();
        self
    }

    fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }

    /// Whether the default profile is held back by this check.
    pub fn blocks_default(&self) -> bool {
        self.needed_by_default && matches!(self.status, Status::Missing | Status::Unknown)
    }
}

/// Every capability name, in report order.
pub const NAMES: [&str; 20] = [
    "root",
    "namespaces",
    "user-namespaces",
    "cgroups",
    "cgroup-memory",
    "cgroup-pids",
    "cgroup-devices",
    "cgroup-cpu",
    "cgroup-cpu-time",
    "cgroup-freezer",
    "seccomp-user-notif",
    "landlock",
    "bpf-exec-gate",
    "memfd-noexec",
    "bpf-lsm",
    "bpf-token",
    "nftables-bridge",
    "runsc",
    "qemu",
    "kvm",
];

/// Every check, in [`NAMES`] order.
pub fn assess(f: &HostFacts) -> Vec<Check> {
    let root = f.euid == 0;
    let layout = f.cgroup_layout.as_ref().ok();
    let checks = vec![
        check_root(f),
        check_namespaces(f),
        check_user_namespaces(f),
        check_cgroups(f),
        check_memory(f, layout),
        check_controller(
            layout,
            Controller::Pids,
            Check::new("cgroup-pids", true, "run's task limit (--pids-limit, limits.pids; the default profile's 128): a fork bomb stays inside the sandbox")
                .without("run refuses to start with a task limit, and every profile that keeps the default's 128 has one; without a limit, forks are bounded only by the host's own limits")
                .fix("enable the pids controller (v1: mount it; v2: it must be in the root's cgroup.controllers)"),
        ),
        check_devices(f, layout, root),
        check_controller(
            layout,
            Controller::Cpu,
            Check::new("cgroup-cpu", false, "run's CPU bandwidth limit (--cpus, limits.cpus)")
                .without("run refuses to start with --cpus; without it the sandbox may use every core")
                .fix("enable the cpu controller (v1: mount it; v2: it must be in the root's cgroup.controllers)"),
        ),
        check_cpu_time(layout),
        check_freezer(layout),
        check_seccomp(f),
        check_integrity_layer(f, Layer::Landlock, "landlock", "run --manifest: Landlock limits execute to the verified tree (and write-opens to the writable mounts)"),
        check_integrity_layer(f, Layer::BpfExecGate, "bpf-exec-gate", "run --manifest: the BPF exec gate kills any exec or code mapping of a file that was not verified"),
        check_integrity_layer(f, Layer::MemfdNoexec, "memfd-noexec", "run --manifest: vm.memfd_noexec = 2 in the sandbox's pid namespace refuses executing memfds"),
        check_bpf_lsm(f, root),
        check_bpf_token(f),
        check_nft(f),
        check_runsc(f.runsc.as_ref()),
        check_qemu(f.qemu.as_ref()),
        check_kvm(f, root),
    ];
    debug_assert!(checks.iter().map(|c| c.name).eq(NAMES));
    checks
}

fn check_root(f: &HostFacts) -> Check {
    let c = Check::new(
        "root",
        true,
        "watertight run (it writes uid maps, makes cgroups and mounts) and net guard; doctor's probes marked `needs root`",
    )
    .without("run works through user namespaces with weaker limits (its verdict's `unenforced` lists them: docs/profile.md \"Without root\"); doctor cannot probe what needs root and reports it as unknown");
    if f.euid == 0 {
        c.status(Status::Ok, "running as root (euid 0)")
    } else {
        c.status(Status::Missing, format!("running as euid {}", f.euid))
            .fix("run as root (sudo watertight doctor)")
    }
}

fn check_namespaces(f: &HostFacts) -> Check {
    let c = Check::new(
        "namespaces",
        true,
        "run: every sandbox gets its own user, pid, mount, network, uts, ipc and cgroup namespace",
    )
    .without("run cannot start: it clones the sandbox into all of them at once");
    let missing: Vec<&str> = f
        .namespaces
        .iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| *name)
        .collect();
    if missing.is_empty() {
        let all: Vec<&str> = f.namespaces.iter().map(|(n, _)| *n).collect();
        c.status(Status::Ok, all.join(" "))
    } else {
        c.status(
            Status::Missing,
            format!("no {} namespace (/proc/self/ns/)", missing.join(", ")),
        )
        .fix("a kernel built with CONFIG_NAMESPACES and each CONFIG_*_NS")
    }
}

fn check_user_namespaces(f: &HostFacts) -> Check {
    let c = Check::new(
        "user-namespaces",
        true,
        "run: the sandbox's root is an unprivileged uid of its own (a slot) on the host",
    )
    .without("run cannot start: it creates the sandbox's user namespace as the slot's uid, without privileges");
    let mut sysctls = Vec::new();
    if let Some(n) = f.max_user_namespaces {
        sysctls.push(format!("user.max_user_namespaces = {n}"));
    }
    if let Some(n) = f.unprivileged_userns_clone {
        sysctls.push(format!("kernel.unprivileged_userns_clone = {n}"));
    }
    if let Some(n) = f.apparmor_restrict_userns {
        sysctls.push(format!(
            "kernel.apparmor_restrict_unprivileged_userns = {n}"
        ));
    }
    let (uid, probe) = f.userns_probe;
    match probe {
        Ok(()) => c.status(
            Status::Ok,
            format!("created one as uid {uid}; {}", sysctls.join(", ")),
        ),
        Err(errno) => {
            let err = std::io::Error::from_raw_os_error(errno);
            let c = c.status(
                Status::Missing,
                format!(
                    "creating one as uid {uid} failed: {err}; {}",
                    sysctls.join(", ")
                ),
            );
            if f.max_user_namespaces == Some(0) {
                c.fix("sysctl -w user.max_user_namespaces=15000")
            } else if f.unprivileged_userns_clone == Some(0) {
                c.fix("sysctl -w kernel.unprivileged_userns_clone=1 (run creates the namespace as an unprivileged uid)")
            } else if f.apparmor_restrict_userns == Some(1) {
                c.fix("sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for watertight with `userns,`")
            } else if errno == nix::libc::EINVAL {
                c.fix("a kernel built with CONFIG_USER_NS")
            } else {
                c
            }
        }
    }
}

/// `hybrid: v1 memory pids ...; cgroup2 at /sys/fs/cgroup/unified (hugetlb)`.
fn describe_layout(l: &Layout) -> String {
    let mode = match l.mode() {
        Mode::V1 => "v1",
        Mode::V2 => "v2",
        Mode::Hybrid => "hybrid",
    };
    let v1: Vec<&str> = Controller::ALL
        .into_iter()
        .filter(|c| l.v1_root(*c).is_some())
        .map(Controller::name)
        .collect();
    let mut parts = vec![mode.to_owned()];
    if !v1.is_empty() {
        parts.push(format!("v1 hierarchies: {}", v1.join(" ")));
    }
    if let Some(root) = l.unified_root() {
        let controllers = match l.unified_controllers() {
            [] => "no controllers".to_owned(),
            list => format!("controllers: {}", list.join(" ")),
        };
        parts.push(format!("cgroup2 at {} ({controllers})", root.display()));
    }
    parts.join("; ")
}

fn check_cgroups(f: &HostFacts) -> Check {
    let c = Check::new(
        "cgroups",
        true,
        "run: every sandbox's own cgroup, for its limits, its accounting (peak memory, OOM kills) and killing all of it at once",
    )
    .without("run cannot start: it makes a cgroup for every sandbox");
    match &f.cgroup_layout {
        Ok(l) => c.status(Status::Ok, describe_layout(l)),
        Err(e) => c
            .status(Status::Missing, e.clone())
            .fix("mount cgroup2 at /sys/fs/cgroup (or the v1 hierarchies)"),
    }
}

/// Where `controller` lives, for the detail of an ok check.
fn placement_text(l: &Layout, controller: Controller) -> Option<String> {
    Some(match l.placement(controller)? {
        Placement::V1(root) => format!("v1 hierarchy at {}", root.display()),
        Placement::Unified => match l.unified_root() {
            Some(root) => format!("cgroup2 at {}", root.display()),
            None => "cgroup2".to_owned(),
        },
    })
}

fn check_controller(layout: Option<&Layout>, controller: Controller, c: Check) -> Check {
    match layout {
        None => c.status(Status::Missing, "no cgroup hierarchy"),
        Some(l) => match placement_text(l, controller) {
            Some(place) => Check {
                fix: None,
                ..c.status(Status::Ok, place)
            },
            None => c.status(
                Status::Missing,
                format!(
                    "no {} controller ({})",
                    controller.name(),
                    describe_layout(l)
                ),
            ),
        },
    }
}

fn check_memory(f: &HostFacts, layout: Option<&Layout>) -> Check {
    let c = check_controller(
        layout,
        Controller::Memory,
        Check::new(
            "cgroup-memory",
            true,
            "run's memory limit (--memory-limit, limits.memory; the default profile's 512M) and the ML verdict; peak memory and OOM kills in the verdict",
        )
        .without("run refuses to start with a memory limit, and the default profile has one: only a profile without limits.memory runs, and then memory is not limited")
        .fix("enable the memory controller (v1: mount it; v2: it must be in the root's cgroup.controllers)"),
    );
    let v1 = layout.is_some_and(|l| l.v1_root(Controller::Memory).is_some());
    if c.status == Status::Ok && v1 && f.memsw == Some(false) && f.swap_devices > 0 {
        let detail = format!(
            "{}; no swap accounting (memory.memsw.*) while {} swap device(s) are in use",
            c.detail, f.swap_devices
        );
        return c
            .status(Status::Degraded, detail)
            .without("the memory limit counts RAM only: a sandbox can use swap beyond it")
            .fix("boot with swapaccount=1, or turn swap off");
    }
    c
}

fn check_devices(f: &HostFacts, layout: Option<&Layout>, root: bool) -> Check {
    let c = Check::new(
        "cgroup-devices",
        true,
        "run's device allowlist ([dev] devices: null, zero, full, random, urandom, tty by default): no other device can be opened or made, whatever the mounts",
    )
    .without("run cannot start: every profile has a device allowlist");
    let Some(l) = layout else {
        return c.status(Status::Missing, "no cgroup hierarchy");
    };
    match l.device_backend() {
        DeviceBackend::V1 => c.status(
            Status::Ok,
            placement_text(l, Controller::Devices).unwrap_or_else(|| "v1 devices".into()),
        ),
        DeviceBackend::Bpf => match &f.device_program {
            Probe::Found(Ok(())) => c.status(
                Status::Ok,
                "cgroup2: the BPF device program (BPF_PROG_TYPE_CGROUP_DEVICE) loads",
            ),
            Probe::Found(Err(e)) => c
                .status(
                    Status::Missing,
                    format!("cgroup2: the BPF device program does not load: {e}"),
                )
                .fix("a kernel with CONFIG_BPF_SYSCALL and CONFIG_CGROUP_BPF"),
            Probe::NeedsRoot | Probe::Skipped(_) if !root => c.status(
                Status::Unknown,
                "cgroup2: the BPF device program; loading it needs root",
            ),
            Probe::NeedsRoot | Probe::Skipped(_) => {
                c.status(Status::Unknown, "cgroup2: the BPF device program was not probed")
            }
        },
        DeviceBackend::Unavailable => c
            .status(Status::Missing, "no v1 devices hierarchy and no cgroup2 mount")
            .fix("mount cgroup2 (the device program attaches to a unified cgroup) or the v1 devices hierarchy"),
    }
}

fn check_cpu_time(layout: Option<&Layout>) -> Check {
    let c = Check::new(
        "cgroup-cpu-time",
        false,
        "run's CPU-time limit (--time-limit) while the program runs: the sandbox's CPU time read live from the cgroup (v2 cpu.stat, v1 cpuacct)",
    )
    .without("--time-limit is not enforced while the program runs: only its wall-time limit (2T+1) ends it, and the verdict counts CPU from the reaped processes' rusage");
    match layout {
        None => c.status(Status::Missing, "no cgroup hierarchy"),
        Some(l) => match (l.unified_root(), l.v1_root(Controller::Cpuacct)) {
            (Some(root), _) => c.status(
                Status::Ok,
                format!("cgroup2 cpu.stat at {}", root.display()),
            ),
            (None, Some(root)) => c.status(
                Status::Ok,
                format!("v1 cpuacct hierarchy at {}", root.display()),
            ),
            (None, None) => c
                .status(
                    Status::Missing,
                    "no cgroup2 mount and no v1 cpuacct hierarchy",
                )
                .fix("mount the v1 cpuacct hierarchy or cgroup2"),
        },
    }
}

fn check_freezer(layout: Option<&Layout>) -> Check {
    check_controller(
        layout,
        Controller::Freezer,
        Check::new(
            "cgroup-freezer",
            false,
            "run --on-violation forensic: the whole sandbox is frozen before its evidence is captured",
        )
        .without("the forensic response cannot freeze the sandbox: no evidence bundle (evidence_failed event); the sandbox is still killed")
        .fix("mount the v1 freezer hierarchy or cgroup2 (cgroup.freeze)"),
    )
}

fn check_seccomp(f: &HostFacts) -> Check {
    let c = Check::new(
        "seccomp-user-notif",
        true,
        "run's seccomp filter, whose violation-class calls (mount, unshare, ptrace, bpf, ...) reach the supervisor by user notification: named in events, answered by --on-violation",
    )
    .without("run cannot start: its filter returns SECCOMP_RET_USER_NOTIF for violations, which this kernel does not load");
    match &f.seccomp_actions {
        None => c
            .status(
                Status::Missing,
                "no /proc/sys/kernel/seccomp/actions_avail: seccomp filters are not built in",
            )
            .fix("a kernel with CONFIG_SECCOMP_FILTER (Linux 5.0+ for user notification)"),
        Some(actions) if actions.split_whitespace().any(|a| a == "user_notif") => {
            c.status(Status::Ok, format!("actions: {actions}"))
        }
        Some(actions) => c
            .status(
                Status::Missing,
                format!("actions: {actions} (no user_notif)"),
            )
            .fix("Linux 5.0 or later"),
    }
}

fn check_integrity_layer(
    f: &HostFacts,
    layer: Layer,
    name: &'static str,
    enables: &'static str,
) -> Check {
    let c = Check::new(name, false, enables).without(
        "run --manifest refuses to start (it requires Landlock, the BPF exec gate and memfd-noexec) unless --allow-weaker-integrity, which runs without this layer",
    );
    let s = f.integrity.get(layer);
    if s.available {
        c.status(Status::Ok, s.reason.clone())
    } else if f.euid != 0 && layer == Layer::BpfExecGate {
        c.status(
            Status::Unknown,
            "loading the gate's BPF programs needs root (CAP_BPF and CAP_PERFMON)",
        )
    } else {
        c.status(Status::Missing, s.reason.clone())
    }
}

fn check_bpf_lsm(f: &HostFacts, root: bool) -> Check {
    let c = Check::new(
        "bpf-lsm",
        false,
        "nothing in this version: the exec gate kills unverified code; BPF LSM would let it refuse the exec with EPERM instead",
    )
    .without("nothing is lost in this version");
    let listed = match &f.lsm_list {
        Ok(list) if list.split(',').any(|l| l.trim() == "bpf") => {
            format!("`bpf` is in the LSM list ({list})")
        }
        Ok(list) => format!("`bpf` is not in the LSM list ({list})"),
        Err(e) => format!("LSM list unreadable ({e})"),
    };
    let s = f.integrity.get(Layer::BpfLsm);
    if !root {
        c.status(
            Status::Unknown,
            format!("{listed}; whether the kernel loads BPF LSM programs needs root to probe"),
        )
    } else if s.available {
        c.status(Status::Ok, format!("{listed}; {}", s.reason))
    } else {
        c.status(Status::Missing, s.reason.clone())
    }
}

fn check_bpf_token(f: &HostFacts) -> Check {
    let c = Check::new(
        "bpf-token",
        false,
        "run --bpf-observe: a BPF token (Linux 6.9) for observe-only programs (tracepoint, raw_tracepoint) in that sandbox's user namespace; every other sandbox refuses bpf()",
    )
    .without("run --bpf-observe fails before the program starts; every other run is unaffected");
    match f.bpf_token {
        Ok(true) => c.status(Status::Ok, "the kernel knows BPF_TOKEN_CREATE"),
        Ok(false) => c.status(
            Status::Missing,
            "the kernel does not know BPF_TOKEN_CREATE (Linux before 6.9)",
        ),
        Err(errno) if errno == nix::libc::ENOSYS => {
            c.status(Status::Missing, "no bpf() system call")
        }
        Err(errno) => c.status(
            Status::Unknown,
            format!(
                "bpf(BPF_TOKEN_CREATE) was refused before the kernel looked at it: {}",
                std::io::Error::from_raw_os_error(errno)
            ),
        ),
    }
}

fn check_nft(f: &HostFacts) -> Check {
    let c = Check::new(
        "nftables-bridge",
        false,
        "run --net bridge:BR (a veth port with per-port anti-spoofing) and net guard|check: nftables rules in the bridge family",
    )
    .without("run --net bridge:BR, net guard and net check fail; run's default --net none (loopback only) does not need it");
    let version = match &f.nft {
        None => {
            return c
                .status(Status::Missing, "nft is not on PATH")
                .fix("apt-get install nftables")
        }
        Some(Err(e)) => {
            return c.status(Status::Missing, format!("nft does not run: {e}"));
        }
        Some(Ok(v)) => v,
    };
    match &f.nft_bridge {
        Probe::Found(Ok(())) => c.status(
            Status::Ok,
            format!("{version}; the guard's table (bridge family, prerouting hook) applies in a scratch network namespace"),
        ),
        Probe::Found(Err(e)) => c
            .status(
                Status::Missing,
                format!("{version}; the guard's table does not apply: {e}"),
            )
            .fix("a kernel with nf_tables and its bridge family (CONFIG_NF_TABLES_BRIDGE)"),
        Probe::NeedsRoot => c.status(
            Status::Unknown,
            format!("{version}; applying the guard's table (in a scratch network namespace) needs root"),
        ),
        Probe::Skipped(why) => c.status(Status::Unknown, format!("{version}; not probed: {why}")),
    }
}

fn tool_detail(t: &Tool) -> (Status, String) {
    match &t.version {
        Ok(v) => (Status::Ok, format!("{} ({v})", t.path.display())),
        Err(e) => (Status::Degraded, format!("{}: {e}", t.path.display())),
    }
}

fn check_runsc(runsc: Option<&Tool>) -> Check {
    let c = Check::new(
        "runsc",
        false,
        "nothing in watertight: gVisor's runsc, a peer with a user-space kernel between the workload and the host's, to compare with or to pick for workloads that need that boundary",
    )
    .without("nothing in watertight is lost");
    match runsc {
        Some(t) => {
            let (status, detail) = tool_detail(t);
            c.status(status, detail)
        }
        None => c
            .status(Status::Missing, "runsc is not on PATH")
            .fix("apt-get install runsc (gVisor)"),
    }
}

fn check_qemu(qemu: Option<&Tool>) -> Check {
    let c = Check::new(
        "qemu",
        false,
        "the pure cgroup v2 guest test (crates/cli/tests/run_cgroup2_guest.rs boots a kernel under QEMU TCG); no watertight command uses it",
    )
    .without("the cgroup v2 guest test skips; no watertight command is affected");
    match qemu {
        Some(t) => {
            let (status, detail) = tool_detail(t);
            c.status(status, detail)
        }
        None => c
            .status(
                Status::Missing,
                format!("{} is not on PATH", super::facts::qemu_name()),
            )
            .fix("apt-get install --no-install-recommends qemu-system-x86"),
    }
}

fn check_kvm(f: &HostFacts, root: bool) -> Check {
    let c = Check::new(
        "kvm",
        false,
        "hardware-speed QEMU guests; no watertight command uses it (the cgroup v2 guest test runs under TCG either way)",
    )
    .without("QEMU guests run under TCG only (slower); no watertight command is affected");
    match f.kvm_open {
        Ok(()) if f.cpu_virtualization => c.status(Status::Ok, "/dev/kvm opens read-write; the CPU flags show vmx or svm"),
        Ok(()) => c.status(
            Status::Degraded,
            "/dev/kvm opens read-write, but the CPU flags show no vmx or svm (nested virtualization off?): KVM guests may not run",
        ),
        Err(errno) if errno == nix::libc::ENOENT => c.status(Status::Missing, "no /dev/kvm"),
        Err(errno) if !root && matches!(errno, nix::libc::EACCES | nix::libc::EPERM) => c.status(
            Status::Unknown,
            "/dev/kvm is not open to this user (root or the kvm group)",
        ),
        Err(errno) => c.status(
            Status::Missing,
            format!(
                "/dev/kvm does not open read-write: {}",
                std::io::Error::from_raw_os_error(errno)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use watertight_integrity::{EnforcementReport, LayerStatus};

    const HYBRID: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const PURE_V2: &str =
        "35 23 0:30 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n";

    fn integrity(available: bool) -> EnforcementReport {
        EnforcementReport {
            layers: [
                Layer::Landlock,
                Layer::BpfExecGate,
                Layer::BpfLsm,
                Layer::MemfdNoexec,
            ]
            .into_iter()
            .map(|layer| LayerStatus {
                layer,
                available,
                reason: format!("{} reason", layer.name()),
            })
            .collect(),
        }
    }

    /// A host like this machine: root, hybrid cgroups, everything the default profile needs.
    fn ready_host() -> HostFacts {
        HostFacts {
            kernel: "6.18.0".into(),
            euid: 0,
            namespaces: super::super::facts::NAMESPACES
                .iter()
                .map(|n| (*n, true))
                .collect(),
            cgroup_layout: Layout::from_mountinfo(HYBRID, "hugetlb").map_err(|e| e.to_string()),
            memsw: Some(true),
            swap_devices: 0,
            device_program: Probe::Skipped("v1".into()),
            max_user_namespaces: Some(15000),
            unprivileged_userns_clone: None,
            apparmor_restrict_userns: None,
            userns_probe: (0x7000_ffff, Ok(())),
            seccomp_actions: Some(
                "kill_process kill_thread trap errno user_notif trace log allow".into(),
            ),
            integrity: integrity(true),
            lsm_list: Ok("lockdown,capability,landlock,bpf".into()),
            bpf_token: Ok(true),
            nft: Some(Ok("nftables v1.0.6".into())),
            nft_bridge: Probe::Found(Ok(())),
            runsc: None,
            qemu: Some(Tool {
                path: "/usr/bin/qemu-system-x86_64".into(),
                version: Ok("QEMU emulator version 7.2.22".into()),
            }),
            kvm_open: Ok(()),
            cpu_virtualization: true,
        }
    }

    fn get<'a>(checks: &'a [Check], name: &str) -> &'a Check {
        checks.iter().find(|c| c.name == name).unwrap()
    }

    fn blocking(checks: &[Check]) -> Vec<&'static str> {
        checks
            .iter()
            .filter(|c| c.blocks_default())
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn every_name_is_assessed_once_in_order() {
        let checks = assess(&ready_host());
        let names: Vec<&str> = checks.iter().map(|c| c.name).collect();
        assert_eq!(names, NAMES);
        for c in &checks {
            assert!(!c.enables.is_empty() && !c.without.is_empty(), "{}", c.name);
        }
    }

    #[test]
    fn a_ready_host_blocks_nothing() {
        let checks = assess(&ready_host());
        assert!(blocking(&checks).is_empty(), "{checks:#?}");
        let cg = get(&checks, "cgroups");
        assert!(cg.detail.starts_with("hybrid; v1 hierarchies: memory pids cpu cpuacct devices freezer; cgroup2 at /sys/fs/cgroup/unified (controllers: hugetlb)"), "{}", cg.detail);
        assert_eq!(get(&checks, "runsc").status, Status::Missing);
    }

    #[test]
    fn no_memory_controller_means_no_memory_limit() {
        let mut host = ready_host();
        host.cgroup_layout =
            Layout::from_mountinfo(&HYBRID.replace("rw,memory\n", "rw,name=other\n"), "hugetlb")
                .map_err(|e| e.to_string());
        let checks = assess(&host);
        let m = get(&checks, "cgroup-memory");
        assert_eq!(m.status, Status::Missing);
        assert!(m.detail.contains("no memory controller"), "{}", m.detail);
        assert!(m.without.contains("memory limit"), "{}", m.without);
        assert_eq!(blocking(&checks), ["cgroup-memory"]);
    }

    #[test]
    fn v1_memory_without_swap_accounting_is_degraded_only_with_swap() {
        let mut host = ready_host();
        host.memsw = Some(false);
        assert_eq!(get(&assess(&host), "cgroup-memory").status, Status::Ok);
        host.swap_devices = 1;
        let checks = assess(&host);
        let m = get(&checks, "cgroup-memory");
        assert_eq!(m.status, Status::Degraded);
        assert!(m.without.contains("swap"), "{}", m.without);
        assert!(m.fix.as_deref().unwrap().contains("swapaccount=1"));
        assert!(blocking(&checks).is_empty(), "degraded does not block");
    }

    #[test]
    fn pure_v2_uses_the_device_program_and_needs_root_to_probe_it() {
        let mut host = ready_host();
        host.cgroup_layout = Layout::from_mountinfo(PURE_V2, "cpuset cpu io memory hugetlb pids")
            .map_err(|e| e.to_string());
        host.device_program = Probe::Found(Ok(()));
        let checks = assess(&host);
        assert!(get(&checks, "cgroups")
            .detail
            .starts_with("v2; cgroup2 at /sys/fs/cgroup"));
        assert_eq!(get(&checks, "cgroup-devices").status, Status::Ok);
        assert_eq!(
            get(&checks, "cgroup-freezer").detail,
            "cgroup2 at /sys/fs/cgroup"
        );
        assert!(blocking(&checks).is_empty());

        host.euid = 1000;
        host.device_program = Probe::NeedsRoot;
        let checks = assess(&host);
        let d = get(&checks, "cgroup-devices");
        assert_eq!(d.status, Status::Unknown);
        assert!(d.detail.contains("needs root"), "{}", d.detail);
        assert_eq!(blocking(&checks), ["root", "cgroup-devices"]);

        host.euid = 0;
        host.device_program = Probe::Found(Err("bpf(BPF_PROG_LOAD) failed: EPERM".into()));
        assert_eq!(
            get(&assess(&host), "cgroup-devices").status,
            Status::Missing
        );
    }

    #[test]
    fn v2_without_the_pids_controller_blocks_the_default_profile() {
        let mut host = ready_host();
        host.cgroup_layout =
            Layout::from_mountinfo(PURE_V2, "cpu memory").map_err(|e| e.to_string());
        host.device_program = Probe::Found(Ok(()));
        let checks = assess(&host);
        assert_eq!(blocking(&checks), ["cgroup-pids"]);
        assert!(get(&checks, "cgroup-pids").without.contains("task limit"));
    }

    #[test]
    fn no_cgroups_at_all_is_named_once_per_need() {
        let mut host = ready_host();
        host.cgroup_layout = Err("no cgroup hierarchy is mounted".into());
        let checks = assess(&host);
        assert_eq!(
            blocking(&checks),
            ["cgroups", "cgroup-memory", "cgroup-pids", "cgroup-devices"]
        );
        assert_eq!(get(&checks, "cgroup-cpu-time").status, Status::Missing);
    }

    #[test]
    fn v1_without_cpuacct_loses_live_cpu_time() {
        let mut host = ready_host();
        let v1_only: String = HYBRID
            .lines()
            .filter(|l| !l.contains("cgroup2") && !l.contains("cpuacct"))
            .map(|l| format!("{l}\n"))
            .collect();
        host.cgroup_layout = Layout::from_mountinfo(&v1_only, "").map_err(|e| e.to_string());
        let checks = assess(&host);
        let t = get(&checks, "cgroup-cpu-time");
        assert_eq!(t.status, Status::Missing);
        assert!(t
            .without
            .contains("--time-limit is not enforced while the program runs"));
        assert!(blocking(&checks).is_empty());
    }

    #[test]
    fn user_namespace_refusals_name_the_sysctl_to_change() {
        let mut host = ready_host();
        host.userns_probe = (0x7000_ffff, Err(nix::libc::ENOSPC));
        host.max_user_namespaces = Some(0);
        let checks = assess(&host);
        let u = get(&checks, "user-namespaces");
        assert_eq!(u.status, Status::Missing);
        assert!(
            u.detail.contains("user.max_user_namespaces = 0"),
            "{}",
            u.detail
        );
        assert_eq!(
            u.fix.as_deref(),
            Some("sysctl -w user.max_user_namespaces=15000")
        );
        assert_eq!(blocking(&checks), ["user-namespaces"]);

        host.max_user_namespaces = Some(15000);
        host.userns_probe.1 = Err(nix::libc::EPERM);
        host.unprivileged_userns_clone = Some(0);
        assert!(get(&assess(&host), "user-namespaces")
            .fix
            .as_deref()
            .unwrap()
            .contains("kernel.unprivileged_userns_clone=1"));

        host.unprivileged_userns_clone = None;
        host.apparmor_restrict_userns = Some(1);
        let u = assess(&host).remove(2);
        assert!(u
            .detail
            .contains("apparmor_restrict_unprivileged_userns = 1"));
        assert!(u
            .fix
            .unwrap()
            .contains("apparmor_restrict_unprivileged_userns=0"));
    }

    #[test]
    fn seccomp_without_user_notification_blocks_run() {
        let mut host = ready_host();
        host.seccomp_actions = Some("kill_process kill_thread trap errno trace log allow".into());
        let checks = assess(&host);
        let s = get(&checks, "seccomp-user-notif");
        assert_eq!(s.status, Status::Missing);
        assert!(s.detail.contains("no user_notif"));
        assert_eq!(blocking(&checks), ["seccomp-user-notif"]);
        host.seccomp_actions = None;
        assert_eq!(
            get(&assess(&host), "seccomp-user-notif").status,
            Status::Missing
        );
    }

    #[test]
    fn integrity_layers_matter_only_to_manifest_runs() {
        let mut host = ready_host();
        host.integrity = integrity(false);
        let checks = assess(&host);
        for name in ["landlock", "bpf-exec-gate", "memfd-noexec", "bpf-lsm"] {
            assert_eq!(get(&checks, name).status, Status::Missing, "{name}");
        }
        assert!(get(&checks, "landlock")
            .without
            .contains("--allow-weaker-integrity"));
        assert!(blocking(&checks).is_empty());
    }

    #[test]
    fn without_root_the_root_only_probes_are_unknown_not_missing() {
        let mut host = ready_host();
        host.euid = 1000;
        host.integrity = integrity(false);
        host.nft_bridge = Probe::NeedsRoot;
        host.kvm_open = Err(nix::libc::EACCES);
        let checks = assess(&host);
        for name in ["bpf-exec-gate", "bpf-lsm", "nftables-bridge", "kvm"] {
            assert_eq!(get(&checks, name).status, Status::Unknown, "{name}");
        }
        assert_eq!(
            get(&checks, "landlock").status,
            Status::Missing,
            "probed without root"
        );
        assert_eq!(blocking(&checks), ["root"]);
    }

    #[test]
    fn old_kernels_and_missing_tools() {
        let mut host = ready_host();
        host.bpf_token = Ok(false);
        host.nft = None;
        host.nft_bridge = Probe::Skipped("nft is not installed".into());
        host.qemu = None;
        host.kvm_open = Err(nix::libc::ENOENT);
        let checks = assess(&host);
        assert!(get(&checks, "bpf-token").detail.contains("before 6.9"));
        let n = get(&checks, "nftables-bridge");
        assert_eq!(
            (n.status, n.fix.as_deref()),
            (Status::Missing, Some("apt-get install nftables"))
        );
        assert_eq!(get(&checks, "qemu").status, Status::Missing);
        let k = get(&checks, "kvm");
        assert_eq!(
            (k.status, k.detail.as_str()),
            (Status::Missing, "no /dev/kvm")
        );
        assert!(blocking(&checks).is_empty());
    }

    #[test]
    fn kvm_without_hardware_virtualization_is_degraded() {
        let mut host = ready_host();
        host.cpu_virtualization = false;
        let q = assess(&host).pop().unwrap();
        assert_eq!(q.status, Status::Degraded);
        assert!(q.detail.contains("no vmx or svm"), "{}", q.detail);
    }
}
