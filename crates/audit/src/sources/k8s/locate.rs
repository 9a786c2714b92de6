//! Where in a manifest a finding points: the field it is about, as a JSON pointer into its
//! document, and that field's line and column (from the YAML reader's positions). A finding
//! about a field that is not there (no seccomp profile) points at its nearest written parent
//! (the container's `securityContext`, the container, the pod spec).

use crate::finding::Finding;
use std::sync::Arc;
use watertight_pss::k8s_openapi::api::core::v1::PodSpec;
use watertight_pss::Positions;

/// One container of a workload: its name, its pointer and its volume mounts' paths.
#[derive(Debug, Clone)]
struct ContainerAt {
    name: String,
    pointer: String,
    mount_paths: Vec<String>,
}

/// What is needed to locate the findings of one workload object.
#[derive(Debug, Clone)]
pub(crate) struct Locator {
    positions: Arc<Positions>,
    spec: String,
    meta: String,
    containers: Vec<ContainerAt>,
    /// The volumes' names, in order.
    volumes: Vec<String>,
}

impl Locator {
    pub(crate) fn new(w: &watertight_pss::Workload) -> Locator {
        let spec = &w.spec_pointer;
        let s: &PodSpec = &w.pod_spec;
        let mut containers = Vec::new();
        let mut add = |list: &str, i: usize, name: &str, mounts: Vec<String>| {
            containers.push(ContainerAt {
                name: name.to_string(),
                pointer: format!("{spec}/{list}/{i}"),
                mount_paths: mounts,
            })
        };
        let mounts = |m: &Option<Vec<watertight_pss::k8s_openapi::api::core::v1::VolumeMount>>| {
            m.iter()
                .flatten()
                .map(|v| v.mount_path.clone())
                .collect::<Vec<_>>()
        };
        for (i, c) in s.init_containers.iter().flatten().enumerate() {
            add("initContainers", i, &c.name, mounts(&c.volume_mounts));
        }
        for (i, c) in s.containers.iter().enumerate() {
            add("containers", i, &c.name, mounts(&c.volume_mounts));
        }
        for (i, c) in s.ephemeral_containers.iter().flatten().enumerate() {
            add("ephemeralContainers", i, &c.name, mounts(&c.volume_mounts));
        }
        Locator {
            positions: Arc::clone(&w.positions),
            spec: spec.clone(),
            meta: w.meta_pointer(),
            containers,
            volumes: s.volumes.iter().flatten().map(|v| v.name.clone()).collect(),
        }
    }

    /// Sets `field`, `line` and `column` of a finding of this workload (an isolation rule's,
    /// or a `pss/<check>` one with its upstream detail).
    pub(crate) fn locate(&self, f: &mut Finding, pss_detail: Option<&str>) {
        let candidates = match (f.rule.strip_prefix("pss/"), pss_detail) {
            (Some(check), detail) => self.pss_candidates(check, detail.unwrap_or("")),
            (None, _) => {
                let c = f
                    .container
                    .as_deref()
                    .and_then(|name| self.containers.iter().find(|c| c.name == name));
                self.rule_candidates(f, c)
            }
        };
        // The first candidate that is written, else the first one (absent: its nearest
        // written ancestor).
        let Some(first) = candidates.first() else {
            return;
        };
        let chosen = candidates
            .iter()
            .find(|p| self.positions.contains(p))
            .unwrap_or(first);
        // A JSON file has no positions: its findings name no field.
        if let Some((pointer, line, column)) = self.positions.locate(chosen) {
            f.field = Some(pointer.to_string());
            f.line = Some(line);
            f.column = Some(column);
        }
    }

