//! From one decoded document to workloads: `List` unwrapping, dispatch on
//! apiVersion/kind, typed decoding with k8s-openapi, and pod-template extraction.

use std::path::PathBuf;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodTemplate, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::cell::RefCell;
use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::DocumentError;
use super::probe::{Path, Probe};
use super::Workload;
use crate::defaults::{apply_pod_defaults, apply_pod_spec_defaults};

/// A workload and the problems that did not stop its evaluation (one line each).
pub(super) type Found = Result<(Workload, Vec<String>), DocumentError>;

pub(crate) const MAX_LIST_DEPTH: usize = 8;

/// How a kind carries its pod spec.
#[derive(Clone, Copy)]
enum Shape {
    Pod,
    PodTemplate,
    ReplicationController,
    Deployment,
    ReplicaSet,
    DaemonSet,
    StatefulSet,
    Job,
    CronJob,
}

/// Built-in workload kinds: (kind, apiVersion k8s-openapi reads, older apiVersions
/// with the same pod-template layout that are read as the current one).
const WORKLOAD_KINDS: &[(&str, &str, &[&str], Shape)] = &[
    ("Pod", "v1", &[], Shape::Pod),
    ("PodTemplate", "v1", &[], Shape::PodTemplate),
    (
        "ReplicationController",
        "v1",
        &[],
        Shape::ReplicationController,
    ),
    (
        "Deployment",
        "apps/v1",
        &["apps/v1beta1", "apps/v1beta2", "extensions/v1beta1"],
        Shape::Deployment,
    ),
    (
        "ReplicaSet",
        "apps/v1",
        &["apps/v1beta2", "extensions/v1beta1"],
        Shape::ReplicaSet,
    ),
    (
        "DaemonSet",
        "apps/v1",
        &["apps/v1beta2", "extensions/v1beta1"],
        Shape::DaemonSet,
    ),
    (
        "StatefulSet",
        "apps/v1",
        &["apps/v1beta1", "apps/v1beta2"],
        Shape::StatefulSet,
    ),
    ("Job", "batch/v1", &[], Shape::Job),
    (
        "CronJob",
        "batch/v1",
        &["batch/v1beta1", "batch/v2alpha1"],
        Shape::CronJob,
    ),
];

/// API groups whose kinds this loader knows; a known kind under another version of
/// these groups is an error rather than a custom resource that happens to share a name.
const BUILT_IN_GROUPS: &[&str] = &["", "apps", "extensions", "batch"];

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// Walks a document (and nested `List`s), converting each workload.
pub(super) fn collect_objects(
    value: Value,
    depth: usize,
    pointer: &str,
    found: &mut Vec<Found>,
    skipped: &mut usize,
) -> Result<(), DocumentError> {
    let Value::Object(map) = &value else {
        return Err(DocumentError::NotAnObject(json_type(&value)));
    };
    let kind = map
        .get("kind")
        .and_then(Value::as_str)
        .ok_or(DocumentError::MissingField("kind"))?
        .to_string();
    let api_version = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or(DocumentError::MissingField("apiVersion"))?
        .to_string();

    if kind.ends_with("List") && map.get("items").is_some_and(Value::is_array) {
        if depth >= MAX_LIST_DEPTH {
            return Err(DocumentError::ListTooDeep(kind));
        }
        let Value::Object(mut map) = value else {
            unreachable!("checked above")
        };
        let Some(Value::Array(items)) = map.remove("items") else {
            unreachable!("checked above")
        };
        for (index, item) in items.into_iter().enumerate() {
            if item.is_null() {
                continue;
            }
            let mut nested = Vec::new();
            let item_pointer = format!("{pointer}/items/{index}");
            let result = collect_objects(item, depth + 1, &item_pointer, &mut nested, skipped);
            let wrap = |source| DocumentError::ListItem {
                index,
                source: Box::new(source),
            };
            found.extend(nested.into_iter().map(|r| {
                r.map(|(w, warnings)| {
                    let warnings = warnings
                        .into_iter()
                        .map(|m| format!("items[{index}]: {m}"))
                        .collect();
                    (w, warnings)
                })
                .map_err(wrap)
            }));
            if let Err(e) = result {
                found.push(Err(wrap(e)));
            }
        }
        return Ok(());
    }

    let name = object_name(map);
    let known = WORKLOAD_KINDS.iter().find(|(k, ..)| *k == kind);
    if let Some((_, current, legacy, shape)) = known {
        if api_version == *current || legacy.contains(&api_version.as_str()) {
            found.push(
                convert(value, *shape, current, &kind, &api_version, &name).map(|(mut w, m)| {
                    w.spec_pointer = format!("{pointer}{}", w.spec_pointer);
                    w.object_pointer = pointer.to_string();
                    (w, m)
                }),
            );
            return Ok(());
        }
        if BUILT_IN_GROUPS.contains(&group_of(&api_version)) {
            let mut supported = vec![*current];
            supported.extend(legacy.iter().copied());
            found.push(Err(DocumentError::UnsupportedApiVersion {
                kind,
                name,
                api_version,
                supported: supported.join(" or "),
            }));
            return Ok(());
        }
    }
    if looks_like_workload(&value) {
        found.push(Err(DocumentError::UnknownWorkload {
            kind,
            name,
            api_version,
        }));
    } else {
        *skipped += 1;
    }
    Ok(())
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

fn object_name(map: &serde_json::Map<String, Value>) -> String {
    let meta = map.get("metadata");
    let field = |f: &str| meta.and_then(|m| m.get(f)).and_then(Value::as_str);
    field("name")
        .or_else(|| field("generateName"))
        .unwrap_or_default()
        .to_string()
}

/// Custom resources and unknown kinds that embed a pod spec where workloads do.
fn looks_like_workload(value: &Value) -> bool {
    const POD_SPEC_PATHS: &[&str] = &[
        "/spec/containers",
        "/template/spec/containers",
        "/spec/template/spec/containers",
        "/spec/jobTemplate/spec/template/spec/containers",
    ];
    POD_SPEC_PATHS
        .iter()
        .any(|p| value.pointer(p).is_some_and(Value::is_array))
}

/// One step of a path in an object.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

fn render(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn steps_of(path: &serde_path_to_error::Path) -> Option<Vec<Step>> {
    path.iter()
        .map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(Step::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
            _ => None,
        })
        .collect()
}

impl Shape {
    /// Where the pod spec and the pod metadata sit in an object of this shape.
    fn pod_paths(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Shape::Pod => (&["spec"], &["metadata"]),
            Shape::PodTemplate => (&["template", "spec"], &["template", "metadata"]),
            Shape::CronJob => (
                &["spec", "jobTemplate", "spec", "template", "spec"],
                &["spec", "jobTemplate", "spec", "template", "metadata"],
            ),
            _ => (
                &["spec", "template", "spec"],
                &["spec", "template", "metadata"],
            ),
        }
    }
}

