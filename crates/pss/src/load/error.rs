//! Per-document load problems, rendered into [`super::LoadError`] messages.

/// What can go wrong with one document.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DocumentError {
    #[error("{0}")]
    Yaml(#[from] super::yaml11::YamlError),
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
    #[error("{kind} {name:?} has more than {repairs} fields that do not match its schema; fix the object (kubectl would refuse it)")]
    TooBroken {
        kind: String,
        name: String,
        repairs: usize,
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
    #[error("{0} nests `List` objects too deeply (more than {max} levels)", max = super::kinds::MAX_LIST_DEPTH)]
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
    pub(crate) fn message(&self) -> String {
        match self {
            DocumentError::ListItem { index, source } => {
                format!("items[{index}]: {}", source.message())
            }
            DocumentError::Schema { source, .. } => {
                let source = source.to_string();
                format!("{self}: {source}{}", yaml11_hint(&source))
            }
            other => other.to_string(),
        }
    }
}

/// Why a plain scalar may not be the type the schema expects: YAML 1.1 as kubectl reads it.
pub(crate) fn yaml11_hint(message: &str) -> &'static str {
    let typed =
        message.contains("invalid type: boolean") || message.contains("invalid type: integer");
    if message.contains("invalid type: string") && message.contains("expected a boolean") {
        " (quoted, a value is text: write true or false without quotes)"
    } else if typed && message.contains("expected a string") {
        " (to kubectl, unquoted yes/no/on/off/y/n are booleans and 0-led numbers octal \
         integers, as YAML 1.1 reads them: quote the value)"
    } else {
        ""
    }
}
