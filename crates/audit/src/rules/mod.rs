//! Isolation rules. Each rule lives in its own file named after its id and reads only the
//! normalized model ([`watertight_model`]); it never looks at a source format.

mod bpf_inventory;
mod bpf_program_unvetted;
mod bpf_registry_mismatch;
mod bpf_token;
mod dangerous_capabilities;
mod full_capabilities;
mod gvisor_sandbox;
mod host_devices;
mod host_ports;
mod image_user_root;
mod lsm_unconfined;
mod mount_propagation;
mod namespace_unknown;
mod no_new_privs;
mod plan_drift;
mod privileged;
mod root_cgroup;
mod run_as_root;
mod runtime_floor;
mod seccomp_disabled;
mod seccomp_unset;
mod sensitive_host_mount;
mod service_account_token;
mod shared_host_namespace;
mod unmasked_proc;
mod unsafe_sysctls;
mod user_namespace_host_root;

use crate::finding::{Finding, Severity};
use std::collections::BTreeMap;
use watertight_model::{HostBpf, NamespaceKind, NamespaceState, Origin, Subject, Workload};

/// What a rule is, for catalogs (SARIF `rules[]`, documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleInfo {
    /// The stable id findings carry in `rule` (`privileged`, `shared-host-namespace`, ...).
    pub id: &'static str,
    /// The highest severity the rule reports.
    pub severity: Severity,
    /// A short name of the problem (SARIF `shortDescription`, fleet summaries).
    pub title: &'static str,
    /// What to do about it.
    pub help: &'static str,
}

/// Everything a rule may look at: one subject of one workload.
pub struct Context<'a> {
    /// The workload the subject belongs to: its kind, id and origin.
    pub workload: &'a Workload,
    /// The process or container the rule judges.
    pub subject: &'a Subject,
    /// `host:<node>` or the file path.
    pub source: &'a str,
}

impl Context<'_> {
    /// Whether container rules apply: the workload is a container/sandbox/pod, or the process
    /// set up isolation of its own (any of pid, net, ipc, user, cgroup, uts namespaces; a private
    /// mount namespace alone is ordinary systemd service hardening and does not count).
    pub fn expects_isolation(&self) -> bool {
        if self.workload.kind.expects_isolation() {
            return true;
        }
        [
            NamespaceKind::Pid,
            NamespaceKind::Net,
            NamespaceKind::Ipc,
            NamespaceKind::User,
            NamespaceKind::Cgroup,
            NamespaceKind::Uts,
        ]
        .iter()
        .any(|k| self.subject.namespaces.get(*k) == NamespaceState::Isolated)
    }

    /// Whether the workload was read from a running host (/proc) rather than a file.
    pub fn is_live(&self) -> bool {
        matches!(self.workload.origin, Origin::Live { .. })
    }

    /// Whether the subject is privileged in effect: privileged mode, a Windows HostProcess
    /// container, or settings that add up to privileged mode (every capability, every device,
    /// no seccomp filter, /proc unmasked: `privileged` reports it). The rules for its parts then
    /// stay silent: the one critical finding says it all, as it does for privileged mode.
    pub fn privileged(&self) -> bool {
        self.subject.privileged
            || self.subject.host_process == Some(true)
            || privileged::equivalent(self.subject).is_some()
    }

    /// Whether the subject is a Windows container (Kubernetes `spec.os.name: windows`).
    pub fn is_windows(&self) -> bool {
        self.subject
            .os
            .as_deref()
            .is_some_and(|os| os.eq_ignore_ascii_case("windows"))
    }

    /// Capabilities held against the host: a separate user namespace makes them namespaced.
    pub fn caps_count_on_host(&self) -> bool {
        self.subject.namespaces.get(NamespaceKind::User) != NamespaceState::Isolated
    }

    /// A finding about this subject, with the locating fields filled in.
    pub fn finding(&self, info: &RuleInfo, severity: Severity, message: String) -> Finding {
        let (container, subject) = match self.subject.pid {
            Some(_) => (None, self.workload.id.clone()),
            None => (
                Some(self.subject.name.clone()),
                format!("{} container {}", self.workload.id, self.subject.name),
            ),
        };
        let (file, document) = match &self.workload.origin {
            Origin::File { path, document } => (Some(path.clone()), *document),
            _ => (None, None),
        };
        Finding {
            rule: info.id.to_string(),
            severity,
            message,
            source: self.source.to_string(),
            subject,
            workload: self.workload.id.clone(),
            container,
            pid: self.subject.pid,
            pids: self.subject.pid.into_iter().collect(),
            namespace: None,
            paths: Vec::new(),
            file,
            document,
            field: None,
            line: None,
            column: None,
        }
    }
}

