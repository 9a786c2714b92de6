//! The set of published kernel CVEs, loaded from the CNA's records or from a shipped index, and
//! the per-version questions asked of it.

use crate::cve::CveRecord;
use crate::error::KernelAuditError;
use crate::index::{self, IndexBody};
use crate::records::{self, SkippedFile};
use crate::version::KernelVersion;
use serde::Serialize;
use std::path::Path;

/// Where the CVEs came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SourceInfo {
    /// `records` or `index`.
    pub kind: &'static str,
    /// The directory or index file read.
    pub path: String,
    /// How many published CVEs were loaded.
    pub records: usize,
    /// Record files that could not be used (only the count survives in an index).
    pub skipped_count: u64,
    /// The record files that could not be used, with why (records only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedFile>,
    /// For an index: the records directory it was built from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub built_from: Option<String>,
}

/// The published kernel CVEs, from records or from an index, and where they came from.
#[derive(Debug)]
pub struct CveDatabase {
    /// Published CVEs sorted by id.
    pub records: Vec<CveRecord>,
    /// Where they came from.
    pub source: SourceInfo,
}

impl CveDatabase {
    /// Loads a `cve/published` directory of CVE JSON 5.1 records.
    pub fn from_records_dir(dir: &Path) -> Result<Self, KernelAuditError> {
        let loaded = records::load_records(dir)?;
        Ok(Self {
            source: SourceInfo {
                kind: "records",
                path: dir.display().to_string(),
                records: loaded.records.len(),
                skipped_count: loaded.skipped.len() as u64,
                skipped: loaded.skipped,
                built_from: None,
            },
            records: loaded.records,
        })
    }

    /// Loads an index written by [`CveDatabase::write_index`].
    pub fn from_index(path: &Path) -> Result<Self, KernelAuditError> {
        let body = index::read(path)?;
        Ok(Self {
            source: SourceInfo {
                kind: "index",
                path: path.display().to_string(),
                records: body.records.len(),
                skipped_count: body.skipped_files,
                skipped: Vec::new(),
                built_from: Some(body.built_from),
            },
            records: body.records,
        })
    }

    /// Writes the compact index; returns its size in bytes.
    pub fn write_index(&self, path: &Path) -> Result<u64, KernelAuditError> {
        index::write(path, &self.index_body())
    }

    /// The index contents for this database.
    pub fn index_body(&self) -> IndexBody {
        IndexBody {
            built_from: self
                .source
                .built_from
                .clone()
                .unwrap_or_else(|| self.source.path.clone()),
            skipped_files: self.source.skipped_count,
            records: self.records.clone(),
        }
    }

    /// The CVEs that affect upstream version `v`, in id order. Sequential on purpose: one pass
    /// over all records takes under a millisecond, less than waking a thread pool.
    pub fn affecting(&self, v: &KernelVersion) -> Vec<&CveRecord> {
        self.records
            .iter()
            .filter(|r| r.rule.is_affected(v))
            .collect()
    }

    /// How many CVEs affect upstream version `v`.
    pub fn affected_count(&self, v: &KernelVersion) -> usize {
        self.records
            .iter()
            .filter(|r| r.rule.is_affected(v))
            .count()
    }
}
