//! Helpers shared by the audit's test binaries.

use std::collections::BTreeSet;
use watertight_audit::Finding;

/// `container rule[namespace]` for every finding (`-` for a finding about no container).
pub fn keys(findings: &[Finding]) -> BTreeSet<String> {
    findings
        .iter()
        .map(|f| {
            let ns = f
                .namespace
                .as_ref()
                .map(|n| format!("[{n}]"))
                .unwrap_or_default();
            format!("{} {}{ns}", f.container.as_deref().unwrap_or("-"), f.rule)
        })
        .collect()
}