    fn rule_candidates(&self, f: &Finding, c: Option<&ContainerAt>) -> Vec<String> {
        let s = &self.spec;
        let cp = c.map_or(s.as_str(), |c| c.pointer.as_str());
        let sc = format!("{cp}/securityContext");
        let psc = format!("{s}/securityContext");
        let mut out: Vec<String> = match f.rule.as_str() {
            "privileged" => vec![
                format!("{sc}/privileged"),
                format!("{sc}/windowsOptions/hostProcess"),
                format!("{psc}/windowsOptions/hostProcess"),
                sc.clone(),
            ],
            "shared-host-namespace" | "namespace-unknown" => {
                let field = match f.namespace.as_deref() {
                    Some("net" | "uts") => "hostNetwork",
                    Some("pid") => "hostPID",
                    Some("ipc") => "hostIPC",
                    Some("user") => "hostUsers",
                    _ => "",
                };
                vec![if field.is_empty() {
                    s.clone()
                } else {
                    format!("{s}/{field}")
                }]
            }
            "user-namespace-host-root" => vec![format!("{s}/hostUsers")],
            "full-capabilities" | "dangerous-capabilities" => vec![
                format!("{sc}/capabilities/add"),
                format!("{sc}/capabilities"),
            ],
            "sensitive-host-mount" | "mount-propagation" | "host-devices" => {
                let mut v = Vec::new();
                if let Some(c) = c {
                    for (j, m) in c.mount_paths.iter().enumerate() {
                        if f.paths.contains(m) {
                            let mount = format!("{cp}/volumeMounts/{j}");
                            if f.rule == "mount-propagation" {
                                v.push(format!("{mount}/mountPropagation"));
                            }
                            v.push(mount);
                        }
                    }
                }
                v.push(format!("{cp}/volumeMounts"));
                v
            }
            "seccomp-disabled" | "seccomp-unset" => vec![
                format!("{sc}/seccompProfile"),
                format!("{psc}/seccompProfile"),
            ],
            "no-new-privs" => vec![format!("{sc}/allowPrivilegeEscalation")],
            "lsm-unconfined" => {
                let name = c.map_or("", |c| c.name.as_str());
                vec![
                    format!("{sc}/appArmorProfile"),
                    format!("{psc}/appArmorProfile"),
                    format!(
                        "{}/annotations/container.apparmor.security.beta.kubernetes.io~1{}",
                        self.meta,
                        name.replace('~', "~0").replace('/', "~1")
                    ),
                    format!("{sc}/seLinuxOptions/type"),
                    format!("{psc}/seLinuxOptions/type"),
                ]
            }
            "run-as-root" | "image-user-root" => vec![
                format!("{sc}/runAsUser"),
                format!("{psc}/runAsUser"),
                format!("{sc}/runAsNonRoot"),
                format!("{psc}/runAsNonRoot"),
            ],
            "unmasked-proc" => vec![format!("{sc}/procMount")],
            "unsafe-sysctls" => vec![format!("{psc}/sysctls")],
            "host-ports" => {
                let mut v: Vec<String> = (0..64)
                    .map(|j| format!("{cp}/ports/{j}/hostPort"))
                    .filter(|p| self.positions.contains(p))
                    .collect();
                v.push(format!("{cp}/ports"));
                v
            }
            "service-account-token-privileged" => vec![format!("{s}/automountServiceAccountToken")],
            _ => vec![],
        };
        if out.is_empty() {
            out.push(cp.to_string());
        }
        out
    }

    /// The containers a Pod Security Standards violation's detail names (upstream quotes them:
    /// `containers "app", "side" must ...`), for a check of containers' fields; none for a
    /// pod-level check (its detail may quote volume names).
    pub(crate) fn pss_containers(&self, check: &str, detail: &str) -> Vec<&str> {
        if container_fields(check).is_empty() {
            return Vec::new();
        }
        self.containers
            .iter()
            .map(|c| c.name.as_str())
            .filter(|name| detail.contains(&format!("\"{name}\"")))
            .collect()
    }

