//! `dangerous-capabilities`: capabilities that break out of a container or reach other workloads
//! (SYS_ADMIN, NET_ADMIN, NET_RAW, SYS_PTRACE, SYS_MODULE, BPF, PERFMON, ...).

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};
use watertight_model::{CapSet, LAST_KNOWN_CAP};

pub const INFO: RuleInfo = RuleInfo {
    id: "dangerous-capabilities",
    severity: Severity::High,
    title: "Holds dangerous capabilities",
    help: "Drop the listed capabilities; most workloads need none of them.",
};

/// Each dangerous capability and how dangerous it is in the host user namespace. None of them
/// is in the runtimes' default set (moby `oci/caps/defaults.go`, containerd, CRI-O) or in the
/// Pod Security Standards' baseline allowance; what each gives is from capabilities(7).
const DANGEROUS: [(&str, Severity); 16] = [
    ("SYS_ADMIN", Severity::High),
    // Loads kernel modules: code in the host kernel.
    ("SYS_MODULE", Severity::High),
    ("SYS_PTRACE", Severity::High),
    // iopl/ioperm, /dev/mem and /dev/port, raw block and SCSI commands.
    ("SYS_RAWIO", Severity::High),
    ("DAC_READ_SEARCH", Severity::High),
    ("BPF", Severity::High),
    // Loads and changes LSM policy (AppArmor profiles, SELinux policy, Smack rules): turns
    // off the confinement of every workload on the node.
    ("MAC_ADMIN", Severity::High),
    ("NET_ADMIN", Severity::Medium),
    ("PERFMON", Severity::Medium),
    // reboot(2) and kexec_load(2): ends every workload, or boots another kernel.
    ("SYS_BOOT", Severity::Medium),
    // Sets the host's wall clock (settimeofday, clock_settime, adjtimex): CLOCK_REALTIME is
    // not namespaced (time_namespaces(7) offsets only the monotonic and boot clocks), so it
    // moves every workload's certificate and token validity, and every log's timestamps.
    ("SYS_TIME", Severity::Medium),
    // Overrides Smack's mandatory access control.
    ("MAC_OVERRIDE", Severity::Medium),
    // Reads and clears the kernel log (syslog(2)) and sees kernel addresses in /proc where
    // kptr_restrict is 1: KASLR undone.
    ("SYSLOG", Severity::Medium),
    ("NET_RAW", Severity::Low),
    // Alarm timers (CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM) that wake a suspended host:
    // keeps a node from sleeping, nothing more.
    ("WAKE_ALARM", Severity::Low),
    // Blocks system suspend (EPOLLWAKEUP, /sys/power/wake_lock): the same class.
    ("BLOCK_SUSPEND", Severity::Low),
];

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if !cx.expects_isolation() || !cx.caps_count_on_host() || cx.privileged() {
        return;
    }
    let caps = &cx.subject.capabilities;
    let last = caps.last_cap.unwrap_or(LAST_KNOWN_CAP);
    if caps.effective.is_some_and(|e| e.is_full(last)) {
        return; // full-capabilities says it all
    }
    // Static sources: what the configuration adds; live: what the process holds.
    let added = caps.added.iter().filter(|n| CapSet::number_of(n).is_ok());
    let held = caps
        .effective
        .unwrap_or_default()
        .union(CapSet::from_names(added).unwrap_or_default());
    let mut names = Vec::new();
    let mut worst = None;
    for (name, severity) in DANGEROUS {
        // The BPF gatekeeper loads and attaches the vetted programs: CAP_BPF and CAP_PERFMON
        // are its job (CAP_SYS_ADMIN is not: still reported).
        if cx.subject.bpf_gatekeeper && matches!(name, "BPF" | "PERFMON") {
            continue;
        }
        if held.contains_name(name) {
            names.push(format!("CAP_{name}"));
            worst = worst.max(Some(severity));
        }
    }
    if let Some(severity) = worst {
        let mut f = cx.finding(
            &INFO,
            severity,
            format!("holds {} in the host user namespace", names.join(", ")),
        );
        f.paths = names;
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use watertight_model::{CapSet, NamespaceKind, NamespaceState};

    #[test]
    fn added_sys_admin_is_high() {
        let (w, mut s) = isolated_container();
        s.namespaces
            .set(NamespaceKind::User, NamespaceState::Shared);
        s.capabilities.effective = None;
        s.capabilities.added = vec!["SYS_ADMIN".into(), "NET_RAW".into()];
        let f = run(&w, s);
        let d = f
            .iter()
            .find(|f| f.rule == "dangerous-capabilities")
            .unwrap();
        assert_eq!(d.severity, crate::Severity::High);
        assert_eq!(d.paths, vec!["CAP_SYS_ADMIN", "CAP_NET_RAW"]);
    }

    #[test]
    fn live_root_minus_sys_resource_is_dangerous_not_full() {
        let (w, mut s) = isolated_container();
        s.namespaces
            .set(NamespaceKind::User, NamespaceState::Shared);
        s.capabilities.effective = Some(CapSet(0x1fffeffffff));
        s.capabilities.last_cap = Some(40);
        let r = rules(&run(&w, s));
        assert!(r.contains(&"dangerous-capabilities".into()));
        assert!(!r.contains(&"full-capabilities".into()));
    }

    #[test]
    fn the_gatekeeper_may_hold_bpf_and_perfmon_only() {
        let (w, mut s) = isolated_container();
        s.namespaces
            .set(NamespaceKind::User, NamespaceState::Shared);
        s.capabilities.effective = Some(CapSet::from_names(["BPF", "PERFMON"]).unwrap());
        let f = run(&w, s.clone());
        let d = f
            .iter()
            .find(|f| f.rule == "dangerous-capabilities")
            .unwrap();
        assert_eq!(d.paths, vec!["CAP_BPF", "CAP_PERFMON"]);
        s.bpf_gatekeeper = true;
        assert!(!rules(&run(&w, s.clone())).contains(&"dangerous-capabilities".to_string()));
        s.capabilities.effective =
            Some(CapSet::from_names(["BPF", "PERFMON", "SYS_ADMIN"]).unwrap());
        let f = run(&w, s);
        let d = f
            .iter()
            .find(|f| f.rule == "dangerous-capabilities")
            .unwrap();
        assert_eq!(d.paths, vec!["CAP_SYS_ADMIN"]);
    }

    #[test]
    fn host_clock_and_kernel_capabilities_are_dangerous() {
        let (w, mut s) = isolated_container();
        s.namespaces
            .set(NamespaceKind::User, NamespaceState::Shared);
        s.capabilities.added = vec!["SYS_TIME".into(), "SYSLOG".into(), "WAKE_ALARM".into()];
        let f = run(&w, s.clone());
        let d = f
            .iter()
            .find(|f| f.rule == "dangerous-capabilities")
            .unwrap();
        assert_eq!(d.severity, crate::Severity::Medium);
        assert_eq!(
            d.paths,
            vec!["CAP_SYS_TIME", "CAP_SYSLOG", "CAP_WAKE_ALARM"]
        );
        s.capabilities.added = vec!["MAC_ADMIN".into()];
        let f = run(&w, s.clone());
        assert!(f
            .iter()
            .any(|f| f.rule == "dangerous-capabilities" && f.severity == crate::Severity::High));
        // The default set (CHOWN here) is not dangerous.
        s.capabilities.added = vec![];
        assert!(!rules(&run(&w, s)).contains(&"dangerous-capabilities".to_string()));
    }
}
