//! The Kubernetes source: manifests loaded by watertight-pss (read as kubectl reads them: YAML
//! 1.1 scalars, every workload kind, `List`, multi-document files, API defaults applied) become
//! one model workload per object, one subject per container (init and ephemeral included); each
//! object also gets its Pod Security Standards verdict. Files that hold no Kubernetes object
//! (CI workflows, Chart.yaml, package.json, ...) and unrendered templates are left out and
//! counted; `--exclude` globs ([`Exclude`]) leave out paths before they are read.

use crate::error::AuditError;
use crate::finding::{Finding, Severity};
use crate::report::{InputError, PssEntry, PssViolation, SkipReason, SkippedFile};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::collections::BTreeMap;
use std::path::Path;
use watertight_model::{
    CapSet, Capabilities, Device, DeviceKind, HostPort, LsmLabel, Mount, NamespaceKind,
    NamespaceState, Namespaces, Origin, Propagation, Seccomp, SeccompMode, Subject, Sysctl, User,
    Workload, WorkloadKind,
};
use watertight_pss::k8s_openapi::api::core::v1::{
    Capabilities as K8sCaps, Container, ContainerPort, PodSpec, SeccompProfile, SecurityContext,
    VolumeMount,
};
use watertight_pss::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use watertight_pss::{Level, Version};

/// containerd's and CRI-O's default capability set (the same 14 as Docker's).
const CRI_DEFAULT_CAPS: [&str; 14] = crate::sources::docker::DOCKER_DEFAULT_CAPS;

mod locate;

use locate::Locator;

const APPARMOR_ANNOTATION: &str = "container.apparmor.security.beta.kubernetes.io/";

/// What the audit of some manifests produced.
#[derive(Debug, Default)]
pub struct K8sAudit {
    /// One model workload per workload object, for the isolation rules.
    pub workloads: Vec<Workload>,
    /// The Pod Security Standards verdict of each workload object.
    pub pss: Vec<PssEntry>,
    /// One finding per PSS violation (rule `pss/<check>`).
    pub pss_findings: Vec<Finding>,
    /// Files and documents that could not be read or loaded; the others are still audited.
    /// Each is a manifest that could not be evaluated.
    pub errors: Vec<InputError>,
    /// Problems that did not stop an object's evaluation (unknown fields, fields of the wrong
    /// type that no check reads, duplicate keys).
    pub warnings: Vec<InputError>,
    /// Documents that were not workloads (Services, ConfigMaps, ...).
    pub skipped: usize,
    /// Files left out: no Kubernetes object in them, or unrendered templates.
    pub skipped_files: Vec<SkippedFile>,
    /// The findings objects accept by design (annotation [`crate::accept::ANNOTATION`]).
    pub acceptances: Vec<crate::accept::Acceptance>,
    /// Where each of `workloads` was written, to locate its findings (same order).
    locators: Vec<Locator>,
}

impl K8sAudit {
    /// The isolation rules' findings over [`K8sAudit::workloads`], each pointing at the field
    /// it is about ([`Finding::field`], line and column), most severe first.
    pub fn rule_findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        for (i, w) in self.workloads.iter().enumerate() {
            let mut found = crate::audit_workloads(std::slice::from_ref(w));
            if let Some(locator) = self.locators.get(i) {
                for f in &mut found {
                    locator.locate(f, None);
                }
            }
            out.extend(found);
        }
        crate::report::sort_findings(&mut out);
        out
    }
}

/// The paths `--exclude` leaves out. A glob without `/` matches a file or directory name
/// anywhere (`vendor`, `*.tmpl.yaml`); a glob with `/` matches the path below the PATH
/// argument (`deploy/dev/**`, `charts/*/templates`), where `*` stops at `/` and `**` does not.
/// An excluded directory is not entered.
#[derive(Debug, Clone)]
pub struct Exclude {
    names: GlobSet,
    paths: GlobSet,
}

