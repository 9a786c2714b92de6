//! From one decoded document to workloads: `List` unwrapping, dispatch on
//! apiVersion/kind, typed decoding with k8s-openapi, and pod-template extraction.

use std::path::PathBuf;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodTemplate, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::DocumentError;
use super::Workload;
use crate::defaults::apply_pod_defaults;

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
    found: &mut Vec<Result<Workload, DocumentError>>,
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
            let result = collect_objects(item, depth + 1, &mut nested, skipped);
            let wrap = |source| DocumentError::ListItem {
                index,
                source: Box::new(source),
            };
            found.extend(nested.into_iter().map(|r| r.map_err(wrap)));
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
            found.push(convert(value, *shape, current, &kind, &api_version, &name));
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

fn typed<T: DeserializeOwned>(
    value: Value,
    kind: &str,
    name: &str,
    api_version: &str,
) -> Result<T, DocumentError> {
    // Path tracking costs; only pay for it to explain a failure.
    if let Ok(typed) = T::deserialize(&value) {
        return Ok(typed);
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        DocumentError::Schema {
            kind: kind.to_string(),
            name: name.to_string(),
            api_version: api_version.to_string(),
            path,
            source: e.into_inner(),
        }
    })
}

fn convert(
    mut value: Value,
    shape: Shape,
    current_api_version: &str,
    kind: &str,
    api_version: &str,
    name: &str,
) -> Result<Workload, DocumentError> {
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
    let (object_meta, pod_meta, pod_spec) = match shape {
        Shape::Pod => {
            let pod: Pod = typed(value, kind, name, api_version)?;
            let mut spec = pod.spec.ok_or_else(|| no_spec("spec"))?;
            apply_pod_defaults(&mut spec);
            (pod.metadata.clone(), pod.metadata, spec)
        }
        Shape::PodTemplate => {
            let t: PodTemplate = typed(value, kind, name, api_version)?;
            from_template(t.metadata, t.template, "template.spec")?
        }
        Shape::ReplicationController => {
            let rc: ReplicationController = typed(value, kind, name, api_version)?;
            from_template(
                rc.metadata,
                rc.spec.and_then(|s| s.template),
                "spec.template.spec",
            )?
        }
        Shape::Deployment => {
            let d: Deployment = typed(value, kind, name, api_version)?;
            from_template(d.metadata, Some(d.spec.template), "spec.template.spec")?
        }
        Shape::ReplicaSet => {
            let r: ReplicaSet = typed(value, kind, name, api_version)?;
            from_template(r.metadata, r.spec.template, "spec.template.spec")?
        }
        Shape::DaemonSet => {
            let d: DaemonSet = typed(value, kind, name, api_version)?;
            from_template(d.metadata, Some(d.spec.template), "spec.template.spec")?
        }
        Shape::StatefulSet => {
            let s: StatefulSet = typed(value, kind, name, api_version)?;
            from_template(s.metadata, Some(s.spec.template), "spec.template.spec")?
        }
        Shape::Job => {
            let j: Job = typed(value, kind, name, api_version)?;
            from_template(j.metadata, j.spec.map(|s| s.template), "spec.template.spec")?
        }
        Shape::CronJob => {
            let c: CronJob = typed(value, kind, name, api_version)?;
            let template = c.spec.job_template.spec.map(|s| s.template);
            from_template(c.metadata, template, "spec.jobTemplate.spec.template.spec")?
        }
    };
    Ok(Workload {
        file: PathBuf::new(),
        document: 0,
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        namespace: object_meta.namespace,
        pod_meta,
        pod_spec,
    })
}
