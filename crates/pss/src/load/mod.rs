//! Loading manifests: files or directory trees of YAML/JSON, multi-document
//! streams, `kind: List` wrappers and every built-in workload kind, down to the pod
//! metadata and spec that Pod Security admission checks.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod error;
mod kinds;

use error::DocumentError;
use kinds::collect_objects;

/// A pod, or a workload's pod template, ready for [`crate::evaluate`].
#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    /// The file the object came from.
    pub file: PathBuf,
    /// 0-based index of the YAML document in the file (items of a `List` share it).
    pub document: usize,
    /// The object's `apiVersion`.
    pub api_version: String,
    /// The object's `kind` (Pod, Deployment, CronJob, ...).
    pub kind: String,
    /// The object's `metadata.name` (or `generateName`), empty if neither is set.
    pub name: String,
    /// The object's `metadata.namespace`, when set.
    pub namespace: Option<String>,
    /// The pod's metadata; for workloads the pod template's metadata.
    pub pod_meta: ObjectMeta,
    /// The pod's spec; for workloads the pod template's spec.
    pub pod_spec: PodSpec,
}

/// A file or document that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadError {
    /// The file that failed.
    pub file: PathBuf,
    /// 0-based document index; `None` when the whole file failed.
    pub document: Option<usize>,
    /// What went wrong, from the parser or the loader.
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
    /// The pods and pod templates found, in file and document order.
    pub workloads: Vec<Workload>,
    /// Files and documents that could not be loaded; the rest still load.
    pub errors: Vec<LoadError>,
    /// Objects that are not workloads (Service, ConfigMap, ...).
    pub skipped: usize,
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
        if let Err(e) = collect_objects(value, 0, &mut found, &mut skipped) {
            self.error(document, e);
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
