//! The vetting policy: which program types, attach points, helpers (by class and by name),
//! kfuncs and map types an object may use. TOML, strict (an unknown key or value is an error
//! naming the file, the line and the key); a key left out keeps its built-in value, so a custom
//! policy can change one list. `watertight bpf policy show` prints [`Policy::builtin`] as a
//! commented file ([`Policy::to_commented_toml`]) that parses back to the same policy.

use crate::elf::MAP_TYPES;
use crate::error::{Error, Result};
use crate::helpers::{self, HelperClass};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::Path;

/// A whole policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Program types and attach points.
    pub programs: Programs,
    /// Helper classes and names.
    pub helpers: Helpers,
    /// Kernel functions.
    pub kfuncs: Kfuncs,
    /// Map types.
    pub maps: Maps,
}

/// `[programs]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Programs {
    /// `programs.types`: allowed program types, in libbpf's section spelling with aliases
    /// folded (`tracepoint` covers `tp/`, `raw_tracepoint` covers `raw_tp/`).
    #[serde(deserialize_with = "program_types")]
    pub types: Vec<String>,
    /// `programs.attach`: allowed tracepoints as `category:event`, `*` matching any run of
    /// characters (`syscalls:*`). Checked for the tracepoint family (tracepoint, raw_tracepoint,
    /// tp_btf).
    #[serde(deserialize_with = "attach_patterns")]
    pub attach: Vec<String>,
}

/// `[helpers]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Helpers {
    /// `helpers.classes`: helper classes allowed as a whole.
    pub classes: Vec<HelperClass>,
    /// `helpers.allow`: helpers allowed by name whatever their class.
    #[serde(deserialize_with = "helper_names")]
    pub allow: Vec<String>,
    /// `helpers.deny`: helpers refused by name whatever their class (wins over `allow`).
    #[serde(deserialize_with = "helper_names")]
    pub deny: Vec<String>,
}

/// `[kfuncs]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Kfuncs {
    /// `kfuncs.allow`: kfuncs allowed by name; every other kfunc is refused.
    pub allow: Vec<String>,
}

/// `[maps]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Maps {
    /// `maps.types`: allowed map types (`hash`, `ringbuf`, ... : `enum bpf_map_type` in lower
    /// case without its prefix).
    #[serde(deserialize_with = "map_types")]
    pub types: Vec<String>,
}

/// Program types the vetter knows (the canonical spellings of sections::classify).
fn known_program_type(t: &str) -> bool {
    crate::sections::classify(t).is_some_and(|k| k.prog_type == t)
        || crate::sections::classify(&format!("{t}/x")).is_some_and(|k| k.prog_type == t)
}

fn program_types<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    for t in &v {
        if !known_program_type(t) {
            return Err(serde::de::Error::custom(format!(
                "unknown program type {t:?} (libbpf's section spelling: tracepoint, \
                 raw_tracepoint, tp_btf, perf_event, kprobe, fentry, xdp, cgroup/connect4, ...)"
            )));
        }
    }
    Ok(v)
}

fn attach_patterns<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    for p in &v {
        if p.split(':').count() != 2 || p.split(':').any(str::is_empty) {
            return Err(serde::de::Error::custom(format!(
                "attach point {p:?} is not category:event (e.g. sched:sched_process_exec, syscalls:*)"
            )));
        }
    }
    Ok(v)
}

fn helper_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    for n in &v {
        if helpers::by_name(n).is_none() {
            return Err(serde::de::Error::custom(format!(
                "unknown helper {n:?} (a name of enum bpf_func_id without BPF_FUNC_, e.g. probe_read_kernel)"
            )));
        }
    }
    Ok(v)
}

fn map_types<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    for t in &v {
        if !MAP_TYPES.contains(&t.as_str()) || t == "unspec" {
            return Err(serde::de::Error::custom(format!(
                "unknown map type {t:?} (enum bpf_map_type in lower case without BPF_MAP_TYPE_, e.g. hash, ringbuf)"
            )));
        }
    }
    Ok(v)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Default for Programs {
    fn default() -> Self {
        Programs {
            types: strings(&["tracepoint", "raw_tracepoint", "tp_btf", "perf_event"]),
            attach: strings(&[
                "sched:sched_process_exec",
                "sched:sched_process_exit",
                "sched:sched_process_fork",
                "raw_syscalls:sys_enter",
                "raw_syscalls:sys_exit",
                "syscalls:*",
            ]),
        }
    }
}

