//! The jobs file: JSON Lines, one job per line, validated as a whole before anything runs. An
//! error names the file, the line and the field (`jobs.jsonl:3: steps[1].stdin: ...`).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use watertight_sandbox::profile::Isolation;

/// One job: files copied into a fresh box, then steps run in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// 0-based index of the job in the jobs file (its line among the non-blank lines).
    pub index: usize,
    /// Unique id (1-128 characters of `A-Za-z0-9._-`).
    pub id: String,
    /// Box file name -> host file (resolved against the jobs file's directory).
    pub files: BTreeMap<String, PathBuf>,
    /// The steps, run in order.
    pub steps: Vec<Step>,
    /// `run --box-size` for every step: the box as a tmpfs of this SIZE.
    pub box_size: Option<String>,
    /// `run --isolation` for every step (namespaces or gvisor).
    pub isolation: Option<Isolation>,
}

/// One step: one `watertight run` in the job's box.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Unique within the job.
    pub name: String,
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// The program's stdin (default /dev/null).
    pub stdin: Option<PathBuf>,
    /// The expected stdout: compared, AC or WA.
    pub expected: Option<PathBuf>,
    /// `run --time-limit` (CPU seconds).
    pub time_limit: Option<f64>,
    /// `run --wall-time-limit` (seconds).
    pub wall_time_limit: Option<f64>,
    /// `run --memory-limit` (SIZE).
    pub memory_limit: Option<String>,
    /// `run --output-limit` (SIZE; default 64M).
    pub output_limit: Option<String>,
}

const JOB_KEYS: &[&str] = &["id", "files", "steps", "box_size", "isolation"];

/// A tier batch can run its steps under: the VM tier has no box and no stream files yet
/// (docs/isolation-vm.md), and every batch step uses both.
pub fn batch_tier(i: Isolation) -> Result<Isolation, String> {
    match i {
        Isolation::Vm => Err(
            "\"vm\" cannot run batch steps (the VM tier has no --box or --stdin/--stdout files yet): use namespaces or gvisor".into(),
        ),
        i => Ok(i),
    }
}
const STEP_KEYS: &[&str] = &[
    "name",
    "argv",
    "stdin",
    "expected",
    "time_limit",
    "wall_time_limit",
    "memory_limit",
    "output_limit",
];

/// Reads and validates the whole jobs file; files named by jobs must exist as regular files.
pub fn load(path: &Path) -> anyhow::Result<Vec<Job>> {
    let text = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read the jobs file: {e}", path.display()))?;
    let text = String::from_utf8(text)
        .map_err(|_| anyhow::anyhow!("{}: not UTF-8 text (JSON Lines)", path.display()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parse(&text, base, &path.display().to_string(), true).map_err(anyhow::Error::msg)
}

/// Parses jobs text; `check_files` also checks that named host files are regular files.
pub fn parse(text: &str, base: &Path, name: &str, check_files: bool) -> Result<Vec<Job>, String> {
    let mut jobs = Vec::new();
    let mut ids = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |field: &str, msg: String| {
            if field.is_empty() {
                format!("{name}:{}: {msg}", n + 1)
            } else {
                format!("{name}:{}: {field}: {msg}", n + 1)
            }
        };
        let v: Value = serde_json::from_str(line)
            .map_err(|e| at("", format!("not a JSON object: {e} (one job per line)")))?;
        let job = parse_job(&v, base, check_files, jobs.len()).map_err(|(f, m)| at(&f, m))?;
        if !ids.insert(job.id.clone()) {
            return Err(at(
                "id",
                format!(
                    "{:?} is already the id of an earlier job (ids must be unique)",
                    job.id
                ),
            ));
        }
        jobs.push(job);
    }
    Ok(jobs)
}

type FieldError = (String, String);

fn object<'a>(
    v: &'a Value,
    field: &str,
    keys: &[&str],
) -> Result<&'a Map<String, Value>, FieldError> {
    let m = v
        .as_object()
        .ok_or_else(|| (field.to_string(), "must be a JSON object".to_string()))?;
    for k in m.keys() {
        if !keys.contains(&k.as_str()) {
            let f = if field.is_empty() {
                k.clone()
            } else {
                format!("{field}.{k}")
            };
            return Err((f, format!("unknown field (known: {})", keys.join(", "))));
        }
    }
    Ok(m)
}