type Check = fn(&Context, &mut Vec<Finding>);

/// Rules about Linux mechanisms (capabilities, seccomp, no_new_privs, LSMs, uids, user
/// namespaces, /proc, sysctls, mount propagation, cgroups) that do not exist for a Windows
/// container: skipped for `spec.os.name: windows`, as pod-security-admission skips its Linux-only
/// checks for such pods (Pod Security Standards, "Pod OS field": seccomp, AppArmor, SELinux,
/// procMount, capabilities, privilege escalation, runAsNonRoot/runAsUser, sysctls).
/// Host namespaces, host paths, host ports, service-account tokens and privileged mode
/// (HostProcess) apply to Windows too.
const LINUX_ONLY: [&str; 14] = [
    "full-capabilities",
    "dangerous-capabilities",
    "user-namespace-host-root",
    "mount-propagation",
    "root-cgroup",
    "seccomp-disabled",
    "seccomp-unset",
    "no-new-privs",
    "lsm-unconfined",
    "run-as-root",
    "image-user-root",
    "unmasked-proc",
    "unsafe-sysctls",
    "host-devices",
];

/// Rules about what a process exposes of the host kernel: skipped for a process of a gVisor
/// sandbox (`Subject::user_space_kernel`), which is runsc's own (`gvisor-sandbox` says so).
/// Mounts, devices, ports, cgroup placement, the BPF token, the plan and floor rules, privileged
/// mode and a process with no seccomp filter at all (runsc installs one in every process it
/// starts) still apply: what runsc serves the sandbox from the host is as exposed as it is for
/// any process.
const HOST_KERNEL_ONLY: [&str; 11] = [
    "shared-host-namespace",
    "namespace-unknown",
    "full-capabilities",
    "dangerous-capabilities",
    "user-namespace-host-root",
    "seccomp-unset",
    "no-new-privs",
    "lsm-unconfined",
    "run-as-root",
    "unmasked-proc",
    "unsafe-sysctls",
];

/// Every rule, in report order.
const RULES: [(RuleInfo, Check); 24] = [
    (privileged::INFO, privileged::check),
    (shared_host_namespace::INFO, shared_host_namespace::check),
    (namespace_unknown::INFO, namespace_unknown::check),
    (full_capabilities::INFO, full_capabilities::check),
    (dangerous_capabilities::INFO, dangerous_capabilities::check),
    (bpf_token::INFO, bpf_token::check),
    (
        user_namespace_host_root::INFO,
        user_namespace_host_root::check,
    ),
    (sensitive_host_mount::INFO, sensitive_host_mount::check),
    (mount_propagation::INFO, mount_propagation::check),
    (host_devices::INFO, host_devices::check),
    (root_cgroup::INFO, root_cgroup::check),
    (seccomp_disabled::INFO, seccomp_disabled::check),
    (seccomp_unset::INFO, seccomp_unset::check),
    (no_new_privs::INFO, no_new_privs::check),
    (lsm_unconfined::INFO, lsm_unconfined::check),
    (run_as_root::INFO, run_as_root::check),
    (image_user_root::INFO, image_user_root::check),
    (unmasked_proc::INFO, unmasked_proc::check),
    (unsafe_sysctls::INFO, unsafe_sysctls::check),
    (host_ports::INFO, host_ports::check),
    (service_account_token::INFO, service_account_token::check),
    (plan_drift::INFO, plan_drift::check),
    (runtime_floor::INFO, runtime_floor::check),
    (gvisor_sandbox::INFO, gvisor_sandbox::check),
];