impl Default for Helpers {
    fn default() -> Self {
        Helpers {
            classes: vec![HelperClass::Observe, HelperClass::Output],
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }
}

impl Default for Maps {
    fn default() -> Self {
        Maps {
            types: strings(&[
                "hash",
                "array",
                "percpu_hash",
                "percpu_array",
                "lru_hash",
                "lru_percpu_hash",
                "ringbuf",
                "perf_event_array",
                "stack_trace",
                "cgroup_array",
            ]),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::builtin()
    }
}

/// `*` matches any run of characters (also none); everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

impl Policy {
    /// The built-in policy: tracepoint-family and perf_event programs on process lifecycle and
    /// syscall tracepoints, observe and output helpers, no kfuncs, plain maps.
    pub fn builtin() -> Policy {
        Policy {
            programs: Programs::default(),
            helpers: Helpers::default(),
            kfuncs: Kfuncs::default(),
            maps: Maps::default(),
        }
    }

    /// Parses policy text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Policy> {
        toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| char_floor(text, s.start));
            let line = at.map(|at| text[..at].matches('\n').count() + 1);
            let key = key_at(text, at);
            let mut message = String::new();
            if let Some(line) = line {
                let _ = write!(message, "line {line}: ");
            }
            if let Some(key) = key {
                let _ = write!(message, "key {key}: ");
            }
            message.push_str(e.message().trim());
            Error::Policy {
                path: origin.to_path_buf(),
                message,
            }
        })
    }

    /// Reads and parses a policy file.
    pub fn load(path: &Path) -> Result<Policy> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::PolicyRead {
            path: path.to_path_buf(),
            source,
        })?;
        Policy::parse(&text, path)
    }

    /// The sha256 of the policy's canonical JSON (comments and spelling of the file do not
    /// matter): what a signature records as the policy it was vetted against.
    pub fn sha256(&self) -> String {
        // Plain strings and lists always serialize.
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(json))
    }

    /// Whether a tracepoint-family attach point is allowed (`programs.attach`).
    pub fn allows_attach(&self, attach: &str) -> bool {
        self.programs.attach.iter().any(|p| glob_match(p, attach))
    }

    /// The policy as a commented TOML file, to start a custom one from.
    pub fn to_commented_toml(&self) -> String {
        let list = |v: &[String]| {
            if v.is_empty() {
                return "[]".to_string();
            }
            let items: Vec<String> = v.iter().map(|s| format!("  {s:?},\n")).collect();
            format!("[\n{}]", items.concat())
        };
        let classes: Vec<String> = self
            .helpers
            .classes
            .iter()
            .map(|c| c.as_str().to_string())
            .collect();
        let mut out = String::new();
        out.push_str(
            "# watertight bpf policy (docs/bpf.md, \"Policy\"). A key left out keeps the built-in value.\n\
             # Use with: watertight bpf vet OBJ --policy FILE; watertight bpf sign OBJ --key KEY --policy FILE\n\n\
             [programs]\n\
             # Program types, in libbpf's section spelling (tp/ is tracepoint, raw_tp/ raw_tracepoint).\n",
        );
        let _ = writeln!(out, "types = {}", list(&self.programs.types));
        out.push_str(
            "# Tracepoints the tracepoint family (tracepoint, raw_tracepoint, tp_btf) may attach to,\n\
             # as category:event; * matches any run of characters. Raw and BTF tracepoints are named\n\
             # without a category: the vetter infers it from the event name (sched_* is sched,\n\
             # sys_enter/sys_exit raw_syscalls; unknown ones only match a pattern with category *).\n",
        );
        let _ = writeln!(out, "attach = {}\n", list(&self.programs.attach));
        out.push_str(
            "[helpers]\n\
             # Helper classes allowed as a whole: observe (reads, lookups, time, ids), output (perf and\n\
             # ring buffers, trace_printk, map updates: results for userspace), act (changes what the\n\
             # kernel or a process does: signals, user memory writes, return overrides, packet\n\
             # rewrites and redirects, bpf(2)), control (tail calls, timers, loops, callbacks).\n",
        );
        let _ = writeln!(out, "classes = {}", list(&classes));
        out.push_str("# Helpers allowed by name whatever their class (names of enum bpf_func_id without BPF_FUNC_).\n");
        let _ = writeln!(out, "allow = {}", list(&self.helpers.allow));
        out.push_str("# Helpers refused by name whatever their class (wins over allow).\n");
        let _ = writeln!(out, "deny = {}\n", list(&self.helpers.deny));
        out.push_str(
            "[kfuncs]\n\
             # Kernel functions allowed by name; every other kfunc is refused.\n",
        );
        let _ = writeln!(out, "allow = {}\n", list(&self.kfuncs.allow));
        out.push_str(
            "[maps]\n\
             # Map types (enum bpf_map_type in lower case). cgroup_array only answers \"is the task in\n\
             # this cgroup\" (bpf_current_task_under_cgroup). Not prog_array (tail calls into any\n\
             # program) nor array_of_maps/hash_of_maps (maps swapped in at run time).\n",
        );
        let _ = writeln!(out, "types = {}", list(&self.maps.types));
        out
    }
}

