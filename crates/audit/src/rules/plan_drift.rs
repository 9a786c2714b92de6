//! `plan-drift`: a workload that published a plan (`watertight run` does) is compared with it,
//! subject by subject: a namespace planned as its own that is the host's, a capability,
//! seccomp mode or no_new_privs weaker than planned, a host path writable where the plan has it
//! read-only or not at all, shared propagation, a host device the plan does not have. Matching
//! is an info finding naming the plan's digest, so an operator can find what still runs under
//! a superseded policy. Stricter than planned is not drift.

use watertight_model::{
    NamespaceKind, NamespaceState, Propagation, SeccompMode, Subject, DEFAULT_DEVICE_NODES,
};

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};

pub const INFO: RuleInfo = RuleInfo {
    id: "plan-drift",
    severity: Severity::High,
    title: "Differs from its published plan",
    help: "The sandbox is not what its supervisor planned: stop it and investigate; a \
           watertight supervisor applies its plan before the program starts.",
};

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    let Some(plan) = &cx.workload.plan else {
        return;
    };
    let drift = differences(&plan.subject, cx.subject);
    let finding = if drift.is_empty() {
        cx.finding(
            &INFO,
            Severity::Info,
            format!("as planned (plan {})", plan.digest),
        )
    } else {
        let mut f = cx.finding(
            &INFO,
            Severity::High,
            format!(
                "differs from its plan {}: {}",
                plan.digest,
                drift.join("; ")
            ),
        );
        f.paths = drift;
        f
    };
    out.push(finding);
}

