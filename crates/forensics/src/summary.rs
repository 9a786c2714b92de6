//! `evidence show`: a readable account of a bundle: what happened (violation events, verdict),
//! when, which task, the task list, the files in the writable layers and the sockets.
//! It reads the bundle as it is; `verify` is what proves it unaltered.

use crate::error::Error;
use crate::manifest::{check_path, Manifest, MANIFEST_FILE};
use crate::record::{CaptureRecord, CAPTURE_FILE};
use crate::text;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

/// Layer entries listed before "... and N more".
const MAX_SHOWN_ENTRIES: usize = 200;

/// The text `evidence show` prints for a bundle: the sandbox, the verdict and violation events,
/// the tasks and the layers, with text from the bundle escaped (a sandbox wrote it).
pub fn summarize(bundle: &Path) -> Result<String, Error> {
    if bundle.join(MANIFEST_FILE).symlink_metadata().is_err() {
        return Err(Error::NotABundle {
            path: bundle.to_path_buf(),
        });
    }
    let read = |name: &str| {
        let path = bundle.join(name);
        std::fs::read(&path).map_err(|source| Error::Read { path, source })
    };
    let capture_path = bundle.join(CAPTURE_FILE);
    let record: CaptureRecord =
        serde_json::from_slice(&read(CAPTURE_FILE)?).map_err(|e| Error::Read {
            path: capture_path,
            source: std::io::Error::other(format!("not a capture record: {e}")),
        })?;
    let events = read("events.jsonl").unwrap_or_default();
    let verdict: Option<Value> = read("verdict.json")
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let manifest_truncated = read(MANIFEST_FILE)
        .ok()
        .and_then(|b| Manifest::parse(&b).ok())
        .and_then(|m| m.truncated);

    // Every value below that the sandbox could have chosen (names, command lines, paths, link
    // targets, event strings) goes through `q`/`qr`: quoted, with controls, format characters and
    // non-UTF-8 bytes escaped, so it stays inside its own line and column and no line of this
    // output can be forged from inside. Every line but the section titles is indented.
    let bundle_shown = qr(&bundle.display().to_string());
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "Evidence bundle {bundle_shown}");
    let _ = writeln!(w, "  sandbox:  {}", esc(&record.sandbox_id));
    let _ = writeln!(
        w,
        "  captured: {} (host kernel {})",
        esc(&record.captured_at),
        esc(&record.host_kernel)
    );
    let _ = writeln!(
        w,
        "  (contents as found; `watertight evidence verify {bundle_shown}` proves them unaltered)"
    );
    if record.truncated.is_some() || manifest_truncated.is_some() {
        let limit = record.evidence_limit.or(manifest_truncated).unwrap_or(0);
        let _ = writeln!(
            w,
            "  EVIDENCE TRUNCATED: the evidence budget of {limit} bytes was reached; the bundle holds less than the sandbox had"
        );
        if let Some(what) = &record.truncated {
            let _ = writeln!(w, "    first cut: {}", esc(what));
        }
    } else if let Some(limit) = record.evidence_limit {
        let _ = writeln!(
            w,
            "  evidence: {} of the {limit}-byte budget used, nothing cut",
            record.evidence_used
        );
    }

    let _ = writeln!(w, "\nWhat happened");
    if let Some(v) = &verdict {
        let status = v.get("status").and_then(Value::as_str).unwrap_or("?");
        let message = v.get("message").and_then(Value::as_str).unwrap_or("");
        let _ = writeln!(w, "  verdict: {} {}", esc(status), esc(message));
    } else {
        let _ = writeln!(w, "  verdict: (verdict.json missing or not JSON)");
    }
    let (violations, total, malformed) = violation_events(&events);
    let mut culprits = Vec::new();
    if violations.is_empty() {
        let _ = writeln!(w, "  no violation event in the event log ({total} events)");
    }
    for ev in &violations {
        let _ = writeln!(w, "  {}", describe_event(ev));
        if let Some(pid) = pick_i64(ev, &["host_pid", "pid", "tid"]) {
            culprits.push(pid);
        }
    }
    if malformed > 0 {
        let _ = writeln!(w, "  ({malformed} event log lines are not JSON)");
    }

    let _ = writeln!(
        w,
        "\nTasks ({}, * = named by a violation event; strings quoted as the task set them)",
        record.tasks.len()
    );
    let _ = writeln!(
        w,
        "  {:>8} {:>8}  {:<18} {:<14} CMDLINE",
        "PID", "PPID", "COMM", "STATE"
    );
    for t in &record.tasks {
        let mark = if culprits.contains(&(t.pid as i64)) {
            "*"
        } else {
            " "
        };
        let ppid = t.ppid.map(|p| p.to_string()).unwrap_or_else(|| "?".into());
        let cmdline: Vec<String> = t.cmdline.iter().map(|a| q(a)).collect();
        let _ = writeln!(
            w,
            "{mark} {:>8} {:>8}  {:<18} {:<14} {}",
            t.pid,
            ppid,
            q(&t.comm),
            esc(&t.state),
            shorten(&cmdline.join(" "), 200)
        );
        if !t.unreadable.is_empty() {
            let names: Vec<String> = t.unreadable.iter().map(|u| qr(&u.what)).collect();
            let _ = writeln!(w, "  {:>8}   unreadable: {}", "", names.join(", "));
        }
        for cut in &t.truncated {
            let _ = writeln!(
                w,
                "  {:>8}   truncated: {} ({})",
                "",
                esc(&cut.what),
                esc(&cut.error)
            );
        }
    }

    let _ = writeln!(
        w,
        "\nFiles in the writable layers (what the program changed: kind, size, mode, mtime UTC, path)"
    );
    if record.layers.is_empty() {
        let _ = writeln!(w, "  (no writable layer was captured)");
    }
    for layer in &record.layers {
        let bytes: u64 = layer
            .entries
            .iter()
            .filter(|e| e.kind != "hardlink")
            .map(|e| e.size)
            .sum();
        let _ = writeln!(
            w,
            "  {} ({}): {} entries, {} bytes{}",
            esc(&layer.name),
            esc(&layer.source),
            layer.entries.len() as u64 + layer.entries_not_listed,
            bytes,
            layer
                .archive
                .as_deref()
                .map(|a| format!(", archived in {}", esc(a)))
                .unwrap_or_default()
        );
        for e in layer.entries.iter().take(MAX_SHOWN_ENTRIES) {
            let link = e
                .link_target
                .as_deref()
                .map(|t| {
                    let arrow = if e.kind == "hardlink" { "=>" } else { "->" };
                    format!(" {arrow} {}", q(t))
                })
                .unwrap_or_default();
            let mut notes = Vec::new();
            if e.sparse {
                notes.push("sparse".to_string());
            }
            if let Some(stored) = e.stored {
                notes.push(format!("{stored} bytes of data archived"));
            }
            if e.truncated {
                notes.push("TRUNCATED".to_string());
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!("  [{}]", notes.join(", "))
            };
            let _ = writeln!(
                w,
                "    {:<8} {:>12}  {:04o}  {}  {}{}{}",
                esc(&e.kind),
                e.size,
                e.mode,
                format_mtime(e.mtime),
                q(&e.path),
                link,
                notes
            );
        }
        let more =
            layer.entries.len().saturating_sub(MAX_SHOWN_ENTRIES) as u64 + layer.entries_not_listed;
        if more > 0 {
            let _ = writeln!(w, "    ... and {more} more (all are in the archive)");
        }
        for s in &layer.skipped {
            let _ = writeln!(w, "    not archived: {} ({})", q(&s.what), esc(&s.error));
        }
        if let Some(cut) = &layer.truncated {
            let _ = writeln!(w, "    TRUNCATED: {}", esc(cut));
        }
    }

    let _ = writeln!(w, "\nSockets in the sandbox's network namespace");
    match record.net_from_pid {
        None => {
            let _ = writeln!(w, "  (no task's /proc/<pid>/net was readable)");
        }
        Some(pid) => {
            let mut counts = Vec::new();
            for name in &record.net_files {
                // Each table has one header line, then one line per socket. A name that is not
                // a bundle path (hand-edited capture.json) is not read.
                let n = if check_path(name).is_ok() {
                    std::fs::read(bundle.join("net").join(name))
                        .map(|b| b.split(|&c| c == b'\n').filter(|l| !l.is_empty()).count())
                        .unwrap_or(1)
                        .saturating_sub(1)
                } else {
                    0
                };
                counts.push(format!("{} {n}", esc(name)));
            }
            let _ = writeln!(w, "  from pid {pid}: {}", counts.join(", "));
        }
    }
    Ok(out)
}