/// Pod-spec fields a Pod Security check or an isolation rule reads (all of them, below).
const POD_SPEC_FIELDS: &[&str] = &[
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "hostUsers",
    "securityContext",
    "os",
    "automountServiceAccountToken",
];

/// Container fields a check or rule reads (all of them, below).
const CONTAINER_FIELDS: &[&str] = &[
    "name",
    "securityContext",
    "ports",
    "volumeMounts",
    "lifecycle",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
];

const POLICY_ANNOTATIONS: &[&str] = &[
    "container.apparmor.security.beta.kubernetes.io/",
    "seccomp.security.alpha.kubernetes.io/",
];

/// Whether a schema problem at `steps` touches what the checks and rules read. Such an object
/// cannot be evaluated without guessing; anything else can be set aside with a warning.
fn security_relevant(shape: Shape, steps: &[Step]) -> bool {
    let (spec, meta) = shape.pod_paths();
    let is_prefix = |prefix: &[&str]| {
        steps.len() >= prefix.len()
            && prefix
                .iter()
                .zip(steps)
                .all(|(p, s)| matches!(s, Step::Key(k) if k == p))
    };
    let on_the_way = |prefix: &[&str]| {
        steps.len() <= prefix.len()
            && steps
                .iter()
                .zip(prefix)
                .all(|(s, p)| matches!(s, Step::Key(k) if k == p))
    };
    // The object, its spec or template itself is broken: no pod to read.
    if on_the_way(spec) || on_the_way(meta) {
        return true;
    }
    if is_prefix(meta) {
        let rest = &steps[meta.len()..];
        return match rest {
            [Step::Key(a)] => a == "annotations",
            [Step::Key(a), Step::Key(key), ..] if a == "annotations" => {
                POLICY_ANNOTATIONS.iter().any(|p| key.starts_with(p))
            }
            _ => false,
        };
    }
    if !is_prefix(spec) {
        return false;
    }
    let key = |i: usize| match steps.get(spec.len() + i) {
        Some(Step::Key(k)) => Some(k.as_str()),
        _ => None,
    };
    let depth = steps.len() - spec.len();
    match key(0) {
        Some(field) if POD_SPEC_FIELDS.contains(&field) => true,
        // The volume list, a volume, its name, which source it is, and hostPath's fields.
        Some("volumes") => depth <= 3 || key(2) == Some("hostPath") || key(2) == Some("name"),
        Some("containers" | "initContainers" | "ephemeralContainers") => {
            depth <= 2 || key(2).is_some_and(|f| CONTAINER_FIELDS.contains(&f))
        }
        _ => false,
    }
}