fn string(v: &Value, field: &str) -> Result<String, FieldError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| (field.to_string(), "must be a string".to_string()))
}

fn host_file(v: &Value, field: &str, base: &Path, check: bool) -> Result<PathBuf, FieldError> {
    let s = string(v, field)?;
    if s.is_empty() {
        return Err((field.to_string(), "must not be empty".to_string()));
    }
    let p = base.join(&s);
    if check {
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err((
                    field.to_string(),
                    format!("{} is not a regular file", p.display()),
                ))
            }
            Err(e) => {
                return Err((
                    field.to_string(),
                    format!(
                        "{}: {e} (paths are relative to the jobs file's directory)",
                        p.display()
                    ),
                ))
            }
        }
    }
    Ok(p)
}

fn seconds(v: &Value, field: &str) -> Result<f64, FieldError> {
    match v.as_f64() {
        Some(s) if s.is_finite() && s > 0.0 => Ok(s),
        _ => Err((
            field.to_string(),
            "must be a positive number of seconds".to_string(),
        )),
    }
}

fn size(v: &Value, field: &str) -> Result<String, FieldError> {
    let s = match v {
        Value::Number(n) => n.to_string(),
        _ => string(v, field)?,
    };
    s.parse::<watertight_sandbox::Size>()
        .map_err(|e| (field.to_string(), format!("{e} (a SIZE such as 256M)")))?;
    Ok(s)
}

/// A SIZE that `run --box-size` takes (at least its minimum).
fn box_size(v: &Value, field: &str) -> Result<String, FieldError> {
    let s = size(v, field)?;
    check_box_size(&s).map_err(|e| (field.to_string(), e))?;
    Ok(s)
}

/// `s` (a valid SIZE) is at least `run --box-size`'s minimum.
pub fn check_box_size(s: &str) -> Result<(), String> {
    use watertight_sandbox::layers::workbox::MIN_BOX_SIZE;
    match s.parse::<watertight_sandbox::Size>() {
        Ok(n) if n.bytes() >= MIN_BOX_SIZE => Ok(()),
        Ok(_) => Err(format!("{s}: a box needs at least 64K (e.g. 16M)")),
        Err(e) => Err(format!("{e} (a SIZE such as 16M)")),
    }
}