impl Default for Exclude {
    fn default() -> Self {
        Exclude {
            names: GlobSet::empty(),
            paths: GlobSet::empty(),
        }
    }
}

impl Exclude {
    /// The matcher of `globs`; a pattern that is not a glob is an error naming it.
    pub fn new<S: AsRef<str>>(globs: &[S]) -> Result<Exclude, AuditError> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        for glob in globs {
            let glob = glob.as_ref();
            let pattern = glob.trim_start_matches("./").trim_end_matches('/');
            let bad = |e: globset::Error| AuditError::BadGlob {
                glob: glob.to_string(),
                message: e.kind().to_string(),
            };
            if pattern.is_empty() {
                return Err(AuditError::BadGlob {
                    glob: glob.to_string(),
                    message: "the pattern is empty".into(),
                });
            }
            let compiled = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(bad)?;
            if pattern.contains('/') {
                paths.add(compiled);
            } else {
                names.add(compiled);
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build().map_err(|e| AuditError::BadGlob {
                glob: globs
                    .iter()
                    .map(|g| g.as_ref())
                    .collect::<Vec<_>>()
                    .join(" "),
                message: e.kind().to_string(),
            })
        };
        Ok(Exclude {
            names: build(names)?,
            paths: build(paths)?,
        })
    }

    /// Whether `relative` (a path below a PATH argument) is left out.
    pub fn matches(&self, relative: &Path) -> bool {
        relative
            .file_name()
            .is_some_and(|name| self.names.is_match(name))
            || self.paths.is_match(relative)
    }
}

/// The fields of a container the audit reads (regular, init and ephemeral alike).
struct ContainerView<'a> {
    name: &'a str,
    security_context: Option<&'a SecurityContext>,
    volume_mounts: &'a [VolumeMount],
    ports: &'a [ContainerPort],
}

fn containers(spec: &PodSpec) -> Vec<ContainerView<'_>> {
    fn view(c: &Container) -> ContainerView<'_> {
        ContainerView {
            name: &c.name,
            security_context: c.security_context.as_ref(),
            volume_mounts: c.volume_mounts.as_deref().unwrap_or(&[]),
            ports: c.ports.as_deref().unwrap_or(&[]),
        }
    }
    let mut out: Vec<ContainerView> = spec.init_containers.iter().flatten().map(view).collect();
    out.extend(spec.containers.iter().map(view));
    out.extend(
        spec.ephemeral_containers
            .iter()
            .flatten()
            .map(|c| ContainerView {
                name: &c.name,
                security_context: c.security_context.as_ref(),
                volume_mounts: c.volume_mounts.as_deref().unwrap_or(&[]),
                ports: c.ports.as_deref().unwrap_or(&[]),
            }),
    );
    out
}

fn seccomp_of(profile: Option<&SeccompProfile>) -> Seccomp {
    match profile.map(|p| p.type_.as_str()) {
        Some("RuntimeDefault") => Seccomp {
            mode: SeccompMode::Filter,
            profile: Some("runtime/default".into()),
        },
        Some("Localhost") => Seccomp {
            mode: SeccompMode::Filter,
            profile: Some(format!(
                "localhost/{}",
                profile
                    .and_then(|p| p.localhost_profile.clone())
                    .unwrap_or_default()
            )),
        },
        Some("Unconfined") => Seccomp {
            mode: SeccompMode::Disabled,
            profile: Some("Unconfined".into()),
        },
        // Unset: the kubelet's default (Unconfined unless --seccomp-default), not visible here.
        _ => Seccomp::default(),
    }
}

fn propagation_of(p: Option<&str>) -> Propagation {
    match p {
        Some("Bidirectional") => Propagation::Bidirectional,
        Some("HostToContainer") => Propagation::HostToContainer,
        Some("None") | None => Propagation::Private,
        Some(_) => Propagation::Unknown,
    }
}

