//! `privileged`: the subject runs privileged (all capabilities, all devices, no seccomp/LSM), is
//! a Windows HostProcess container, or is configured into the same state piece by piece.

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};
use watertight_model::{SeccompMode, Subject, LAST_KNOWN_CAP};

pub const INFO: RuleInfo = RuleInfo {
    id: "privileged",
    severity: Severity::Critical,
    title: "Privileged container",
    help: "Remove privileged mode; grant only the capabilities and devices the workload needs.",
};

/// What makes a configuration privileged mode under another name (what `--privileged` sets in
/// runc's spec, moby `daemon/oci_linux.go` `WithPrivileged`/`WithMounts`: every capability, a
/// device cgroup that allows every device, no seccomp filter, nothing masked in /proc), each
/// part as it shows. `None` unless every part is there: a config with all four has given away
/// what privileged mode gives away, whatever its `privileged` flag says.
pub fn equivalent(s: &Subject) -> Option<Vec<&'static str>> {
    if s.privileged {
        return None;
    }
    let last = s.capabilities.last_cap.unwrap_or(LAST_KNOWN_CAP);
    let all_caps = s.capabilities.effective.is_some_and(|e| e.is_full(last));
    let all_devices = s.all_devices_allowed == Some(true);
    let no_seccomp = s.seccomp.mode == SeccompMode::Disabled;
    let proc_unmasked = s
        .masked_paths
        .as_ref()
        .is_some_and(|m| !m.iter().any(|p| p == "/proc/kcore"));
    (all_caps && all_devices && no_seccomp && proc_unmasked).then(|| {
        vec![
            "every capability",
            "every device allowed",
            "no seccomp filter",
            "/proc unmasked",
        ]
    })
}

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    let s = cx.subject;
    if s.privileged {
        out.push(cx.finding(
            &INFO,
            Severity::Critical,
            "runs privileged: every capability, every host device, no seccomp or LSM confinement"
                .into(),
        ));
    } else if s.host_process == Some(true) {
        // A HostProcess container is a process on the node: the host's network, file system
        // and processes, as the Windows account it names (SYSTEM by default in practice).
        // Pod Security Standards forbid it at baseline for that reason.
        out.push(cx.finding(
            &INFO,
            Severity::Critical,
            "is a Windows HostProcess container: a process on the host, with the host's network \
             and file system (privileged-equivalent)"
                .into(),
        ));
    } else if let Some(parts) = equivalent(s) {
        let mut f = cx.finding(
            &INFO,
            Severity::Critical,
            format!(
                "adds up to privileged mode without the flag: {}",
                parts.join(", ")
            ),
        );
        f.paths = parts.into_iter().map(String::from).collect();
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use watertight_model::{CapSet, SeccompMode, LAST_KNOWN_CAP};

    #[test]
    fn flags_privileged_only() {
        let (w, mut s) = isolated_container();
        assert!(!rules(&run(&w, s.clone())).contains(&"privileged".to_string()));
        s.privileged = true;
        assert!(rules(&run(&w, s)).contains(&"privileged".to_string()));
    }

    #[test]
    fn windows_host_process_is_privileged() {
        let (w, mut s) = isolated_container();
        s.os = Some("windows".into());
        s.host_process = Some(false);
        assert_eq!(run(&w, s.clone()), vec![]);
        s.host_process = Some(true);
        let f = run(&w, s);
        assert_eq!(rules(&f), vec!["privileged"]);
        assert_eq!(f[0].severity, crate::Severity::Critical);
        assert!(f[0].message.contains("HostProcess"));
    }

    #[test]
    fn every_part_of_privileged_mode_adds_up_to_it() {
        let (w, mut s) = isolated_container();
        s.capabilities.effective = Some(CapSet::full(LAST_KNOWN_CAP));
        s.all_devices_allowed = Some(true);
        s.seccomp.mode = SeccompMode::Disabled;
        s.masked_paths = Some(vec![]);
        let f = run(&w, s.clone());
        // One critical finding; the parts' own rules stay silent as for privileged mode.
        assert_eq!(rules(&f), vec!["privileged"], "{f:#?}");
        assert!(f[0].message.contains("adds up to privileged"));
        // Missing any one part: not privileged-equivalent, the parts are reported one by one.
        for i in 0..4 {
            let mut t = s.clone();
            match i {
                0 => t.capabilities.effective = Some(CapSet::from_names(["SYS_ADMIN"]).unwrap()),
                1 => t.all_devices_allowed = Some(false),
                2 => t.seccomp.mode = SeccompMode::Filter,
                _ => t.masked_paths = Some(vec!["/proc/kcore".into()]),
            }
            let r = rules(&run(&w, t));
            assert!(!r.contains(&"privileged".to_string()), "{i}: {r:?}");
            assert!(!r.is_empty(), "{i}");
        }
    }
}
