//! `lsm-unconfined`: the subject runs unconfined by its Linux security module (AppArmor
//! `unconfined`, SELinux `spc_t`/`unconfined_t`).

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};

pub const INFO: RuleInfo = RuleInfo {
    id: "lsm-unconfined",
    severity: Severity::Low,
    title: "Not confined by AppArmor/SELinux",
    help: "Use the runtime's default AppArmor profile or SELinux type.",
};

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if !cx.expects_isolation() || cx.privileged() {
        return;
    }
    if let Some(lsm) = &cx.subject.lsm {
        if !lsm.confined {
            out.push(cx.finding(
                &INFO,
                Severity::Low,
                format!("runs unconfined by {} (label {})", lsm.lsm, lsm.label),
            ));
        }
    }
}