/// What of `measured` is weaker than `planned`, one line each (empty: as planned). What the
/// measurement could not tell (unknown namespaces, unreadable status fields) is not drift.
pub fn differences(planned: &Subject, measured: &Subject) -> Vec<String> {
    let mut out = Vec::new();
    for kind in NamespaceKind::ALL {
        if planned.namespaces.get(kind) == NamespaceState::Isolated
            && measured.namespaces.get(kind) == NamespaceState::Shared
        {
            out.push(format!("shares the host's {} namespace", kind.proc_name()));
        }
    }
    let (p, m) = (&planned.capabilities, &measured.capabilities);
    for (name, planned_set, measured_set) in [
        ("effective", p.effective, m.effective),
        ("permitted", p.permitted, m.permitted),
        ("bounding", p.bounding, m.bounding),
    ] {
        if let (Some(allowed), Some(held)) = (planned_set, measured_set) {
            let extra = held.difference(allowed);
            if !extra.is_empty() {
                out.push(format!("{name} capabilities {}", extra.names().join(",")));
            }
        }
    }
    if planned.seccomp.mode == SeccompMode::Filter
        && matches!(
            measured.seccomp.mode,
            SeccompMode::Disabled | SeccompMode::Strict
        )
    {
        out.push(format!("seccomp {:?}", measured.seccomp.mode).to_lowercase());
    }
    if planned.no_new_privs == Some(true) && measured.no_new_privs == Some(false) {
        out.push("no_new_privs off".into());
    }
    for mount in &measured.mounts {
        // Propagation the plan itself has at that target is not drift (an OCI runtime leaves
        // the container's root rslave unless rootfsPropagation says otherwise, as runc does).
        let planned_propagation = planned
            .mounts
            .iter()
            .find(|p| p.target == mount.target)
            .map(|p| p.propagation);
        let as_planned = match planned_propagation {
            Some(Propagation::Bidirectional) => true,
            Some(p) => p == mount.propagation,
            None => false,
        };
        if matches!(
            mount.propagation,
            Propagation::Bidirectional | Propagation::HostToContainer
        ) && !as_planned
        {
            out.push(format!(
                "mount {} shares propagation with the host",
                mount.target
            ));
        }
        let Some(host) = &mount.host_path else {
            continue;
        };
        // A default device node (and /dev/null over a masked file): writing it changes no
        // host file.
        if DEFAULT_DEVICE_NODES.contains(&host.as_str()) {
            continue;
        }
        let writable_in_plan = planned
            .mounts
            .iter()
            .any(|p| p.target == mount.target && !p.read_only);
        if !mount.read_only && !writable_in_plan {
            out.push(format!("host path {host} writable at {}", mount.target));
        }
    }
    for device in &measured.devices {
        if !planned.devices.iter().any(|d| d.path == device.path) {
            out.push(format!("host device {}", device.path));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::*;
    use watertight_model::{CapSet, Device, DeviceKind, Mount, WorkloadPlan};

    fn planned() -> Subject {
        let (_, mut s) = isolated_container();
        s.capabilities.effective = Some(CapSet::default());
        s.capabilities.bounding = Some(CapSet::default());
        s.seccomp.mode = SeccompMode::Filter;
        s.no_new_privs = Some(true);
        s
    }

    fn with_plan(measured: Subject) -> Vec<Finding> {
        let (mut w, _) = isolated_container();
        w.plan = Some(Box::new(WorkloadPlan {
            digest: "sha256:abc".into(),
            subject: planned(),
            floor: None,
        }));
        let mut out = Vec::new();
        let cx = Context {
            workload: &w,
            subject: &measured,
            source: "test",
        };
        check(&cx, &mut out);
        out
    }

    #[test]
    fn as_planned_is_info_naming_the_digest() {
        let f = with_plan(planned());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Info);
        assert!(f[0].message.contains("sha256:abc"));
    }

    #[test]
    fn each_weakening_is_drift() {
        type Weaken = Box<dyn Fn(&mut Subject)>;
        let cases: Vec<(&str, Weaken)> = vec![
            (
                "net",
                Box::new(|s| s.namespaces.set(NamespaceKind::Net, NamespaceState::Shared)),
            ),
            (
                "SYS_ADMIN",
                Box::new(|s| {
                    s.capabilities.effective = Some(CapSet::from_names(["SYS_ADMIN"]).unwrap())
                }),
            ),
            (
                "seccomp",
                Box::new(|s| s.seccomp.mode = SeccompMode::Disabled),
            ),
            ("no_new_privs", Box::new(|s| s.no_new_privs = Some(false))),
            (
                "writable",
                Box::new(|s| {
                    s.mounts.push(Mount {
                        target: "/data".into(),
                        source: "/srv".into(),
                        host_path: Some("/srv".into()),
                        read_only: false,
                        ..Mount::default()
                    })
                }),
            ),
            (
                "/dev/sda",
                Box::new(|s| {
                    s.devices.push(Device {
                        path: "/dev/sda".into(),
                        host_path: None,
                        kind: DeviceKind::Block,
                        major: Some(8),
                        minor: Some(0),
                    })
                }),
            ),
        ];
        for (what, weaken) in cases {
            let mut measured = planned();
            weaken(&mut measured);
            let f = with_plan(measured);
            assert_eq!(f[0].severity, Severity::High, "{what}");
            assert!(f[0].message.contains(what), "{what}: {}", f[0].message);
        }
        // Unknown is not drift: the measurement could not tell.
        let mut measured = planned();
        measured.no_new_privs = None;
        measured
            .namespaces
            .set(NamespaceKind::Net, NamespaceState::Unknown);
        assert_eq!(with_plan(measured)[0].severity, Severity::Info);
    }

    #[test]
    fn propagation_the_plan_has_is_not_drift_and_more_is() {
        let root = |propagation| Mount {
            target: "/".into(),
            source: "/bundle/rootfs".into(),
            propagation,
            ..Mount::default()
        };
        let mut measured = planned();
        measured.mounts.push(root(Propagation::HostToContainer));
        // Not in the plan at all: drift.
        let f = with_plan(measured.clone());
        assert_eq!(f[0].severity, Severity::High);
        assert!(
            f[0].message.contains("mount / shares propagation"),
            "{}",
            f[0].message
        );

        // The plan has "/" rslave (runc's default root propagation): as planned.
        let (mut w, _) = isolated_container();
        let mut plan = planned();
        plan.mounts.push(root(Propagation::HostToContainer));
        w.plan = Some(Box::new(WorkloadPlan {
            digest: "sha256:abc".into(),
            subject: plan.clone(),
            floor: None,
        }));
        let check_with = |w: &watertight_model::Workload, m: &Subject| {
            let mut out = Vec::new();
            check(
                &Context {
                    workload: w,
                    subject: m,
                    source: "test",
                },
                &mut out,
            );
            out
        };
        assert_eq!(check_with(&w, &measured)[0].severity, Severity::Info);

        // Shared where the plan has it slave: drift.
        let mut shared = planned();
        shared.mounts.push(root(Propagation::Bidirectional));
        assert_eq!(check_with(&w, &shared)[0].severity, Severity::High);
    }
}
