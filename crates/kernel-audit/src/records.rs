//! Reading the kernel CNA's CVE JSON 5.1 records: one file into a [`CveRecord`], and a whole
//! `cve/published` tree in parallel.
//!
//! Only the fields the audit needs are deserialized; serde skips the rest (descriptions, CVSS
//! scenarios, references, `cpeApplicability`) without allocating, and strings without escapes are
//! borrowed from the file buffer.

use crate::cve::{AffectRule, BranchFix, CveRecord, Cvss, Severity, VersionRange};
use crate::error::KernelAuditError;
use crate::version::KernelVersion;
use rayon::prelude::*;
use serde::Deserialize;
use std::borrow::Cow;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct RawRecord<'a> {
    #[serde(rename = "cveMetadata", borrow)]
    metadata: RawMetadata<'a>,
    #[serde(borrow)]
    containers: Option<RawContainers<'a>>,
}

#[derive(Deserialize)]
struct RawMetadata<'a> {
    #[serde(rename = "cveId", borrow)]
    cve_id: Cow<'a, str>,
    #[serde(borrow, default)]
    state: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawContainers<'a> {
    #[serde(borrow)]
    cna: RawCna<'a>,
}

#[derive(Deserialize)]
struct RawCna<'a> {
    #[serde(borrow, default)]
    title: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    metrics: Vec<RawMetric<'a>>,
    #[serde(borrow, default)]
    affected: Vec<RawAffected<'a>>,
}

#[derive(Deserialize)]
struct RawMetric<'a> {
    #[serde(rename = "cvssV3_1", borrow, default)]
    cvss_v3_1: Option<RawCvss<'a>>,
}

#[derive(Deserialize)]
struct RawCvss<'a> {
    #[serde(rename = "baseScore")]
    base_score: f32,
    #[serde(rename = "baseSeverity", borrow)]
    base_severity: Cow<'a, str>,
    #[serde(rename = "vectorString", borrow, default)]
    vector: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawAffected<'a> {
    #[serde(rename = "defaultStatus", borrow, default)]
    default_status: Option<Cow<'a, str>>,
    #[serde(rename = "programFiles", borrow, default)]
    program_files: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    versions: Vec<RawVersion<'a>>,
}

#[derive(Deserialize)]
struct RawVersion<'a> {
    #[serde(borrow)]
    version: Cow<'a, str>,
    #[serde(rename = "lessThan", borrow, default)]
    less_than: Option<Cow<'a, str>>,
    #[serde(rename = "lessThanOrEqual", borrow, default)]
    less_than_or_equal: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(rename = "versionType", borrow, default)]
    version_type: Option<Cow<'a, str>>,
}

/// What one record file held.
#[derive(Debug)]
pub enum ParsedRecord {
    /// A published CVE.
    Published(CveRecord),
    /// A record in another state (REJECTED, RESERVED): not a CVE to match.
    NotPublished {
        /// The CVE id.
        id: String,
        /// The record's state, e.g. REJECTED.
        state: String,
    },
}

fn version(text: &str, id: &str) -> Result<KernelVersion, String> {
    KernelVersion::parse(text).map_err(|_| format!("{id}: `{text}` is not a kernel version"))
}

/// Parses one CVE JSON 5.1 record. The error is a short reason (the caller names the file).
pub fn parse_record(bytes: &[u8]) -> Result<ParsedRecord, String> {
    let raw: RawRecord = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    from_raw(raw)
}

