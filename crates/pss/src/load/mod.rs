//! Loading manifests: files or directory trees of YAML/JSON, multi-document
//! streams, `kind: List` wrappers and every built-in workload kind, down to the pod
//! metadata and spec that Pod Security admission checks.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::Value;

mod error;
mod kinds;
mod probe;
mod yaml11;

pub use yaml11::Positions;

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
    /// The JSON pointer of the object within the document: `""`, or `/items/<i>` inside a
    /// `List`.
    pub object_pointer: String,
    /// The JSON pointer of the pod spec within the document: `/spec` for a Pod,
    /// `/spec/template/spec` for a Deployment, `/items/<i>/...` inside a `List`.
    pub spec_pointer: String,
    /// Where the document's fields were written (shared by the workloads of one document;
    /// empty for JSON files).
    #[serde(skip)]
    pub positions: Arc<Positions>,
}

impl Workload {
    /// The 1-based line the object starts on (its first key, or its `List` item's `-`), when
    /// its file was YAML.
    pub fn line(&self) -> Option<usize> {
        self.positions
            .locate(&self.object_pointer)
            .filter(|(at, ..)| *at == self.object_pointer)
            .map(|(_, line, _)| line)
    }

    /// The JSON pointer of the pod's metadata (a template's metadata for workloads).
    pub fn meta_pointer(&self) -> String {
        let parent = self
            .spec_pointer
            .strip_suffix("/spec")
            .unwrap_or(&self.spec_pointer);
        format!("{parent}/metadata")
    }
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
    /// Files and documents that could not be loaded; the rest still load. Each is an object
    /// (or a file that looks like manifests) that could not be evaluated.
    pub errors: Vec<LoadError>,
    /// Problems that did not stop an object's evaluation: unknown fields (typos), fields of
    /// the wrong type that no check reads, required fields missing, duplicate keys.
    pub warnings: Vec<LoadError>,
    /// Objects that are not workloads (Service, ConfigMap, ...).
    pub skipped: usize,
    /// Files that hold no Kubernetes object (no document with a `kind`): CI workflows,
    /// Chart.yaml, values.yaml, compose files, package.json, files that are not YAML at all.
    pub not_kubernetes: Vec<PathBuf>,
    /// Go templates (`{{ ... }}`) that do not parse as manifests: Helm charts' `templates/`.
    /// Render them first (`helm template`).
    pub templates: Vec<PathBuf>,
}

impl LoadReport {
    fn extend(&mut self, other: LoadReport) {
        self.workloads.extend(other.workloads);
        self.errors.extend(other.errors);
        self.warnings.extend(other.warnings);
        self.skipped += other.skipped;
        self.not_kubernetes.extend(other.not_kubernetes);
        self.templates.extend(other.templates);
    }
}

/// Loads a file, or every `*.yaml`, `*.yml` and `*.json` file under a directory
/// (recursively, in name order). Problems are collected per file and per document;
/// everything else still loads.
pub fn load_path(path: &Path) -> LoadReport {
    load_path_excluding(path, &|_| false)
}

