//! Loading manifests: files or directory trees of YAML/JSON, multi-document
//! streams, `kind: List` wrappers and every built-in workload kind, down to the pod
//! metadata and spec that Pod Security admission checks.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    Pod, PodSpec, PodTemplate, PodTemplateSpec, ReplicationController,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::defaults::apply_pod_defaults;

/// A pod, or a workload's pod template, ready for [`crate::evaluate`].
#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    pub file: PathBuf,
    /// 0-based index of the YAML document in the file (items of a `List` share it).
    pub document: usize,
    pub api_version: String,
    pub kind: String,
    /// The object's `metadata.name` (or `generateName`), empty if neither is set.
    pub name: String,
    pub namespace: Option<String>,
    /// The pod's metadata; for workloads the pod template's metadata.
    pub pod_meta: ObjectMeta,
    pub pod_spec: PodSpec,
}

/// A file or document that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadError {
    pub file: PathBuf,
    /// 0-based document index; `None` when the whole file failed.
    pub document: Option<usize>,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, always: messages from parsers may carry newlines.
        let message = self.message.replace(['\n', '\r'], " ");
        match self.document {
            Some(doc) => write!(f, "{}: document {doc}: {message}", self.file.display()),
            None => write!(f, "{}: {message}", self.file.display()),
        }
    }
}

impl std::error::Error for LoadError {}

/// Everything found under a path.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    pub workloads: Vec<Workload>,
    pub errors: Vec<LoadError>,
    /// Objects that are not workloads (Service, ConfigMap, ...).
    pub skipped: usize,
}

/// What can go wrong with one document.
#[derive(Debug, thiserror::Error)]
enum DocumentError {
    #[error("invalid YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "document is {0}, not a Kubernetes object; expected a mapping with apiVersion and kind"
    )]
    NotAnObject(&'static str),
    #[error("object has no `{0}` string field; every Kubernetes object needs apiVersion and kind")]
    MissingField(&'static str),
    #[error("{kind} {name:?} does not match the {api_version} schema at {path}")]
    Schema {
        kind: String,
        name: String,
        api_version: String,
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{kind} {name:?} has no pod spec: set {field}")]
    NoPodSpec {
        kind: String,
        name: String,
        field: &'static str,
    },
    #[error("{kind} {name:?} uses apiVersion {api_version}, which this loader does not read; use {supported}")]
    UnsupportedApiVersion {
        kind: String,
        name: String,
        api_version: String,
        supported: String,
    },
    #[error("{kind} {name:?} ({api_version}) has a pod template but is not a built-in workload kind; render it to a Pod, Deployment, DaemonSet, StatefulSet, ReplicaSet, ReplicationController, Job, CronJob or PodTemplate first")]
    UnknownWorkload {
        kind: String,
        name: String,
        api_version: String,
    },
    #[error("{0} nests `List` objects too deeply (more than {MAX_LIST_DEPTH} levels)")]
    ListTooDeep(String),
    #[error("items[{index}]: {source}")]
    ListItem {
        index: usize,
        #[source]
        source: Box<DocumentError>,
    },
}

impl DocumentError {
    /// The full message including nested list-item context.
    fn message(&self) -> String {
        match self {
            DocumentError::ListItem { index, source } => {
                format!("items[{index}]: {}", source.message())
            }
            DocumentError::Schema { source, .. } => format!("{self}: {source}"),
            other => other.to_string(),
        }
    }
}

const MAX_LIST_DEPTH: usize = 8;

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

/// Loads a file, or every `*.yaml`, `*.yml` and `*.json` file under a directory
/// (recursively, in name order). Problems are collected per file and per document;
/// everything else still loads.
pub fn load_path(path: &Path) -> LoadReport {
    let mut report = LoadReport::default();
    match fs::metadata(path) {
        Err(e) => report.errors.push(LoadError {
            file: path.to_path_buf(),
            document: None,
            message: format!("cannot read: {e}; pass an existing file or directory"),
        }),
        Ok(meta) if meta.is_dir() => {
            for entry in walkdir::WalkDir::new(path)
                .follow_links(true)
                .sort_by_file_name()
            {
                match entry {
                    Ok(entry) => {
                        if entry.file_type().is_file() && is_manifest(entry.path()) {
                            load_file(entry.path(), &mut report);
                        }
                    }
                    Err(e) => report.errors.push(LoadError {
                        file: e.path().unwrap_or(path).to_path_buf(),
                        document: None,
                        message: format!("cannot read: {e}"),
                    }),
                }
            }
        }
        Ok(_) => load_file(path, &mut report),
    }
    report
}

fn is_manifest(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["yaml", "yml", "json"]
            .iter()
            .any(|m| e.eq_ignore_ascii_case(m))
    })
}

