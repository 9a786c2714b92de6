//! `unmasked-proc`: the kernel's sensitive /proc and /sys files are readable in the workload,
//! or its kernel tunables writable, where every OCI runtime hides them by default (the reference
//! lists: [`PROC_MASKED_PATHS`] and [`PROC_READONLY_PATHS`], from runc, containerd, moby and
//! Podman). Configurations: Kubernetes `procMount: Unmasked`, Docker/Podman
//! `--security-opt systempaths=unconfined` or `unmask=ALL`, an OCI config with short lists.
//! Live: what the workload's mount namespace shows (a privileged container's /proc is unmasked).

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};
use watertight_model::{CapSet, PROC_MASKED_PATHS, PROC_READONLY_PATHS};

pub const INFO: RuleInfo = RuleInfo {
    id: "unmasked-proc",
    severity: Severity::Medium,
    title: "Sensitive /proc paths not masked",
    help: "Keep the runtime's default masked and read-only paths (Kubernetes procMount: \
           Default; no systempaths=unconfined or unmask=ALL).",
};

/// `/proc/kallsyms` lists kernel addresses, but to a process without CAP_SYSLOG only as zeros
/// while `kernel.kptr_restrict` is 1 or more (whether it is: `watertight audit kernel`'s
/// hardening checks); no runtime masks it. Unmasked, it is a finding for a subject that holds
/// CAP_SYSLOG against the host, for which it undoes KASLR.
const KALLSYMS: &str = "/proc/kallsyms";

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if !cx.expects_isolation() || cx.privileged() {
        return;
    }
    let s = cx.subject;
    let mut unmasked: Vec<String> = Vec::new();
    if let Some(masked) = &s.masked_paths {
        let syslog = cx.caps_count_on_host()
            && s.capabilities
                .effective
                .unwrap_or_default()
                .union(CapSet::from_names(s.capabilities.added.iter()).unwrap_or_default())
                .contains_name("SYSLOG");
        unmasked = PROC_MASKED_PATHS
            .iter()
            .filter(|p| **p != KALLSYMS || syslog)
            .filter(|p| !masked.iter().any(|m| m == *p))
            .map(|p| p.to_string())
            .collect();
    }
    let writable: Vec<String> = match &s.readonly_paths {
        Some(read_only) => PROC_READONLY_PATHS
            .iter()
            .filter(|p| {
                !read_only.iter().any(|r| r == *p)
                    && !s
                        .masked_paths
                        .as_ref()
                        .is_some_and(|m| m.iter().any(|r| r == *p))
            })
            .map(|p| p.to_string())
            .collect(),
        None => Vec::new(),
    };
    if unmasked.is_empty() && writable.is_empty() {
        return;
    }
    let mut parts = Vec::new();
    if !unmasked.is_empty() {
        parts.push(format!("{} readable", unmasked.join(", ")));
    }
    if !writable.is_empty() {
        parts.push(format!("{} writable", writable.join(", ")));
    }
    let mut f = cx.finding(
        &INFO,
        Severity::Medium,
        format!(
            "does not mask the kernel's sensitive files: {}",
            parts.join("; ")
        ),
    );
    f.paths = unmasked.into_iter().chain(writable).collect();
    out.push(f);
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use watertight_model::{CapSet, NamespaceKind, NamespaceState, PROC_MASKED_PATHS};

    fn all_masked() -> Vec<String> {
        PROC_MASKED_PATHS.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn the_runtime_default_lists_are_no_finding() {
        let (w, mut s) = isolated_container();
        s.masked_paths = Some(all_masked());
        s.readonly_paths = Some(
            watertight_model::PROC_READONLY_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect(),
        );
        assert_eq!(run(&w, s.clone()), vec![]);
        // Unknown (a source that does not say) is no finding either.
        s.masked_paths = None;
        s.readonly_paths = None;
        assert_eq!(run(&w, s), vec![]);
    }

    #[test]
    fn unmasked_proc_names_what_is_readable_and_writable() {
        let (w, mut s) = isolated_container();
        s.masked_paths = Some(vec![]);
        s.readonly_paths = Some(vec![]);
        let f = run(&w, s);
        assert_eq!(rules(&f), vec!["unmasked-proc"]);
        assert!(f[0].paths.contains(&"/proc/kcore".to_string()));
        assert!(f[0].paths.contains(&"/sys/firmware".to_string()));
        assert!(f[0].paths.contains(&"/proc/sysrq-trigger".to_string()));
        // kallsyms shows zeros to a process without CAP_SYSLOG.
        assert!(!f[0].paths.contains(&"/proc/kallsyms".to_string()));
        assert!(
            f[0].message
                .contains("/proc/sys, /proc/sysrq-trigger writable"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn kallsyms_counts_for_a_holder_of_cap_syslog_on_the_host() {
        let (w, mut s) = isolated_container();
        let mut masked = all_masked();
        masked.retain(|p| p != "/proc/kallsyms");
        s.masked_paths = Some(masked);
        s.capabilities.effective = Some(CapSet::from_names(["SYSLOG"]).unwrap());
        // In its own user namespace CAP_SYSLOG does not reveal kernel addresses.
        assert_eq!(run(&w, s.clone()), vec![]);
        s.namespaces
            .set(NamespaceKind::User, NamespaceState::Shared);
        let f = run(&w, s);
        let u = f.iter().find(|f| f.rule == "unmasked-proc").unwrap();
        assert_eq!(u.paths, vec!["/proc/kallsyms"]);
    }
}