/// [`load_path`], leaving out every file and directory for which `exclude` is true. It is
/// given the path below `path` (for `path` itself, a file: its own name); an excluded
/// directory is not entered.
pub fn load_path_excluding(path: &Path, exclude: &dyn Fn(&Path) -> bool) -> LoadReport {
    let mut report = LoadReport::default();
    match fs::metadata(path) {
        Err(e) => report.errors.push(LoadError {
            file: path.to_path_buf(),
            document: None,
            message: format!("cannot read: {e}; pass an existing file or directory"),
        }),
        Ok(meta) if meta.is_dir() => {
            let walk = walkdir::WalkDir::new(path)
                .follow_links(true)
                .sort_by_file_name()
                .into_iter()
                .filter_entry(|e| {
                    e.depth() == 0 || !exclude(e.path().strip_prefix(path).unwrap_or(e.path()))
                });
            for entry in walk {
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
        Ok(_) => {
            let name = path.file_name().map_or(path, Path::new);
            if !exclude(name) && !exclude(path) {
                load_file(path, &mut report);
            }
        }
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

/// Whether text that failed to parse was meant as manifests: it names both fields every
/// Kubernetes object has. Anything else that fails to parse is some other file.
fn mentions_kubernetes(text: &[u8]) -> bool {
    let has = |needle: &[u8]| text.windows(needle.len()).any(|w| w == needle);
    has(b"apiVersion") && has(b"kind")
}

fn is_template(text: &str) -> bool {
    text.contains("{{") && text.contains("}}")
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
    match String::from_utf8(bytes) {
        Ok(text) => report.extend(load_text(&text, path)),
        Err(e) if mentions_kubernetes(e.as_bytes()) => report.errors.push(LoadError {
            file: path.to_path_buf(),
            document: None,
            message: format!(
                "not UTF-8 text (invalid byte at offset {}); save manifests as UTF-8",
                e.utf8_error().valid_up_to()
            ),
        }),
        Err(_) => report.not_kubernetes.push(path.to_path_buf()),
    }
}

/// Loads one file's text (a file read elsewhere, or standard input, labelled `file`) as
/// [`load_path`] loads a file: a file holding no Kubernetes object goes to
/// [`LoadReport::not_kubernetes`], an unrendered template to [`LoadReport::templates`],
/// instead of an error per document.
pub fn load_text(text: &str, file: &Path) -> LoadReport {
    let parsed = parse_file(text, file);
    let mut report = LoadReport::default();
    if parsed.objects == 0 {
        if parsed.unparsed && is_template(text) {
            report.templates.push(file.to_path_buf());
        } else if parsed.unparsed && mentions_kubernetes(text.as_bytes()) {
            report.errors = parsed.errors;
        } else {
            report.not_kubernetes.push(file.to_path_buf());
        }
        return report;
    }
    if !parsed.errors.is_empty() && is_template(text) {
        report.templates.push(file.to_path_buf());
        return report;
    }
    report.workloads = parsed.workloads;
    report.errors = parsed.errors;
    report.warnings = parsed.warnings;
    report.skipped = parsed.skipped;
    report
}

/// Parses one file's text: a YAML stream (any number of `---` documents) or, for
/// `*.json` paths, one JSON value. `file` is only used to label results. YAML is read as
/// kubectl reads it (YAML 1.1 scalars: `0400` is 256, `yes` is true; see `yaml11.rs`). Every
/// document that is not a workload object is an error here; [`load_text`] tells other files
/// apart.
pub fn parse_documents(text: &str, file: &Path) -> (Vec<Workload>, Vec<LoadError>, usize) {
    let parsed = parse_file(text, file);
    (parsed.workloads, parsed.errors, parsed.skipped)
}

/// One file, parsed.
struct Parsed {
    workloads: Vec<Workload>,
    errors: Vec<LoadError>,
    warnings: Vec<LoadError>,
    skipped: usize,
    /// Documents that are mappings with a string `kind`: meant as Kubernetes objects.
    objects: usize,
    /// The text stopped parsing (YAML or JSON syntax).
    unparsed: bool,
}

fn parse_file(text: &str, file: &Path) -> Parsed {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Collector {
        file,
        workloads: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
        skipped: 0,
        objects: 0,
        line: 1,
        positions: Arc::default(),
    };
    let mut unparsed = false;
    if is_json(file) {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => out.document(0, value),
            Err(e) => {
                unparsed = true;
                out.error(0, DocumentError::Json(e));
            }
        }
    } else {
        let (documents, error) = yaml11::read_stream(text);
        let count = documents.len();
        for (index, document) in documents.into_iter().enumerate() {
            for (key, line) in &document.duplicates {
                out.warning(
                    index,
                    format!(
                        "key `{key}` appears twice in one mapping (the second at line {line}); \
                         the later value wins, as kubectl reads it: remove one"
                    ),
                );
            }
            out.line = document.line;
            out.positions = Arc::new(document.positions);
            out.document(index, document.value);
        }
        if let Some(e) = error {
            unparsed = true;
            // After a syntax error the stream cannot be resynchronised.
            out.error(count, DocumentError::Yaml(e));
        }
    }
    Parsed {
        workloads: out.workloads,
        errors: out.errors,
        warnings: out.warnings,
        skipped: out.skipped,
        objects: out.objects,
        unparsed,
    }
}

struct Collector<'a> {
    file: &'a Path,
    workloads: Vec<Workload>,
    errors: Vec<LoadError>,
    warnings: Vec<LoadError>,
    skipped: usize,
    objects: usize,
    /// The line the current document starts on (named in its messages past line 1).
    line: usize,
    /// Where the current document's fields were written.
    positions: Arc<Positions>,
}

impl Collector<'_> {
    fn error(&mut self, document: usize, error: DocumentError) {
        let mut message = error.message();
        if self.line > 1 && !matches!(error, DocumentError::Yaml(_)) {
            message.push_str(&format!(" (the document starts at line {})", self.line));
        }
        self.errors.push(LoadError {
            file: self.file.to_path_buf(),
            document: Some(document),
            message,
        });
    }

    fn warning(&mut self, document: usize, message: String) {
        self.warnings.push(LoadError {
            file: self.file.to_path_buf(),
            document: Some(document),
            message,
        });
    }

    fn document(&mut self, document: usize, value: Value) {
        if value.is_null() {
            return; // empty document, e.g. a trailing `---`
        }
        if value.get("kind").is_some_and(Value::is_string) {
            self.objects += 1;
        }
        let mut found = Vec::new();
        let mut skipped = 0;
        if let Err(e) = collect_objects(value, 0, "", &mut found, &mut skipped) {
            self.error(document, e);
        }
        self.skipped += skipped;
        for object in found {
            match object {
                Ok((w, warnings)) => {
                    for message in warnings {
                        self.warning(document, message);
                    }
                    self.workloads.push(Workload {
                        file: self.file.to_path_buf(),
                        document,
                        positions: Arc::clone(&self.positions),
                        ..w
                    });
                }
                Err(e) => self.error(document, e),
            }
        }
    }
}