/// A `capture.json` value from the sandbox, quoted for display.
fn q(s: &str) -> String {
    text::quote_captured(s)
}

/// Any other string from the sandbox, quoted for display.
fn qr(s: &str) -> String {
    text::quote_raw(s)
}

/// The supervisor's and capture's own words: escaped, not quoted.
fn esc(s: &str) -> String {
    text::escape_raw(s)
}

/// The events that record a violation, the number of events, and unparsable lines.
fn violation_events(jsonl: &[u8]) -> (Vec<Value>, usize, usize) {
    let mut found = Vec::new();
    let (mut total, mut malformed) = (0, 0);
    for line in jsonl.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        total += 1;
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            malformed += 1;
            continue;
        };
        let kind = pick_str(&v, &["kind", "event", "type"]).unwrap_or_default();
        if kind.to_ascii_lowercase().contains("violation") || v.get("syscall").is_some() {
            found.push(v);
        }
    }
    (found, total, malformed)
}

fn describe_event(v: &Value) -> String {
    let time = pick_str(v, &["time", "ts", "timestamp"])
        .map(|t| esc(&t))
        .unwrap_or_else(|| "(no time)".into());
    // The sandbox sees its own pid namespace; the task list uses host pids.
    let pid = match (pick_i64(v, &["pid", "tid"]), pick_i64(v, &["host_pid"])) {
        (Some(p), Some(h)) if p != h => format!("pid {p} (host {h})"),
        (Some(p), _) | (None, Some(p)) => format!("pid {p}"),
        (None, None) => "pid ?".into(),
    };
    let comm = pick_str(v, &["comm"])
        .map(|c| format!(" {}", qr(&c)))
        .unwrap_or_default();
    let kind = pick_str(v, &["kind", "event", "type"])
        .map(|k| esc(&k))
        .unwrap_or_else(|| "event".into());
    let call = match pick_str(v, &["syscall", "name"]) {
        Some(name) => {
            // Arguments the supervisor could read as strings (paths) replace their raw value.
            let strings = v.get("arg_strings").and_then(Value::as_object);
            let args = v
                .get("args")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .enumerate()
                        .map(
                            |(i, arg)| match strings.and_then(|m| m.get(&i.to_string())) {
                                Some(Value::String(s)) => qr(s),
                                _ => render_arg(arg),
                            },
                        )
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            format!(" {}({args})", esc(&name))
        }
        None => String::new(),
    };
    let detail = pick_str(v, &["message", "detail", "action"])
        .map(|d| format!(" - {}", esc(&d)))
        .unwrap_or_default();
    format!("{time}  {pid}{comm}  {kind}{call}{detail}")
}