fn from_raw(raw: RawRecord<'_>) -> Result<ParsedRecord, String> {
    let id = raw.metadata.cve_id.into_owned();
    let state = raw.metadata.state.as_deref().unwrap_or("PUBLISHED");
    if !state.eq_ignore_ascii_case("PUBLISHED") {
        return Ok(ParsedRecord::NotPublished {
            id,
            state: state.to_string(),
        });
    }
    let cna = raw
        .containers
        .ok_or_else(|| format!("{id}: published record without containers.cna"))?
        .cna;

    let cvss = cna
        .metrics
        .iter()
        .find_map(|m| m.cvss_v3_1.as_ref())
        .map(|c| -> Result<Cvss, String> {
            Ok(Cvss {
                score: c.base_score,
                severity: Severity::from_cvss(&c.base_severity).ok_or_else(|| {
                    format!("{id}: unknown CVSS baseSeverity `{}`", c.base_severity)
                })?,
                vector: c.vector.as_deref().unwrap_or_default().to_string(),
            })
        })
        .transpose()?;

    let mut rule = AffectRule::default();
    let mut program_files: Vec<String> = Vec::new();
    for entry in &cna.affected {
        for f in &entry.program_files {
            if !program_files.iter().any(|p| p == f) {
                program_files.push(f.to_string());
            }
        }
        let defaults_affected = entry.default_status.as_deref() == Some("affected");
        rule.default_affected |= defaults_affected;
        for stmt in &entry.versions {
            let kind = stmt.version_type.as_deref();
            // Git ranges need a kernel tree to decide; the semver statements carry the same facts
            // as release numbers.
            if kind == Some("git") {
                continue;
            }
            match (stmt.status.as_ref(), kind) {
                ("affected", Some("semver")) => {
                    if let Some(high) = &stmt.less_than {
                        rule.affected_ranges.push(VersionRange {
                            low: version(&stmt.version, &id)?,
                            high: version(high, &id)?,
                        });
                    }
                }
                // `{"version": "6.5", "status": "affected"}`: the mainline release that
                // introduced the bug (the unaffected range below it says the same).
                ("affected", None) => rule.introduced.push(version(&stmt.version, &id)?),
                ("unaffected", Some("semver")) => {
                    if let Some(high) = &stmt.less_than {
                        rule.unaffected_ranges.push(VersionRange {
                            low: version(&stmt.version, &id)?,
                            high: version(high, &id)?,
                        });
                    } else if let Some(branch) = stmt
                        .less_than_or_equal
                        .as_deref()
                        .and_then(|l| l.strip_suffix(".*"))
                    {
                        rule.branch_fixes.push(BranchFix {
                            branch: version(branch, &id)?,
                            fixed: version(&stmt.version, &id)?,
                        });
                    }
                }
                ("unaffected", Some("original_commit_for_fix")) => {
                    rule.mainline_fixes.push(version(&stmt.version, &id)?)
                }
                // Other shapes are not written by the kernel CNA; ignoring them keeps the
                // decision to the statements whose meaning is documented.
                _ => {}
            }
        }
    }

    Ok(ParsedRecord::Published(CveRecord {
        id,
        title: cna.title.map(Cow::into_owned).unwrap_or_default(),
        cvss,
        program_files,
        rule,
    }))
}

/// A record file that could not be used, and why.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SkippedFile {
    /// The record file.
    pub path: PathBuf,
    /// Why it could not be used.
    pub reason: String,
}

/// The outcome of loading a records tree.
#[derive(Debug)]
pub struct LoadedRecords {
    /// Published CVEs, sorted by id.
    pub records: Vec<CveRecord>,
    /// Files that were not valid records (read errors, malformed JSON, bad versions).
    pub skipped: Vec<SkippedFile>,
    /// Records in a state other than PUBLISHED.
    pub not_published: usize,
}

/// Collects `*.json` files under `dir` (the `cve/published` directory, one year, or a
/// checkout's `cve` directory), descending a few levels.
pub fn record_files(dir: &Path) -> Result<Vec<PathBuf>, KernelAuditError> {
    let mut files = Vec::new();
    collect(dir, 0, &mut files).map_err(|source| KernelAuditError::RecordsDir {
        path: dir.to_path_buf(),
        source,
    })?;
    files.sort();
    Ok(files)
}

fn collect(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() && depth < 3 {
            // Best effort below the top: an unreadable year directory must not hide the rest.
            if let Err(e) = collect(&path, depth + 1, out) {
                if depth == 0 && out.is_empty() {
                    return Err(e);
                }
            }
        } else if (kind.is_file() || kind.is_symlink())
            && path.extension().is_some_and(|e| e == "json")
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads every record under `dir` in parallel. Files that fail are skipped and listed; the load
/// fails only when there is nothing usable.
pub fn load_records(dir: &Path) -> Result<LoadedRecords, KernelAuditError> {
    let files = record_files(dir)?;
    if files.is_empty() {
        return Err(KernelAuditError::NoRecords {
            path: dir.to_path_buf(),
        });
    }
    let parsed: Vec<Result<ParsedRecord, SkippedFile>> = files
        .par_iter()
        .map(|path| {
            let skipped = |reason: String| SkippedFile {
                path: path.clone(),
                reason,
            };
            let bytes = std::fs::read(path).map_err(|e| skipped(e.to_string()))?;
            parse_record(&bytes).map_err(skipped)
        })
        .collect();

    let mut records = Vec::with_capacity(parsed.len());
    let mut skipped = Vec::new();
    let mut not_published = 0;
    for p in parsed {
        match p {
            Ok(ParsedRecord::Published(r)) => records.push(r),
            Ok(ParsedRecord::NotPublished { .. }) => not_published += 1,
            Err(s) => skipped.push(s),
        }
    }
    if records.is_empty() && !skipped.is_empty() {
        return Err(KernelAuditError::NoUsableRecords {
            path: dir.to_path_buf(),
            count: skipped.len(),
            first: format!("{}: {}", skipped[0].path.display(), skipped[0].reason),
        });
    }
    if records.is_empty() && not_published == 0 {
        return Err(KernelAuditError::NoRecords {
            path: dir.to_path_buf(),
        });
    }
    records.par_sort_unstable_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    Ok(LoadedRecords {
        records,
        skipped,
        not_published,
    })
}
