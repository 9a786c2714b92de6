//! `host-devices`: host device nodes visible in the workload. A block device gives raw access
//! to a host disk; /dev/mem, /dev/kmem and /dev/port to kernel memory and I/O ports.

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};
use watertight_model::DeviceKind;

pub const INFO: RuleInfo = RuleInfo {
    id: "host-devices",
    severity: Severity::High,
    title: "Host devices exposed",
    help: "Remove the device mappings; expose only the specific device the workload needs.",
};

const KERNEL_MEMORY: [&str; 3] = ["/dev/mem", "/dev/kmem", "/dev/port"];

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if !cx.expects_isolation() || cx.privileged() || cx.subject.devices.is_empty() {
        return;
    }
    let mut severity = Severity::Medium;
    let mut paths = Vec::new();
    for d in &cx.subject.devices {
        let host = d.host_path.as_deref().unwrap_or(&d.path);
        if d.kind == DeviceKind::Block || KERNEL_MEMORY.contains(&host) {
            severity = Severity::High;
        }
        paths.push(d.path.clone());
    }
    let blocks = cx
        .subject
        .devices
        .iter()
        .filter(|d| d.kind == DeviceKind::Block)
        .count();
    let message = if blocks > 0 {
        format!(
            "sees {} host device(s), {blocks} of them block devices (raw disk access): {}",
            paths.len(),
            paths.join(", ")
        )
    } else {
        format!("sees {} host device(s): {}", paths.len(), paths.join(", "))
    };
    let mut f = cx.finding(&INFO, severity, message);
    f.paths = paths;
    out.push(f);
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use watertight_model::{Device, DeviceKind};

    #[test]
    fn block_devices_are_high() {
        let (w, mut s) = isolated_container();
        s.devices = vec![Device {
            path: "/dev/sda".into(),
            host_path: None,
            kind: DeviceKind::Block,
            major: Some(8),
            minor: Some(0),
        }];
        let f = run(&w, s);
        assert_eq!(f[0].rule, "host-devices");
        assert_eq!(f[0].severity, crate::Severity::High);
    }
}