/// Modification time in UTC to the second ("when it changed"); `?` for times before 1970.
fn format_mtime(secs: i64) -> String {
    u64::try_from(secs)
        .ok()
        .map(|s| {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(s);
            humantime::format_rfc3339_seconds(t).to_string()
        })
        .unwrap_or_else(|| "?".into())
}

/// Numbers as they are; strings (hex values from the supervisor, or anything in a hand-edited
/// log) bare when they are plain words, quoted otherwise.
fn render_arg(v: &Value) -> String {
    match v {
        Value::String(s)
            if !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-+.".contains(&b)) =>
        {
            s.clone()
        }
        Value::String(s) => qr(s),
        Value::Number(n) => n.to_string(),
        other => qr(&other.to_string()),
    }
}

fn pick_str(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match v.get(*k)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn pick_i64(v: &Value, keys: &[&str]) -> Option<i64> {
    keys.iter().find_map(|k| v.get(*k)?.as_i64())
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(max).collect();
    cut.push_str("...");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_violations_and_describes_them() {
        let log = br#"{"time":"2026-11-22T10:00:00Z","kind":"start","pid":5}
not json
{"time":"2026-11-22T10:00:01Z","kind":"violation","pid":7,"syscall":"ptrace","args":["PTRACE_ATTACH",1,0,0]}
"#;
        let (found, total, malformed) = violation_events(log);
        assert_eq!((found.len(), total, malformed), (1, 3, 1));
        assert_eq!(
            describe_event(&found[0]),
            "2026-11-22T10:00:01Z  pid 7  violation ptrace(PTRACE_ATTACH, 1, 0, 0)"
        );
    }

    #[test]
    fn sandbox_event_shape_with_host_pid_and_strings() {
        let log = br#"{"time":"t","sandbox_id":"wt-0-1","kind":"syscall_denied","syscall":"mount","nr":165,"args":["0x1","0x2","0x0"],"arg_strings":{"1":"/mnt"},"host_pid":4242,"pid":3,"comm":"a.out","action":"forensic"}"#;
        let (found, _, _) = violation_events(log);
        assert_eq!(
            describe_event(&found[0]),
            r#"t  pid 3 (host 4242) "a.out"  syscall_denied mount(0x1, "/mnt", 0x0) - forensic"#
        );
    }
}
