//! Layered profiles: a profile file sets only the keys it changes, over a base: the built-in
//! default, or the file its top-level `extends` names (docs/profile.md).
//!
//! - The chain: the file, the file its `extends` names (a path relative to the directory of the
//!   file that names it), that file's base, ... down to a file without `extends` or with
//!   `extends = "default"`, whose base is the built-in profile. At most [`MAX_CHAIN`] files; a
//!   cycle is refused, naming its files.
//! - The merge, from the built-in profile up, as TOML values: tables merge key by key,
//!   recursively; everything else (strings, numbers, booleans, arrays, arrays of tables such as
//!   `[[bind]]`) replaces the base's value whole. A key cannot be removed, only replaced (a limit
//!   takes `"none"`).
//! - Each file's result (the file over its bases) is deserialized with the strict types (unknown
//!   keys refused) and validated as it is merged, so an error names the file that brought it,
//!   the key path and its line: every file of a chain is itself a valid profile.
//! - `name`: from the nearest file that sets it; when none does, the top file's name without
//!   its extension (so a partial profile is not called `default`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{default_profile, key, Profile};
use crate::error::Error;

/// Most files one chain may have (the built-in profile below them not counted).
pub const MAX_CHAIN: usize = 16;

/// The top-level key that names a profile's base.
pub const EXTENDS: &str = "extends";

/// The `extends` value for the built-in profile (also what no `extends` means). A file called
/// `default` is `extends = "./default"`.
pub const BUILT_IN: &str = "default";

/// A profile file's effective profile and the chain it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Layered {
    /// The effective profile: every file of the chain merged over the built-in one, validated.
    pub profile: Profile,
    /// The chain's files, the top first, each as named (the top as given, each base as its
    /// `extends` joined to the directory of the file naming it). The built-in profile is the
    /// base of the last one.
    pub files: Vec<PathBuf>,
}

/// One file of a chain.
struct Layer {
    path: PathBuf,
    text: String,
    /// Its keys, `extends` taken out.
    table: toml::Table,
    /// The file whose `extends` named this one (None for the top).
    extended_by: Option<PathBuf>,
}

impl Layer {
    /// The file as errors name it: `b.toml (extended by a.toml)` for a base.
    fn origin(&self) -> String {
        match &self.extended_by {
            None => self.path.display().to_string(),
            Some(by) => format!("{} (extended by {})", self.path.display(), by.display()),
        }
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::Profile {
            origin: self.origin(),
            message: message.into(),
        }
    }

    /// The error of the merged profile that this file made undeserializable: the key path (with
    /// its flag and its line in this file) and what is wrong.
    fn deserialize_error(&self, e: &serde_path_to_error::Error<toml::de::Error>) -> Error {
        let path = e.path().to_string();
        let line = locate(&self.text, e.path())
            .map(|at| format!(", {}", position(&self.text, at)))
            .unwrap_or_default();
        let message = e.inner().message().trim_end();
        // serde lists the schema's keys; `extends` is the loader's own.
        let also = if e.path().iter().count() == 1 && message.starts_with("unknown field") {
            format!(" (or `{EXTENDS}`)")
        } else {
            String::new()
        };
        self.error(format!("{}{line}: {message}{also}", named(&path)))
    }

    /// Parses `text` (the contents of `path`) and takes its `extends` out.
    fn parse(
        path: PathBuf,
        text: String,
        extended_by: Option<PathBuf>,
    ) -> Result<(Layer, Option<String>), Error> {
        let mut layer = Layer {
            path,
            text,
            table: toml::Table::new(),
            extended_by,
        };
        let mut table: toml::Table = toml::from_str(&layer.text).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!("{}: ", position(&layer.text, s.start)))
                .unwrap_or_default();
            layer.error(format!("{at}{}", e.message().trim_end()))
        })?;
        let extends = match table.remove(EXTENDS) {
            None => None,
            Some(toml::Value::String(s)) if s.is_empty() => {
                return Err(layer.error(format!(
                    "{EXTENDS} is empty: name the base profile's file (relative to this one) or \"{BUILT_IN}\""
                )))
            }
            Some(toml::Value::String(s)) => Some(s),
            Some(other) => {
                return Err(layer.error(format!(
                    "{EXTENDS} must be a string (the base profile's file, relative to this one, or \"{BUILT_IN}\"), not {} {other}",
                    article(other.type_str())
                )))
            }
        };
        layer.table = table;
        Ok((layer, extends))
    }
}

fn article(kind: &str) -> String {
    match kind.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {kind}"),
        _ => format!("a {kind}"),
    }
}

/// `line L, column C` of byte `at` in `text` (both from 1; the column counts characters).
fn position(text: &str, at: usize) -> String {
    let before = &text.as_bytes()[..at.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = before[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count()
        + 1;
    format!("line {line}, column {column}")
}

/// Loads the profile file at `path` with its chain.
pub fn load(path: &Path) -> Result<Layered, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("read profile {}", path.display()), e))?;
    from_text(text, path)
}