fn parse_job(v: &Value, base: &Path, check: bool, index: usize) -> Result<Job, FieldError> {
    let m = object(v, "", JOB_KEYS)?;
    let id = string(
        m.get("id")
            .ok_or(("id".into(), "missing (every job needs a unique id)".into()))?,
        "id",
    )?;
    if id.is_empty()
        || id.len() > 128
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err((
            "id".into(),
            format!("{id:?}: 1-128 characters of A-Z a-z 0-9 . _ -"),
        ));
    }
    let mut files = BTreeMap::new();
    if let Some(f) = m.get("files") {
        let fm = f.as_object().ok_or((
            "files".to_string(),
            "must be an object {\"name in box\": \"host path\"}".to_string(),
        ))?;
        for (k, p) in fm {
            let field = format!("files.{k}");
            if k.is_empty() || k == "." || k == ".." || k.contains('/') || k.contains('\0') {
                return Err((
                    field,
                    "a box file name: no '/', not empty, '.' or '..'".into(),
                ));
            }
            files.insert(k.clone(), host_file(p, &field, base, check)?);
        }
    }
    let sv = m
        .get("steps")
        .ok_or(("steps".into(), "missing (a list of steps)".into()))?;
    let list = sv.as_array().filter(|a| !a.is_empty()).ok_or((
        "steps".to_string(),
        "must be a non-empty list of steps".to_string(),
    ))?;
    let mut steps: Vec<Step> = Vec::new();
    for (i, s) in list.iter().enumerate() {
        let p = format!("steps[{i}]");
        let sm = object(s, &p, STEP_KEYS)?;
        let f = |k: &str| format!("{p}.{k}");
        let name = string(
            sm.get("name").ok_or((f("name"), "missing".into()))?,
            &f("name"),
        )?;
        if name.is_empty() || steps.iter().any(|o| o.name == name) {
            return Err((
                f("name"),
                format!("{name:?}: must be non-empty and unique within the job"),
            ));
        }
        let argv: Vec<String> = sm
            .get("argv")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or((f("argv"), "must be a non-empty list of strings".into()))?
            .iter()
            .enumerate()
            .map(|(j, a)| string(a, &format!("{p}.argv[{j}]")))
            .collect::<Result<_, _>>()?;
        let opt = |k: &str| sm.get(k).filter(|v| !v.is_null());
        steps.push(Step {
            name,
            argv,
            stdin: opt("stdin")
                .map(|v| host_file(v, &f("stdin"), base, check))
                .transpose()?,
            expected: opt("expected")
                .map(|v| host_file(v, &f("expected"), base, check))
                .transpose()?,
            time_limit: opt("time_limit")
                .map(|v| seconds(v, &f("time_limit")))
                .transpose()?,
            wall_time_limit: opt("wall_time_limit")
                .map(|v| seconds(v, &f("wall_time_limit")))
                .transpose()?,
            memory_limit: opt("memory_limit")
                .map(|v| size(v, &f("memory_limit")))
                .transpose()?,
            output_limit: opt("output_limit")
                .map(|v| size(v, &f("output_limit")))
                .transpose()?,
        });
    }
    let box_size = m
        .get("box_size")
        .filter(|v| !v.is_null())
        .map(|v| box_size(v, "box_size"))
        .transpose()?;
    let isolation = m
        .get("isolation")
        .filter(|v| !v.is_null())
        .map(|v| {
            let s = v.as_str().ok_or_else(|| {
                (
                    "isolation".to_string(),
                    "expected a string: namespaces or gvisor".to_string(),
                )
            })?;
            let i: Isolation = s.parse().map_err(|e| ("isolation".to_string(), e))?;
            batch_tier(i).map_err(|e| ("isolation".to_string(), e))
        })
        .transpose()?;
    Ok(Job {
        index,
        id,
        files,
        steps,
        box_size,
        isolation,
    })
}

/// Whether the job at `index` belongs to shard `i` of `n`.
pub fn in_shard(index: usize, shard: Option<(usize, usize)>) -> bool {
    shard.is_none_or(|(i, n)| index % n == i)
}