fn caps_of(c: Option<&K8sCaps>, privileged: bool) -> Capabilities {
    let added = c.and_then(|c| c.add.clone()).unwrap_or_default();
    let dropped = c.and_then(|c| c.drop.clone()).unwrap_or_default();
    let valid = |n: &&String| CapSet::number_of(n).is_ok() || n.eq_ignore_ascii_case("ALL");
    let effective = if privileged {
        CapSet::from_names(["ALL"]).unwrap_or_default()
    } else {
        let base = CapSet::from_names(CRI_DEFAULT_CAPS).unwrap_or_default();
        base.difference(CapSet::from_names(dropped.iter().filter(valid)).unwrap_or_default())
            .union(CapSet::from_names(added.iter().filter(valid)).unwrap_or_default())
    };
    Capabilities {
        effective: Some(effective),
        added,
        dropped,
        ..Capabilities::default()
    }
}

fn subject_of(meta: &ObjectMeta, spec: &PodSpec, c: &ContainerView) -> Subject {
    let pod_sc = spec.security_context.as_ref();
    let sc = c.security_context;
    let mut ns = Namespaces::default();
    let shared = |b: Option<bool>| {
        if b == Some(true) {
            NamespaceState::Shared
        } else {
            NamespaceState::Isolated
        }
    };
    ns.set(NamespaceKind::Net, shared(spec.host_network));
    ns.set(NamespaceKind::Pid, shared(spec.host_pid));
    ns.set(NamespaceKind::Ipc, shared(spec.host_ipc));
    // A pod on the host network also has the host's hostname.
    ns.set(NamespaceKind::Uts, shared(spec.host_network));
    ns.set(NamespaceKind::Mnt, NamespaceState::Isolated);
    ns.set(
        NamespaceKind::User,
        if spec.host_users == Some(false) {
            NamespaceState::Isolated
        } else {
            NamespaceState::Shared
        },
    );
    let privileged = sc.and_then(|s| s.privileged).unwrap_or(false);
    let capabilities = caps_of(sc.and_then(|s| s.capabilities.as_ref()), privileged);
    let seccomp = seccomp_of(
        sc.and_then(|s| s.seccomp_profile.as_ref())
            .or(pod_sc.and_then(|p| p.seccomp_profile.as_ref())),
    );
    // allowPrivilegeEscalation defaults to true.
    let no_new_privs = Some(sc.and_then(|s| s.allow_privilege_escalation) == Some(false));
    let apparmor_annotation = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(&format!("{APPARMOR_ANNOTATION}{}", c.name)));
    let apparmor_type = sc
        .and_then(|s| s.app_armor_profile.as_ref())
        .or(pod_sc.and_then(|p| p.app_armor_profile.as_ref()))
        .map(|p| p.type_.clone());
    let lsm = if apparmor_type.as_deref() == Some("Unconfined")
        || apparmor_annotation.map(String::as_str) == Some("unconfined")
    {
        Some(LsmLabel {
            lsm: "apparmor".into(),
            label: "unconfined".into(),
            confined: false,
        })
    } else {
        let se_type = sc
            .and_then(|s| s.se_linux_options.as_ref())
            .or(pod_sc.and_then(|p| p.se_linux_options.as_ref()))
            .and_then(|o| o.type_.clone());
        se_type
            .filter(|t| t == "spc_t" || t == "unconfined_t")
            .map(|t| LsmLabel {
                lsm: "selinux".into(),
                label: t,
                confined: false,
            })
    };
    let uid = sc
        .and_then(|s| s.run_as_user)
        .or(pod_sc.and_then(|p| p.run_as_user))
        .and_then(|u| u32::try_from(u).ok());
    let run_as_non_root = sc
        .and_then(|s| s.run_as_non_root)
        .or(pod_sc.and_then(|p| p.run_as_non_root));

    let volumes: BTreeMap<&str, _> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| (v.name.as_str(), v))
        .collect();
    let mut mounts = Vec::new();
    let mut devices = Vec::new();
    for vm in c.volume_mounts {
        let host = volumes
            .get(vm.name.as_str())
            .and_then(|v| v.host_path.as_ref());
        if let Some(hp) = host {
            let kind = match hp.type_.as_deref() {
                Some("BlockDevice") => Some(DeviceKind::Block),
                Some("CharDevice") => Some(DeviceKind::Char),
                _ if hp.path.starts_with("/dev/") => Some(DeviceKind::Unknown),
                _ => None,
            };
            if let Some(kind) = kind {
                devices.push(Device {
                    path: vm.mount_path.clone(),
                    host_path: Some(hp.path.clone()),
                    kind,
                    major: None,
                    minor: None,
                });
            }
        }
        mounts.push(Mount {
            target: vm.mount_path.clone(),
            source: match host {
                Some(hp) => hp.path.clone(),
                None => format!("volume:{}", vm.name),
            },
            host_path: host.map(|hp| hp.path.clone()),
            fs_type: host.map(|_| "hostPath".to_string()),
            read_only: vm.read_only.unwrap_or(false),
            propagation: propagation_of(vm.mount_propagation.as_deref()),
        });
    }
    let host_ports = c
        .ports
        .iter()
        .filter_map(|p| {
            let host_port = u16::try_from(p.host_port?).ok().filter(|p| *p != 0)?;
            Some(HostPort {
                host_port,
                container_port: u16::try_from(p.container_port).ok(),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                host_ip: p.host_ip.clone(),
            })
        })
        .collect();
    let sysctls = pod_sc
        .and_then(|p| p.sysctls.as_ref())
        .into_iter()
        .flatten()
        .map(|s| Sysctl {
            name: s.name.clone(),
            value: s.value.clone(),
        })
        .collect();
    Subject {
        name: c.name.to_string(),
        pid: None,
        namespaces: ns,
        privileged,
        capabilities,
        seccomp,
        no_new_privs,
        lsm,
        user: User {
            uid,
            gid: None,
            run_as_non_root,
        },
        uid_map: None,
        mounts,
        devices,
        host_ports,
        sysctls,
        masked_paths: (sc.and_then(|s| s.proc_mount.as_deref()) == Some("Unmasked")).then(Vec::new),
        readonly_rootfs: sc.and_then(|s| s.read_only_root_filesystem),
        service_account_token: Some(spec.automount_service_account_token != Some(false)),
        cgroup_path: None,
        os: spec.os.as_ref().map(|os| os.name.clone()),
        // The container's windowsOptions override the pod's.
        host_process: sc
            .and_then(|s| s.windows_options.as_ref())
            .and_then(|w| w.host_process)
            .or(pod_sc
                .and_then(|p| p.windows_options.as_ref())
                .and_then(|w| w.host_process)),
        ..Subject::default()
    }
}