/// The profile in `text`, as if it were the file `origin`: errors name `origin`, its `extends`
/// is relative to `origin`'s directory, and its file name gives the profile's name when no
/// file of the chain sets one.
pub fn from_text(text: String, origin: &Path) -> Result<Layered, Error> {
    let (top, mut extends) = Layer::parse(origin.to_path_buf(), text, None)?;
    // The chain's files as the file system names them (canonical), once there is a base.
    let mut seen = Vec::new();
    let mut chain = vec![top];
    while let Some(base) = extends.take() {
        if base == BUILT_IN {
            break;
        }
        if seen.is_empty() {
            seen.push(identity(origin));
        }
        let by = chain.last().expect("the chain starts with the top file");
        let path = by.path.parent().unwrap_or(Path::new("")).join(&base);
        if chain.len() == MAX_CHAIN {
            return Err(by.error(format!(
                "{EXTENDS} = {base:?}: the chain {} is longer than {MAX_CHAIN} files; shorten it (e.g. write a base out whole with `watertight profile show --effective FILE`)",
                names(chain.iter().map(|l| l.path.as_path()).chain([path.as_path()]))
            )));
        }
        let id = identity(&path);
        if let Some(first) = seen.iter().position(|s| *s == id) {
            return Err(by.error(format!(
                "{EXTENDS} = {base:?} makes a cycle: {}; end the chain with a file that has no {EXTENDS} (or {EXTENDS} = \"{BUILT_IN}\")",
                names(
                    chain[first..]
                        .iter()
                        .map(|l| l.path.as_path())
                        .chain([path.as_path()])
                )
            )));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            by.error(format!(
                "{EXTENDS} = {base:?}: cannot read {}: {e}; the path is relative to this file's directory, and \"{BUILT_IN}\" is the built-in profile",
                path.display()
            ))
        })?;
        let (layer, next) = Layer::parse(path, text, Some(by.path.clone()))?;
        seen.push(id);
        chain.push(layer);
        extends = next;
    }
    let named = chain.iter().any(|l| l.table.contains_key("name"));
    let mut profile = merge_chain(&mut chain)?;
    if !named {
        if let Some(stem) = origin.file_stem() {
            profile.name = stem.to_string_lossy().into_owned();
        }
    }
    Ok(Layered {
        profile,
        files: chain.into_iter().map(|l| l.path).collect(),
    })
}

/// What makes two names of a file the same file: its canonical path when it exists.
fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn names<'a>(paths: impl Iterator<Item = &'a Path>) -> String {
    paths
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// Merges the chain over the built-in profile, from its last file up to the top, checking each
/// step so that an error names the file that brought it. Takes the files' tables.
fn merge_chain(chain: &mut [Layer]) -> Result<Profile, Error> {
    let mut merged = default_profile().to_table();
    let mut profile = None;
    for layer in chain.iter_mut().rev() {
        merge(&mut merged, std::mem::take(&mut layer.table));
        // What merged before this file deserialized and validated: a failure is this file's.
        // The plain deserializer first (half the cost); the error again with its key path.
        let p = match Profile::deserialize(toml::Value::Table(merged.clone())) {
            Ok(p) => p,
            Err(plain) => {
                let again = toml::Value::Table(std::mem::take(&mut merged));
                return Err(
                    match serde_path_to_error::deserialize::<_, Profile>(again) {
                        Err(e) => layer.deserialize_error(&e),
                        // Not seen: the same input, the same deserializer.
                        Ok(_) => layer.error(plain.message().trim_end()),
                    },
                );
            }
        };
        p.validate().map_err(|m| layer.error(m))?;
        profile = Some(p);
    }
    Ok(profile.expect("a chain has at least one file"))
}

/// Merges `top` into `base`: a table merges key by key, recursively; any other value of `top`
/// replaces the base's (an array whole, never appended to).
pub fn merge(base: &mut toml::Table, top: toml::Table) {
    for (k, v) in top {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => merge(b, t),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// A key path as errors name it, with the `watertight run` flag of the nearest key that has one:
/// `limits.memory (--memory-limit)`, `bind[0].target (--bind/--bind-ro)`.
fn named(path: &str) -> String {
    let mut cut = path.len();
    loop {
        let prefix = &path[..cut];
        let with_flag = key(prefix);
        if with_flag != prefix {
            return format!("{path}{}", &with_flag[prefix.len()..]);
        }
        match prefix.rfind(['.', '[']) {
            Some(i) => cut = i,
            None => return path.to_string(),
        }
    }
}

/// Where the key at `path` is in the file's text (its byte offset), as far as the path leads.
fn locate(text: &str, path: &serde_path_to_error::Path) -> Option<usize> {
    use serde_path_to_error::Segment;
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut found = None;
    let mut node: Option<&DeValue> = None;
    let mut table = Some(doc.get_ref());
    for segment in path.iter() {
        let value = match segment {
            Segment::Map { key } => {
                let Some((k, v)) = table.and_then(|t| t.get_key_value(key.as_str())) else {
                    break;
                };
                found = Some(k.span().start);
                v
            }
            Segment::Seq { index } => {
                let Some(v) = node.and_then(DeValue::as_array).and_then(|a| a.get(*index)) else {
                    break;
                };
                found = Some(v.span().start);
                v
            }
            _ => break,
        };
        node = Some(value.get_ref());
        table = value.get_ref().as_table();
    }
    found
}