/// Parses `--shard I/N` (0 <= I < N).
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s.split_once('/').ok_or("I/N, e.g. 0/4")?;
    let i: usize = i
        .trim()
        .parse()
        .map_err(|_| format!("{i:?} is not a shard index (I/N)"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("{n:?} is not a shard count (I/N)"))?;
    if n == 0 || i >= n {
        return Err(format!("{s}: needs 0 <= I < N"));
    }
    Ok((i, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: &str) -> Result<Vec<Job>, String> {
        parse(t, Path::new("/d"), "jobs.jsonl", false)
    }

    #[test]
    fn a_job_names_its_isolation_strictly() {
        use watertight_sandbox::profile::Isolation;
        let j =
            p(r#"{"id":"g","isolation":"gvisor","steps":[{"name":"t","argv":["true"]}]}"#).unwrap();
        assert_eq!(j[0].isolation, Some(Isolation::Gvisor));
        let j = p(r#"{"id":"n","steps":[{"name":"t","argv":["true"]}]}"#).unwrap();
        assert_eq!(j[0].isolation, None);
        let e = p(r#"{"id":"k","isolation":"kvm","steps":[{"name":"t","argv":["true"]}]}"#)
            .unwrap_err();
        assert!(
            e.contains("jobs.jsonl:1") && e.contains("isolation") && e.contains("gvisor"),
            "{e}"
        );
        // The VM tier exists for `run`, but not with a box and stream files, which every batch
        // step uses: refused up front rather than an XX per step.
        let e =
            p(r#"{"id":"v","isolation":"vm","steps":[{"name":"t","argv":["true"]}]}"#).unwrap_err();
        assert!(
            e.contains("jobs.jsonl:1") && e.contains("isolation") && e.contains("--box"),
            "{e}"
        );
    }

    #[test]
    fn a_good_job_parses_with_paths_relative_to_the_jobs_dir() {
        let j = p(r#"{"id":"s1","files":{"prog.c":"a/p.c"},"steps":[{"name":"compile","argv":["cc","prog.c"],"time_limit":10},{"name":"t1","argv":["./a.out"],"stdin":"1.in","expected":"1.out","memory_limit":"256M"}]}"#).unwrap();
        assert_eq!(j[0].files["prog.c"], Path::new("/d/a/p.c"));
        assert_eq!(j[0].steps[1].stdin.as_deref(), Some(Path::new("/d/1.in")));
        assert_eq!(j[0].steps[1].memory_limit.as_deref(), Some("256M"));
    }

    #[test]
    fn errors_name_the_line_and_the_field() {
        let ok = r#"{"id":"a","steps":[{"name":"x","argv":["true"]}]}"#;
        let cases = [
            (
                r#"{"id":"b","steps":[{"name":"x","argv":["t"]},{"name":"y","argv":["t"],"stdin":3}]}"#,
                "jobs.jsonl:3: steps[1].stdin: must be a string",
            ),
            (
                r#"{"id":"b","steps":[{"name":"x","argv":["t"],"colour":1}]}"#,
                "jobs.jsonl:3: steps[0].colour: unknown field",
            ),
            (
                r#"{"id":"b","stepz":[]}"#,
                "jobs.jsonl:3: stepz: unknown field",
            ),
            (
                r#"{"id":"a","steps":[{"name":"x","argv":["t"]}]}"#,
                "jobs.jsonl:3: id: \"a\" is already",
            ),
            (
                r#"{"id":"b","steps":[]}"#,
                "jobs.jsonl:3: steps: must be a non-empty",
            ),
            (
                r#"{"id":"b","steps":[{"name":"x","argv":[]}]}"#,
                "jobs.jsonl:3: steps[0].argv: must be",
            ),
            (
                r#"{"id":"b","steps":[{"name":"x","argv":["t"],"time_limit":-1}]}"#,
                "jobs.jsonl:3: steps[0].time_limit: must be a positive",
            ),
            (
                r#"{"id":"b","steps":[{"name":"x","argv":["t"],"memory_limit":"lots"}]}"#,
                "jobs.jsonl:3: steps[0].memory_limit:",
            ),
            (
                r#"{"id":"b","files":{"../x":"y"},"steps":[{"name":"x","argv":["t"]}]}"#,
                "jobs.jsonl:3: files.../x: a box file name",
            ),
            (
                r#"{"id":"b/c","steps":[{"name":"x","argv":["t"]}]}"#,
                "jobs.jsonl:3: id:",
            ),
            (
                r#"{"id":"b","steps":[{"name":"x","argv":["t"]}"#,
                "jobs.jsonl:3: not a JSON object",
            ),
        ];
        for (line, want) in cases {
            let e = p(&format!("{ok}\n\n{line}\n")).unwrap_err();
            assert!(e.starts_with(want), "{line}: {e}");
        }
    }

    #[test]
    fn a_missing_host_file_is_named() {
        let e = parse(
            r#"{"id":"a","steps":[{"name":"x","argv":["t"],"expected":"nope.out"}]}"#,
            Path::new("/nonexistent-dir"),
            "j",
            true,
        )
        .unwrap_err();
        assert!(
            e.starts_with("j:1: steps[0].expected: /nonexistent-dir/nope.out"),
            "{e}"
        );
    }

    #[test]
    fn shards_partition_the_jobs() {
        assert_eq!(parse_shard("1/3"), Ok((1, 3)));
        assert!(
            parse_shard("3/3").is_err() && parse_shard("0/0").is_err() && parse_shard("x").is_err()
        );
        let all: Vec<usize> = (0..10).collect();
        let mut seen: Vec<usize> = (0..3)
            .flat_map(|i| {
                all.iter()
                    .copied()
                    .filter(move |&j| in_shard(j, Some((i, 3))))
            })
            .collect();
        seen.sort();
        assert_eq!(seen, all);
        assert!(in_shard(7, None));
    }
}