/// The model of one loaded Kubernetes object.
pub fn to_workload(w: &watertight_pss::Workload) -> Workload {
    let id = format!(
        "{}/{}/{}",
        w.namespace.as_deref().unwrap_or("default"),
        w.kind,
        w.name
    );
    Workload {
        plan: None,
        id,
        kind: WorkloadKind::KubernetesObject {
            api_version: w.api_version.clone(),
            kind: w.kind.clone(),
        },
        origin: Origin::File {
            path: w.file.clone(),
            document: Some(w.document),
        },
        cgroup_path: None,
        subjects: containers(&w.pod_spec)
            .iter()
            .map(|c| subject_of(&w.pod_meta, &w.pod_spec, c))
            .collect(),
    }
}

/// Loads manifests under `path` and evaluates Pod Security Standards at `level`/`version`.
pub fn audit_path(path: &Path, level: Level, version: Version) -> K8sAudit {
    audit_path_excluding(path, &Exclude::default(), level, version)
}

/// [`audit_path`], leaving out what `exclude` matches.
pub fn audit_path_excluding(
    path: &Path,
    exclude: &Exclude,
    level: Level,
    version: Version,
) -> K8sAudit {
    let loaded = watertight_pss::load_path_excluding(path, &|p| exclude.matches(p));
    audit_loaded(loaded, level, version)
}