    /// A Pod Security Standards violation: the container upstream's detail names first (it
    /// quotes names: `container "app" must ...`), else the first whose field is written.
    fn pss_candidates(&self, check: &str, detail: &str) -> Vec<String> {
        let s = &self.spec;
        let psc = format!("{s}/securityContext");
        let in_container = container_fields(check);
        // The pod-level fields checked too.
        let in_pod: Vec<String> = match check {
            "hostNamespaces" => vec![
                format!("{s}/hostNetwork"),
                format!("{s}/hostPID"),
                format!("{s}/hostIPC"),
            ],
            "hostPathVolumes" | "restrictedVolumes" => {
                let mut v: Vec<String> = self
                    .volumes
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| detail.contains(&format!("\"{v}\"")))
                    .map(|(k, _)| format!("{s}/volumes/{k}"))
                    .collect();
                v.push(format!("{s}/volumes"));
                v
            }
            "appArmorProfile" => vec![
                format!("{psc}/appArmorProfile"),
                format!("{}/annotations", self.meta),
            ],
            "seLinuxOptions" => vec![format!("{psc}/seLinuxOptions")],
            "seccompProfile_baseline" | "seccompProfile_restricted" => {
                vec![format!("{psc}/seccompProfile")]
            }
            "sysctls" => vec![format!("{psc}/sysctls")],
            "windowsHostProcess" => vec![format!("{psc}/windowsOptions/hostProcess")],
            "runAsNonRoot" => vec![format!("{psc}/runAsNonRoot")],
            "runAsUser" => vec![format!("{psc}/runAsUser")],
            _ => vec![],
        };
        let mut out = Vec::new();
        if !in_container.is_empty() {
            let named = self
                .containers
                .iter()
                .find(|c| detail.contains(&format!("\"{}\"", c.name)));
            let written = || {
                self.containers.iter().find(|c| {
                    in_container
                        .iter()
                        .any(|f| self.positions.contains(&format!("{}{f}", c.pointer)))
                })
            };
            if let Some(c) = named.or_else(written).or(self.containers.first()) {
                out.extend(in_container.iter().map(|f| format!("{}{f}", c.pointer)));
                out.extend(in_pod.iter().cloned());
            }
        } else {
            out.extend(in_pod);
        }
        if out.is_empty() {
            out.push(s.clone());
        }
        out
    }
}

