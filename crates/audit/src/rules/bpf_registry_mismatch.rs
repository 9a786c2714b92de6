//! `bpf-registry-mismatch`: the gatekeeper's registry disagrees with the kernel.
//!
//! - A record whose program is gone (info): the gatekeeper was killed before it removed its
//!   records, or the program was detached and unloaded behind its back; the record vouches for
//!   nothing, since a program is vouched for by id and tag together.
//! - A record whose id now names a program with another tag (high): the kernel hands out program
//!   ids cyclically up to INT_MAX and never reuses a live one, so a recycled id needs about two
//!   billion loads since the gatekeeper's; far likelier the record was written or changed by
//!   something other than the gatekeeper. The program under that id is reported by
//!   `bpf-program-unvetted` too.
//! - A registry file that cannot be read or parsed (low): it vouches for nothing, but something
//!   wrote it.

use crate::finding::{Finding, Severity};
use crate::rules::{host_finding, RuleInfo};
use watertight_model::HostBpf;

pub const INFO: RuleInfo = RuleInfo {
    id: "bpf-registry-mismatch",
    severity: Severity::High,
    title: "BPF gatekeeper record does not match the kernel",
    help: "A record with another tag than the program under its id was not written by the \
           gatekeeper for that program: find who writes the registry and what loaded the \
           program. Stale records: restart the gatekeeper (it rewrites its records).",
};

pub fn check(bpf: &HostBpf, source: &str, out: &mut Vec<Finding>) {
    for e in &bpf.registry_errors {
        out.push(host_finding(
            &INFO,
            Severity::Low,
            format!("unreadable gatekeeper record {e}"),
            source,
            "bpf registry".into(),
        ));
    }
    if bpf.not_taken.is_some() {
        return;
    }
    for r in &bpf.registry {
        let subject = format!("bpf record {} {} (tag {})", r.prog_type, r.name, r.tag);
        let (severity, message) = match bpf.programs.iter().find(|p| p.id == r.id) {
            None if bpf.unreadable.contains(&r.id) => continue,
            None => (
                Severity::Info,
                format!(
                    "stale gatekeeper record: program {} ({} from {}) is no longer loaded",
                    r.id, r.name, r.object
                ),
            ),
            Some(p) if p.tag.eq_ignore_ascii_case(&r.tag) => continue,
            Some(p) => (
                Severity::High,
                format!(
                    "gatekeeper record for program {} says tag {} ({} from {}), the kernel's \
                     program {} has tag {} ({} {}): the record does not describe it",
                    r.id, r.tag, r.name, r.object, p.id, p.tag, p.prog_type, p.name
                ),
            ),
        };
        let mut f = host_finding(&INFO, severity, message, source, subject);
        f.paths = vec![r.object.clone()];
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::bpf_test_support::*;

    #[test]
    fn stale_is_info_a_different_tag_is_high_a_match_is_silent() {
        let mut bpf = host(vec![program(42, "tracepoint", &[])]);
        bpf.registry.push(record(42, "00000000000000AA"));
        assert!(findings(&bpf).iter().all(|f| f.rule != INFO.id));
        bpf.registry.push(record(43, "00000000000000aa"));
        bpf.registry[0].tag = "0000000000000001".into();
        let f: Vec<_> = findings(&bpf)
            .into_iter()
            .filter(|f| f.rule == INFO.id)
            .collect();
        assert_eq!(f.len(), 2, "{f:#?}");
        assert_eq!(f[0].severity, Severity::High);
        assert!(
            f[0].message.contains("has tag 00000000000000aa"),
            "{}",
            f[0].message
        );
        assert_eq!(f[1].severity, Severity::Info);
        assert!(f[1].message.contains("stale"), "{}", f[1].message);
    }

    #[test]
    fn nothing_is_judged_stale_without_an_inventory() {
        let mut bpf = host(vec![]);
        bpf.not_taken = Some("EPERM".into());
        bpf.registry.push(record(43, "00000000000000aa"));
        bpf.registry_errors.push("/run/x/9.json: EOF".into());
        let f: Vec<_> = findings(&bpf)
            .into_iter()
            .filter(|f| f.rule == INFO.id)
            .collect();
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].severity, Severity::Low);
    }
}