/// `pos` moved back to a character boundary of `text` (and into it).
fn char_floor(text: &str, pos: usize) -> usize {
    let mut pos = pos.min(text.len());
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    pos
}

/// The `table.key` the byte at `pos` belongs to: the last `[table]` header and `key =` line at
/// or before it.
fn key_at(text: &str, pos: Option<usize>) -> Option<String> {
    let pos = char_floor(text, pos?);
    let mut table = None;
    let mut key = None;
    for line in text[..pos].lines() {
        let l = line.trim();
        if l.starts_with('[') && l.ends_with(']') && !l.contains('"') {
            table = Some(l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
            key = None;
        } else if let Some((k, _)) = l.split_once('=') {
            if !l.starts_with('#') && !l.starts_with('"') {
                key = Some(k.trim().to_string());
            }
        }
    }
    // The line holding `pos` itself.
    let line_start = text[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let here = text[line_start..].lines().next().unwrap_or("").trim();
    if let Some((k, _)) = here.split_once('=') {
        if !here.starts_with('#') {
            key = Some(k.trim().to_string());
        }
    } else if here.starts_with('[') && here.ends_with(']') {
        return Some(
            here.trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string(),
        );
    }
    match (table, key) {
        (Some(t), Some(k)) => Some(format!("{t}.{k}")),
        (None, Some(k)) => Some(k),
        (Some(t), None) => Some(t),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commented_builtin_parses_back_to_the_builtin() {
        let text = Policy::builtin().to_commented_toml();
        let back = Policy::parse(&text, Path::new("builtin.toml")).unwrap();
        assert_eq!(back, Policy::builtin());
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let text = "[programs]\ntypes = [\"tracepoint\"]\n\n[helpers]\nclasses = [\"observe\"]\nallow = [\"no_such_helper\"]\n";
        let e = Policy::parse(text, Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.toml: line 6: key helpers.allow: "), "{e}");
        assert!(e.contains("no_such_helper"), "{e}");
        let e = Policy::parse("[maps]\nkinds = []\n", Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("kinds"), "{e}");
        let e = Policy::parse("[helpers]\nclasses = [\"write\"]\n", Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("helpers.classes"), "{e}");
        // A key left out keeps the built-in value.
        let p =
            Policy::parse("[kfuncs]\nallow = [\"bpf_task_acquire\"]\n", Path::new("p")).unwrap();
        assert_eq!(p.programs, Programs::default());
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_is_an_error_naming_the_file(text in "\\PC{0,200}") {
            if let Err(e) = Policy::parse(&text, Path::new("fuzz.toml")) {
                proptest::prop_assert!(e.to_string().starts_with("fuzz.toml: "));
            }
        }

        #[test]
        fn policy_like_text_never_panics(
            table in proptest::sample::select(vec!["[programs]", "[helpers]", "[kfuncs]", "[maps]", "[x]", ""]),
            key in proptest::sample::select(vec!["types", "attach", "classes", "allow", "deny", "é"]),
            value in "\\PC{0,40}",
        ) {
            let _ = Policy::parse(&format!("{table}\n{key} = {value}\n"), Path::new("p.toml"));
        }
    }

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob_match("syscalls:*", "syscalls:sys_enter_openat"));
        assert!(!glob_match("syscalls:*", "sched:sched_wakeup"));
        assert!(glob_match("*:sched_wakeup", "sched:sched_wakeup"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxc"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("ab*ba", "aba"));
    }
}