/// The fields below a container that a Pod Security Standards check reads (empty for a check of
/// pod-level fields only).
fn container_fields(check: &str) -> &'static [&'static str] {
    match check {
        "privileged" => &["/securityContext/privileged"],
        "hostPorts" => &["/ports"],
        "capabilities_baseline" => &["/securityContext/capabilities/add"],
        "capabilities_restricted" => &[
            "/securityContext/capabilities/drop",
            "/securityContext/capabilities/add",
            "/securityContext/capabilities",
        ],
        "appArmorProfile" => &["/securityContext/appArmorProfile"],
        "seLinuxOptions" => &["/securityContext/seLinuxOptions"],
        "procMount" | "procMount_restricted" => &["/securityContext/procMount"],
        "seccompProfile_baseline" | "seccompProfile_restricted" => {
            &["/securityContext/seccompProfile"]
        }
        "windowsHostProcess" => &["/securityContext/windowsOptions/hostProcess"],
        "allowPrivilegeEscalation" => &["/securityContext/allowPrivilegeEscalation"],
        "runAsNonRoot" => &["/securityContext/runAsNonRoot"],
        "runAsUser" => &["/securityContext/runAsUser"],
        "hostProbesAndHostLifecycle" => &[
            "/livenessProbe",
            "/readinessProbe",
            "/startupProbe",
            "/lifecycle",
        ],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use crate::finding::Finding;
    use crate::sources::k8s::audit_text;
    use std::path::Path;
    use watertight_pss::{Level, Version};

    const MANIFESTS: &str = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector: {}
  template:
    spec:
      containers:
      - name: app
        image: nginx
        securityContext:
          privileged: true
      - name: side
        image: busybox
        securityContext: {runAsNonRoot: true}
      - name: bare
        image: busybox
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: p, namespace: ns}
  spec:
    hostNetwork: true
    containers: [{name: c, image: x, securityContext: {privileged: true}}]
";

    /// The 1-based line and column (in characters) of the `nth` (0-based) `needle` in `text`.
    fn at(text: &str, needle: &str, nth: usize) -> (usize, usize) {
        let (offset, _) = text.match_indices(needle).nth(nth).unwrap();
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[start..].chars().count() + 1)
    }

    fn find<'a>(found: &'a [Finding], rule: &str, subject: &str) -> &'a Finding {
        found
            .iter()
            .find(|f| f.rule == rule && f.subject == subject)
            .unwrap_or_else(|| panic!("no {rule} for {subject} in {found:#?}"))
    }

    fn place(f: &Finding) -> (Option<&str>, Option<usize>, Option<usize>) {
        (f.field.as_deref(), f.line, f.column)
    }

    fn expect(
        field: &str,
        (line, column): (usize, usize),
    ) -> (Option<&str>, Option<usize>, Option<usize>) {
        (Some(field), Some(line), Some(column))
    }

    #[test]
    fn findings_point_at_their_field_in_a_multi_document_file() {
        let audit = audit_text(
            MANIFESTS,
            Path::new("all.yaml"),
            Level::Baseline,
            Version::Latest,
        );
        assert!(audit.errors.is_empty(), "{:?}", audit.errors);
        let found = audit.rule_findings();

        // A field that is written: its key, in the document it is in.
        let app = "shop/Deployment/web container app";
        let privileged = find(&found, "privileged", app);
        assert_eq!(privileged.document, Some(1));
        assert_eq!(
            place(privileged),
            expect(
                "/spec/template/spec/containers/0/securityContext/privileged",
                at(MANIFESTS, "privileged: true", 0)
            )
        );
        // A field that is absent (no seccomp profile): its nearest written parent, the
        // container's securityContext or, without one, the container.
        assert_eq!(
            place(find(
                &found,
                "seccomp-unset",
                "shop/Deployment/web container side"
            )),
            expect(
                "/spec/template/spec/containers/1/securityContext",
                at(MANIFESTS, "securityContext: {", 0)
            )
        );
        assert_eq!(
            place(find(
                &found,
                "seccomp-unset",
                "shop/Deployment/web container bare"
            )),
            expect(
                "/spec/template/spec/containers/2",
                at(MANIFESTS, "name: bare", 0)
            )
        );

        // A List item, in flow style.
        let c = "ns/Pod/p container c";
        assert_eq!(
            place(find(&found, "privileged", c)),
            expect(
                "/items/0/spec/containers/0/securityContext/privileged",
                at(MANIFESTS, "privileged: true", 1)
            )
        );
        assert_eq!(
            place(find(&found, "shared-host-namespace", c)),
            expect("/items/0/spec/hostNetwork", at(MANIFESTS, "hostNetwork", 0))
        );
        // Every finding from a YAML file is located.
        for f in &found {
            assert!(f.line.is_some() && f.column.is_some(), "{f:#?}");
        }

        // Pod Security Standards violations too: the container upstream names.
        let pss = audit
            .pss_findings
            .iter()
            .find(|f| f.rule == "pss/privileged" && f.workload == "shop/Deployment/web")
            .unwrap_or_else(|| panic!("{:#?}", audit.pss_findings));
        assert_eq!(
            place(pss),
            expect(
                "/spec/template/spec/containers/0/securityContext/privileged",
                at(MANIFESTS, "privileged: true", 0)
            )
        );
        let host = audit
            .pss_findings
            .iter()
            .find(|f| f.rule == "pss/hostNamespaces")
            .unwrap_or_else(|| panic!("{:#?}", audit.pss_findings));
        assert_eq!(
            place(host),
            expect("/items/0/spec/hostNetwork", at(MANIFESTS, "hostNetwork", 0))
        );
        // Subjects name the containers a check about containers names; a pod-level check none.
        assert_eq!(pss.subject, "shop/Deployment/web container app");
        assert_eq!(pss.container, None, "the fingerprint stays the workload's");
        assert_eq!(host.subject, "ns/Pod/p");
    }

    #[test]
    fn a_violation_of_several_containers_names_them_all() {
        let audit = audit_text(
            MANIFESTS,
            Path::new("all.yaml"),
            Level::Restricted,
            Version::Latest,
        );
        let seccomp = audit
            .pss_findings
            .iter()
            .find(|f| {
                f.rule == "pss/seccompProfile_restricted" && f.workload == "shop/Deployment/web"
            })
            .unwrap_or_else(|| panic!("{:#?}", audit.pss_findings));
        assert_eq!(
            seccomp.subject, "shop/Deployment/web containers app, side, bare",
            "{seccomp:#?}"
        );
        // Located at the first container named, its securityContext (no seccompProfile there).
        assert_eq!(
            place(seccomp),
            expect(
                "/spec/template/spec/containers/0/securityContext",
                at(MANIFESTS, "securityContext:", 0)
            )
        );
    }

    #[test]
    fn json_manifests_name_no_place() {
        let json = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "x",
                     "securityContext": {"privileged": true}}]}}"#;
        let audit = audit_text(
            json,
            Path::new("pod.json"),
            Level::Baseline,
            Version::Latest,
        );
        let found = audit.rule_findings();
        let f = find(&found, "privileged", "default/Pod/p container c");
        assert_eq!(place(f), (None, None, None));
        assert!(audit.pss_findings.iter().all(|f| f.line.is_none()));
    }
}