type HostCheck = fn(&HostBpf, &str, &mut Vec<Finding>);

/// Rules about the host as a whole (its BPF programs), after the workloads' rules.
const HOST_RULES: [(RuleInfo, HostCheck); 3] = [
    (bpf_program_unvetted::INFO, bpf_program_unvetted::check),
    (bpf_registry_mismatch::INFO, bpf_registry_mismatch::check),
    (bpf_inventory::INFO, bpf_inventory::check),
];

/// The catalog of rules (for SARIF and documentation).
pub fn catalog() -> Vec<RuleInfo> {
    RULES
        .iter()
        .map(|(info, _)| *info)
        .chain(HOST_RULES.iter().map(|(info, _)| *info))
        .collect()
}

/// Runs the host-level rules on a live host's BPF inventory (`source`: `host:<node>`).
pub fn evaluate_bpf(bpf: &HostBpf, source: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for (_, check) in HOST_RULES.iter() {
        check(bpf, source, &mut out);
    }
    out
}

/// A finding about the host as a whole (no workload of its own: `host`).
pub fn host_finding(
    info: &RuleInfo,
    severity: Severity,
    message: String,
    source: &str,
    subject: String,
) -> Finding {
    Finding {
        rule: info.id.to_string(),
        severity,
        message,
        source: source.to_string(),
        subject,
        workload: "host".into(),
        container: None,
        pid: None,
        pids: Vec::new(),
        namespace: None,
        paths: Vec::new(),
        file: None,
        document: None,
        field: None,
        line: None,
        column: None,
    }
}