/// The value at `steps` (its parent and the last step), if the path leads somewhere.
fn parent_mut<'v>(value: &'v mut Value, steps: &[Step]) -> Option<&'v mut Value> {
    let mut at = value;
    for step in steps {
        at = match step {
            Step::Key(k) => at.as_object_mut()?.get_mut(k)?,
            Step::Index(i) => at.as_array_mut()?.get_mut(*i)?,
        };
    }
    Some(at)
}

/// Zero values tried, in order, for a missing required field (what Go's decoder leaves there).
const ZERO_VALUES: usize = 5;

fn zero_value(attempt: usize) -> Value {
    match attempt {
        0 => Value::String(String::new()),
        1 => Value::Object(serde_json::Map::new()),
        2 => Value::Array(Vec::new()),
        3 => Value::from(0),
        _ => Value::Bool(false),
    }
}

/// Most schema problems set aside in one object before it counts as unreadable.
const MAX_REPAIRS: usize = 64;

/// Decodes `value` into `T` as kubectl's typed decode would, but keeps going where it would
/// stop: a required field that is missing gets the zero value Go's decoder leaves (warning), a
/// field of the wrong type that no check or rule reads is set aside (warning), fields the schema
/// does not know are named with the closest known one (warning). A wrong type where checks
/// look is an error: the object cannot be evaluated without guessing.
fn decode<T: DeserializeOwned>(
    mut value: Value,
    shape: Shape,
    kind: &str,
    name: &str,
    api_version: &str,
) -> Result<(T, Vec<String>), DocumentError> {
    let mut warnings = Vec::new();
    let mut filled: HashMap<String, usize> = HashMap::new();
    for _ in 0..MAX_REPAIRS {
        let sink = RefCell::new(Vec::new());
        let probe = Probe {
            value: &value,
            path: Path::Root,
            sink: &sink,
        };
        if let Ok(typed) = T::deserialize(probe) {
            for unknown in sink.into_inner() {
                let hint = unknown
                    .closest
                    .map(|c| format!("did you mean `{c}`? "))
                    .unwrap_or_default();
                warnings.push(format!(
                    "{kind} {name:?}: unknown field {} ({hint}the API server drops fields it \
                     does not know, so it has no effect)",
                    unknown.path
                ));
            }
            return Ok((typed, warnings));
        }
        // Path tracking costs; only pay for it to explain a failure.
        let sink = RefCell::new(Vec::new());
        let probe = Probe {
            value: &value,
            path: Path::Root,
            sink: &sink,
        };
        let Err(e) = serde_path_to_error::deserialize::<_, T>(probe) else {
            unreachable!("the same input decoded the first time")
        };
        let path_text = e.path().to_string();
        let steps = steps_of(e.path());
        let source = e.into_inner();
        let schema_error = |path: String, source| DocumentError::Schema {
            kind: kind.to_string(),
            name: name.to_string(),
            api_version: api_version.to_string(),
            path,
            source,
        };
        let Some(mut steps) = steps else {
            return Err(schema_error(path_text, source));
        };
        let message = format!("{source}{}", super::error::yaml11_hint(&source.to_string()));
        // "missing field `name`": the path is the struct's; Go's decoder leaves a zero value.
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
        {
            steps.push(Step::Key(field.to_string()));
            let at = render(&steps);
            let attempt = filled.entry(at.clone()).or_insert(0);
            let Some(Value::Object(parent)) = parent_mut(&mut value, &steps[..steps.len() - 1])
            else {
                return Err(schema_error(path_text, source));
            };
            parent.insert(field.to_string(), zero_value(*attempt));
            if *attempt == 0 {
                warnings.push(format!(
                    "{kind} {name:?}: required field {at} is missing; evaluated as empty, as \
                     kubectl decodes it (the API server would refuse the object)"
                ));
            }
            continue;
        }
        let at = render(&steps);
        if let Some(attempt) = filled.get_mut(&at) {
            // A zero value of the wrong type went in: the next one.
            *attempt += 1;
            if *attempt >= ZERO_VALUES {
                return Err(schema_error(path_text, source));
            }
            if let Some(slot) = parent_mut(&mut value, &steps) {
                *slot = zero_value(*attempt);
                continue;
            }
            return Err(schema_error(path_text, source));
        }
        if steps.is_empty() || security_relevant(shape, &steps) {
            return Err(schema_error(path_text, source));
        }
        let (last, parent_steps) = steps.split_last().expect("not empty");
        let removed = match (parent_mut(&mut value, parent_steps), last) {
            (Some(Value::Object(map)), Step::Key(k)) => map.remove(k).is_some(),
            (Some(Value::Array(items)), Step::Index(i)) if *i < items.len() => {
                items.remove(*i);
                true
            }
            _ => false,
        };
        if !removed {
            return Err(schema_error(path_text, source));
        }
        warnings.push(format!(
            "{kind} {name:?} does not match the {api_version} schema at {at}: {message}; \
             evaluated without it, since no check reads it (kubectl would refuse the object: fix \
             the field)"
        ));
    }
    Err(DocumentError::TooBroken {
        kind: kind.to_string(),
        name: name.to_string(),
        repairs: MAX_REPAIRS,
    })
}

