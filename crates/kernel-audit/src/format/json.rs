//! JSON: the report structure as serde writes it (`kernel_version`, `affected_count`, `cves[]`,
//! `hardening[]`, ...).

use crate::report::KernelReport;

pub fn render(report: &KernelReport) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("the report serializes");
    text.push('\n');
    text
}
