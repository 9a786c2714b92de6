//! Findings: what a rule reports about one subject of one workload.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How bad a finding is: the one scale of every watertight report (`watertight-report`).
pub use watertight_report::Severity;

/// One finding. `rule` is a stable id (`shared-host-namespace`, `privileged`, `pss/<check>` ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The id of the rule that reported it; the key of its catalog entry and SARIF `ruleId`.
    pub rule: String,
    /// How bad this occurrence is (a rule may report below its catalog severity); `--fail-on`
    /// compares it with the threshold.
    pub severity: Severity,
    /// What is wrong, in one sentence for people.
    pub message: String,
    /// Where the workload was read from: `host:<node>` or a file path.
    pub source: String,
    /// What the finding is about, for people: `<workload>` or `<workload> container <name>`.
    pub subject: String,
    /// The workload id (cgroup path, `namespace/Kind/name`, container name, bundle path).
    pub workload: String,
    /// The container's name, for subjects that are containers of a configuration (no pid);
    /// `None` for live processes, whose workload id already locates them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The first host pid this finding applies to (live sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Every host pid of the workload this finding applies to (live sources).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pids: Vec<u32>,
    /// For `shared-host-namespace` and `namespace-unknown`: the namespace kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Paths the finding is about (mount targets, host paths, devices).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// For files: the file and the 0-based YAML document index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The 0-based document index within `file` (multi-document YAML); `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    /// The field of the document the finding is about, as a JSON pointer
    /// (`/spec/template/spec/containers/0/securityContext/privileged`). A finding about a field
    /// that is not there (no seccomp profile) names the nearest one that is (the container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The 1-based line of `field` in `file` (where its key, or its list item, starts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The 1-based column of `field` on `line`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl Finding {
    /// What the finding is about, as one path: the workload id, then `/container` for a
    /// container's finding (SARIF's fully qualified logical name, a baseline entry's subject).
    pub fn qualified_subject(&self) -> String {
        match &self.container {
            Some(c) => format!("{}/{c}", self.workload),
            None => self.workload.clone(),
        }
    }

    /// The key under which findings of one workload are merged across its processes.
    pub(crate) fn merge_key(&self) -> (String, Option<String>, String, Vec<String>) {
        (
            self.rule.clone(),
            self.namespace.clone(),
            self.message.clone(),
            self.paths.clone(),
        )
    }
}