/// Runs every rule on every subject of the workload. Findings that several processes of one
/// workload share are merged into one carrying all their pids.
pub fn evaluate(workload: &Workload, source: &str) -> Vec<Finding> {
    let mut merged: BTreeMap<_, Finding> = BTreeMap::new();
    let mut order = Vec::new();
    for subject in &workload.subjects {
        let cx = Context {
            workload,
            subject,
            source,
        };
        let mut found = Vec::new();
        let windows = cx.is_windows();
        let gvisor = subject.user_space_kernel.is_some();
        for (info, check) in RULES.iter() {
            if (windows && LINUX_ONLY.contains(&info.id))
                || (gvisor && HOST_KERNEL_ONLY.contains(&info.id))
            {
                continue;
            }
            check(&cx, &mut found);
        }
        for f in found {
            let key = (f.merge_key(), f.container.clone());
            match merged.get_mut(&key) {
                Some(existing) => {
                    for pid in f.pids {
                        if !existing.pids.contains(&pid) {
                            existing.pids.push(pid);
                        }
                    }
                }
                None => {
                    order.push(key.clone());
                    merged.insert(key, f);
                }
            }
        }
    }
    order
        .into_iter()
        .filter_map(|k| merged.remove(&k))
        .map(|mut f| {
            f.pids.sort_unstable();
            f.pid = f.pids.first().copied().or(f.pid);
            f
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod test_support {
    use watertight_model::*;

    /// A Docker-like container subject with nothing wrong.
    pub fn isolated_container() -> (Workload, Subject) {
        let mut s = Subject {
            name: "app".into(),
            namespaces: Namespaces::all(NamespaceState::Isolated),
            no_new_privs: Some(true),
            seccomp: Seccomp {
                mode: SeccompMode::Filter,
                profile: Some("runtime/default".into()),
            },
            ..Subject::default()
        };
        s.user.uid = Some(1000);
        s.capabilities.effective = Some(CapSet::from_names(["CHOWN"]).unwrap());
        let w = Workload {
            plan: None,
            id: "demo".into(),
            kind: WorkloadKind::Container {
                runtime: "docker".into(),
                container_id: None,
            },
            origin: Origin::File {
                path: "inspect.json".into(),
                document: None,
            },
            cgroup_path: None,
            subjects: vec![],
        };
        (w, s)
    }

    pub fn run(w: &Workload, s: Subject) -> Vec<crate::Finding> {
        let mut w = w.clone();
        w.subjects = vec![s];
        super::evaluate(&w, "test")
    }

    pub fn rules(findings: &[crate::Finding]) -> Vec<String> {
        findings.iter().map(|f| f.rule.clone()).collect()
    }
}

#[cfg(test)]
pub(crate) mod bpf_test_support {
    use watertight_model::*;

    /// A program of `prog_type` with tag `00000000000000aa`, held by `(pid, in_container)`.
    pub fn program(id: u32, prog_type: &str, holders: &[(u32, bool)]) -> BpfProgram {
        BpfProgram {
            id,
            tag: "00000000000000aa".into(),
            prog_type: prog_type.into(),
            name: format!("p{id}"),
            uid: 0,
            loaded_at: None,
            holders: holders
                .iter()
                .map(|(pid, in_container)| BpfHolder {
                    pid: *pid,
                    name: "x".into(),
                    workload: in_container.then(|| "docker container c (1)".into()),
                    in_container: *in_container,
                })
                .collect(),
        }
    }

    pub fn record(id: u32, tag: &str) -> LoadedBpfProgram {
        LoadedBpfProgram {
            id,
            tag: tag.into(),
            name: format!("p{id}"),
            prog_type: "tracepoint".into(),
            attach: None,
            object: "o.bpf.o".into(),
            object_sha256: "ab".into(),
            signer: "sha256:cd".into(),
            pin: None,
            loaded_at: 0,
        }
    }

    pub fn host(programs: Vec<BpfProgram>) -> HostBpf {
        HostBpf {
            programs,
            ..HostBpf::default()
        }
    }

    pub fn findings(bpf: &HostBpf) -> Vec<crate::Finding> {
        super::evaluate_bpf(bpf, "host:n")
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn a_well_isolated_container_has_no_findings() {
        let (w, s) = isolated_container();
        assert_eq!(run(&w, s), vec![]);
    }

    #[test]
    fn linux_only_names_real_rules() {
        let ids: Vec<_> = catalog().iter().map(|r| r.id).collect();
        for id in LINUX_ONLY {
            assert!(ids.contains(&id), "{id}");
        }
    }

    #[test]
    fn windows_pods_skip_linux_only_rules_but_not_host_access() {
        let (mut w, mut s) = isolated_container();
        w.kind = watertight_model::WorkloadKind::KubernetesObject {
            api_version: "v1".into(),
            kind: "Pod".into(),
        };
        s.seccomp = watertight_model::Seccomp::default();
        s.user.uid = None;
        s.no_new_privs = Some(false);
        s.namespaces.set(NamespaceKind::Net, NamespaceState::Shared);
        s.namespaces
            .set(NamespaceKind::User, NamespaceState::Shared);
        let linux = rules(&run(&w, s.clone()));
        for id in ["seccomp-unset", "image-user-root", "no-new-privs"] {
            assert!(linux.contains(&id.to_string()), "{linux:?}");
        }
        s.os = Some("windows".into());
        let windows = rules(&run(&w, s));
        assert_eq!(
            windows,
            vec!["shared-host-namespace", "shared-host-namespace"],
            "{windows:?}"
        );
    }

    #[test]
    fn rule_ids_are_unique() {
        let ids: std::collections::BTreeSet<_> = catalog().iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), catalog().len());
    }

    #[test]
    fn processes_of_one_workload_merge_into_one_finding() {
        let (mut w, mut s) = isolated_container();
        s.namespaces.set(NamespaceKind::Net, NamespaceState::Shared);
        s.pid = Some(20);
        let mut s2 = s.clone();
        s2.pid = Some(10);
        w.subjects = vec![s, s2];
        let f = evaluate(&w, "host:n");
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].pids, vec![10, 20]);
        assert_eq!(f[0].pid, Some(10));
        assert_eq!(f[0].namespace.as_deref(), Some("net"));
    }
}