fn is_json(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

fn load_file(path: &Path, report: &mut LoadReport) {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            report.errors.push(LoadError {
                file: path.to_path_buf(),
                document: None,
                message: format!("cannot read: {e}"),
            });
            return;
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            report.errors.push(LoadError {
                file: path.to_path_buf(),
                document: None,
                message: format!(
                    "not UTF-8 text (invalid byte at offset {}); save manifests as UTF-8",
                    e.utf8_error().valid_up_to()
                ),
            });
            return;
        }
    };
    let (workloads, errors, skipped) = parse_documents(&text, path);
    report.workloads.extend(workloads);
    report.errors.extend(errors);
    report.skipped += skipped;
}

/// Parses one file's text: a YAML stream (any number of `---` documents) or, for
/// `*.json` paths, one JSON value. `file` is only used to label results.
pub fn parse_documents(text: &str, file: &Path) -> (Vec<Workload>, Vec<LoadError>, usize) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Collector {
        file,
        workloads: Vec::new(),
        errors: Vec::new(),
        skipped: 0,
    };
    if is_json(file) {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => out.document(0, value),
            Err(e) => out.error(0, DocumentError::Json(e)),
        }
    } else {
        // Merge keys need the YAML tree; most manifests have none.
        let may_merge = text.contains("<<");
        for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
            match yaml_to_json(document, may_merge) {
                Ok(value) => out.document(index, value),
                Err(e) => {
                    let syntax = matches!(e, DocumentError::Yaml(_));
                    out.error(index, e);
                    // After a syntax error the stream cannot be resynchronised.
                    if syntax {
                        break;
                    }
                }
            }
        }
    }
    (out.workloads, out.errors, out.skipped)
}

fn yaml_to_json(
    document: serde_norway::Deserializer<'_>,
    may_merge: bool,
) -> Result<Value, DocumentError> {
    if !may_merge {
        // Fast path: straight into JSON values, no intermediate YAML tree.
        return Ok(Value::deserialize(document)?);
    }
    let mut yaml = serde_norway::Value::deserialize(document)?;
    // `<<: *anchor` merge keys, which Kubernetes' YAML reader also honours.
    yaml.apply_merge()?;
    Ok(Value::deserialize(yaml)?)
}

struct Collector<'a> {
    file: &'a Path,
    workloads: Vec<Workload>,
    errors: Vec<LoadError>,
    skipped: usize,
}

impl Collector<'_> {
    fn error(&mut self, document: usize, error: DocumentError) {
        self.errors.push(LoadError {
            file: self.file.to_path_buf(),
            document: Some(document),
            message: error.message(),
        });
    }

    fn document(&mut self, document: usize, value: Value) {
        if value.is_null() {
            return; // empty document, e.g. a trailing `---`
        }
        let mut found = Vec::new();
        let mut skipped = 0;
        match collect_objects(value, 0, &mut found, &mut skipped) {
            Ok(()) => {}
            Err(e) => self.error(document, e),
        }
        self.skipped += skipped;
        for object in found {
            match object {
                Ok(w) => self.workloads.push(Workload {
                    file: self.file.to_path_buf(),
                    document,
                    ..w
                }),
                Err(e) => self.error(document, e),
            }
        }
    }
}

/// Walks a document (and nested `List`s), converting each workload.
fn collect_objects(
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