fn convert(
    mut value: Value,
    shape: Shape,
    current_api_version: &str,
    kind: &str,
    api_version: &str,
    name: &str,
) -> Found {
    // Older group versions share the pod-template layout; read them as the current one.
    value["apiVersion"] = Value::String(current_api_version.to_string());
    let no_spec = |field| DocumentError::NoPodSpec {
        kind: kind.to_string(),
        name: name.to_string(),
        field,
    };
    let from_template = |meta: ObjectMeta, template: Option<PodTemplateSpec>, field| {
        let template = template.ok_or_else(|| no_spec(field))?;
        let spec = template.spec.ok_or_else(|| no_spec(field))?;
        Ok::<_, DocumentError>((meta, template.metadata.unwrap_or_default(), spec))
    };
    let warnings: Vec<String>;
    let (object_meta, pod_meta, mut pod_spec) = match shape {
        Shape::Pod => {
            let (pod, w): (Pod, _) = decode(value, shape, kind, name, api_version)?;
            warnings = w;
            let mut spec = pod.spec.ok_or_else(|| no_spec("spec"))?;
            apply_pod_defaults(&mut spec);
            (pod.metadata.clone(), pod.metadata, spec)
        }
        Shape::PodTemplate => {
            let (t, w): (PodTemplate, _) = decode(value, shape, kind, name, api_version)?;
            warnings = w;
            from_template(t.metadata, t.template, "template.spec")?
        }
        Shape::ReplicationController => {
            let (rc, w): (ReplicationController, _) =
                decode(value, shape, kind, name, api_version)?;
            warnings = w;
            from_template(
                rc.metadata,
                rc.spec.and_then(|s| s.template),
                "spec.template.spec",
            )?
        }
        Shape::Deployment => {
            let (d, w): (Deployment, _) = decode(value, shape, kind, name, api_version)?;
            warnings = w;
            from_template(d.metadata, Some(d.spec.template), "spec.template.spec")?
        }
        Shape::ReplicaSet => {
            let (r, w): (ReplicaSet, _) = decode(value, shape, kind, name, api_version)?;
            warnings = w;
            from_template(r.metadata, r.spec.template, "spec.template.spec")?
        }
        Shape::DaemonSet => {
            let (d, w): (DaemonSet, _) = decode(value, shape, kind, name, api_version)?;
            warnings = w;
            from_template(d.metadata, Some(d.spec.template), "spec.template.spec")?
        }
        Shape::StatefulSet => {
            let (s, w): (StatefulSet, _) = decode(value, shape, kind, name, api_version)?;
            warnings = w;
            from_template(s.metadata, Some(s.spec.template), "spec.template.spec")?
        }
        Shape::Job => {
            let (j, w): (Job, _) = decode(value, shape, kind, name, api_version)?;
            warnings = w;
            from_template(j.metadata, j.spec.map(|s| s.template), "spec.template.spec")?
        }
        Shape::CronJob => {
            let (c, w): (CronJob, _) = decode(value, shape, kind, name, api_version)?;
            warnings = w;
            let template = c.spec.job_template.spec.map(|s| s.template);
            from_template(c.metadata, template, "spec.jobTemplate.spec.template.spec")?
        }
    };
    // Defaults every pod spec gets, in a Pod or a template.
    apply_pod_spec_defaults(&mut pod_spec);
    let workload = Workload {
        file: PathBuf::new(),
        document: 0,
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        namespace: object_meta.namespace,
        pod_meta,
        pod_spec,
        object_pointer: String::new(),
        spec_pointer: match shape {
            Shape::Pod => "/spec",
            Shape::PodTemplate => "/template/spec",
            Shape::CronJob => "/spec/jobTemplate/spec/template/spec",
            _ => "/spec/template/spec",
        }
        .to_string(),
        positions: Default::default(),
    };
    Ok((workload, warnings))
}