/// Audits manifests given as text (standard input), labelled `label` (e.g. `<stdin>`).
pub fn audit_text(text: &str, label: &Path, level: Level, version: Version) -> K8sAudit {
    audit_loaded(watertight_pss::load_text(text, label), level, version)
}

/// One line, whatever the input held: control characters (a key with a newline in it, an
/// escape sequence) are shown escaped, so a manifest cannot add lines or colours to a log.
fn one_line(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn input_error(e: watertight_pss::LoadError) -> InputError {
    InputError {
        source: one_line(&e.file.display().to_string()),
        document: e.document,
        message: one_line(&e.message),
    }
}

fn audit_loaded(loaded: watertight_pss::LoadReport, level: Level, version: Version) -> K8sAudit {
    let skipped_files = loaded
        .not_kubernetes
        .iter()
        .map(|f| (f, SkipReason::NotKubernetes))
        .chain(loaded.templates.iter().map(|f| (f, SkipReason::Template)))
        .map(|(f, reason)| SkippedFile {
            source: f.display().to_string(),
            reason,
        })
        .collect();
    let mut out = K8sAudit {
        skipped: loaded.skipped,
        errors: loaded.errors.into_iter().map(input_error).collect(),
        warnings: loaded.warnings.into_iter().map(input_error).collect(),
        skipped_files,
        ..K8sAudit::default()
    };
    for w in &loaded.workloads {
        let model = to_workload(w);
        let locator = Locator::new(w);
        out.acceptances.extend(crate::accept::of_object(
            w.pod_meta.annotations.as_ref(),
            &w.file,
            w.document,
            &model.id,
            // A malformed line accepts nothing, so the object is evaluated in full: a warning,
            // not an object that could not be evaluated.
            &mut out.warnings,
        ));
        let eval = watertight_pss::evaluate(&w.pod_meta, &w.pod_spec, level, version);
        for v in &eval.violations {
            let detail = if v.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", v.detail)
            };
            let mut finding = Finding {
                rule: format!("pss/{}", v.check),
                severity: Severity::High,
                message: format!(
                    "violates PodSecurity \"{}:{}\": {}{detail}",
                    eval.level, eval.version, v.reason
                ),
                source: w.file.display().to_string(),
                // The containers upstream's detail names, when it is about containers (not in
                // `container`, which the finding's fingerprint holds).
                subject: match locator.pss_containers(&v.check, &v.detail).as_slice() {
                    [] => model.id.clone(),
                    [one] => format!("{} container {one}", model.id),
                    many => format!("{} containers {}", model.id, many.join(", ")),
                },
                workload: model.id.clone(),
                container: None,
                pid: None,
                pids: vec![],
                namespace: None,
                paths: vec![],
                file: Some(w.file.clone()),
                document: Some(w.document),
                field: None,
                line: None,
                column: None,
            };
            locator.locate(&mut finding, Some(&v.detail));
            out.pss_findings.push(finding);
        }
        out.pss.push(PssEntry {
            file: w.file.clone(),
            document: w.document,
            line: w.line(),
            api_version: w.api_version.clone(),
            kind: w.kind.clone(),
            name: w.name.clone(),
            namespace: w.namespace.clone(),
            level: eval.level.to_string(),
            version: eval.version.to_string(),
            allowed: eval.allowed,
            violations: eval
                .violations
                .into_iter()
                .map(|v| PssViolation {
                    check: v.check,
                    reason: v.reason,
                    detail: v.detail,
                })
                .collect(),
        });
        out.workloads.push(model);
        out.locators.push(locator);
    }
    out
}
