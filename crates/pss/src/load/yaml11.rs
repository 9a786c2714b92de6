//! YAML read as kubectl reads it: sigs.k8s.io/yaml turns YAML into JSON with go-yaml v2, which
//! resolves plain (unquoted) scalars by YAML 1.1 rules, and only then is the JSON decoded into
//! typed objects. So `defaultMode: 0400` is the integer 256, `privileged: yes` is `true`, and
//! `name: yes` is the boolean `true` too (which the typed decode then refuses, as the API server
//! does). Quoted and block scalars are always strings.
//!
//! The stream is read event by event (yaml-rust2 keeps each scalar's style, which a serde
//! deserializer does not tell) straight into `serde_json::Value`s: anchors and aliases, `<<`
//! merge keys with go-yaml v2's order (keys apply in document order, later ones win; in a merge
//! list the earlier mapping wins), map keys made strings as sigs.k8s.io/yaml makes them
//! (`on:` is the key `"true"`), and limits on nesting and alias expansion, so no input can
//! exhaust the stack or memory.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Deepest nesting of sequences and mappings read (go-yaml v2 has no limit, but kubectl's
/// typed objects are far shallower; the limit keeps every later recursive walk on the stack).
pub(crate) const MAX_DEPTH: usize = 256;

/// Most nodes one document may hold once its aliases are expanded (a "billion laughs" document
/// is refused instead of filling memory; go-yaml v2 refuses "excessive aliasing" too).
pub(crate) const MAX_NODES: usize = 1_000_000;

const YAML_TAG: &str = "tag:yaml.org,2002:";

/// Why a YAML document could not be read; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid YAML at line {line}, column {column}: {message}")]
pub(crate) struct YamlError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
}

impl YamlError {
    fn at(mark: Marker, message: impl Into<String>) -> YamlError {
        YamlError {
            line: mark.line(),
            column: mark.col() + 1,
            message: message.into(),
        }
    }
}

/// One document of a stream, as the JSON kubectl would send.
#[derive(Debug)]
pub(crate) struct Document {
    /// The document's value (`Null` for an empty document).
    pub(crate) value: Value,
    /// The 1-based line the document starts on.
    pub(crate) line: usize,
    /// Keys written twice in one mapping: (key, line of the later one). The later value wins,
    /// as in go-yaml v2; the API server's strict field validation warns about them.
    pub(crate) duplicates: Vec<(String, usize)>,
    /// Where each mapping key and sequence item was written.
    pub(crate) positions: Positions,
}

/// Where the nodes of one document were written: JSON pointer (RFC 6901) -> 1-based line and
/// column. A mapping entry is located at its key, a sequence item at its first character, the
/// document (`""`) at its root node. Nodes copied by an alias or a `<<` merge have no entry of
/// their own: [`Positions::locate`] finds the alias instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions {
    map: HashMap<String, (u32, u32)>,
}

impl Positions {
    /// The position of `pointer`, or of its nearest ancestor that was written in the document
    /// (a field that is absent, or came from an alias): the pointer found, its line and column.
    pub fn locate<'a>(&self, pointer: &'a str) -> Option<(&'a str, usize, usize)> {
        let mut at = pointer;
        loop {
            if let Some(&(line, col)) = self.map.get(at) {
                return Some((at, line as usize, col as usize));
            }
            let (parent, _) = at.rsplit_once('/')?;
            at = parent;
        }
    }

    /// Whether `pointer` itself was written in the document.
    pub fn contains(&self, pointer: &str) -> bool {
        self.map.contains_key(pointer)
    }

    /// How many positions are recorded.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no position is recorded (a JSON file, an empty document).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn record(&mut self, pointer: &str, mark: Marker) {
        let line = u32::try_from(mark.line()).unwrap_or(u32::MAX);
        let col = u32::try_from(mark.col() + 1).unwrap_or(u32::MAX);
        self.map.entry(pointer.to_string()).or_insert((line, col));
    }

    /// Records a mapping key at `mark`. A key written twice is where the later one is (its
    /// value wins). What was written below the earlier one keeps its positions: forgetting them
    /// would cost a walk over every position per duplicate, which a hostile document could
    /// repeat; a duplicate key is a warning anyway.
    fn record_key(&mut self, pointer: &str, mark: Marker) {
        self.map.remove(pointer);
        self.record(pointer, mark);
    }
}

/// Appends `/<segment>` to a JSON pointer, escaping `~` and `/` (RFC 6901).
pub(crate) fn push_segment(pointer: &mut String, segment: &str) {
    pointer.push('/');
    if segment.contains(['~', '/']) {
        pointer.push_str(&segment.replace('~', "~0").replace('/', "~1"));
    } else {
        pointer.push_str(segment);
    }
}

/// What a plain scalar means under YAML 1.1 as go-yaml v2 resolves it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Resolved {
    /// `~`, `null`, `Null`, `NULL` or nothing.
    Null,
    /// `y|Y|yes|Yes|YES|true|True|TRUE|on|On|ON` and their `false` counterparts.
    Bool(bool),
    /// An integer that fits i64 (decimal, `0x` hex, `0o` or leading-`0` octal, `0b` binary,
    /// underscores ignored).
    Int(i64),
    /// An integer above i64::MAX that fits u64.
    Uint(u64),
    /// A float (`1.5`, `1e3`, `.5`, `.inf`, `.nan`, or an integer too large for u64).
    Float(f64),
    /// Anything else: the text itself.
    Str,
}

/// Resolves a plain scalar as go-yaml v2's `resolve("", in)` does, with Go's
/// `strconv.ParseInt(s, 0, 64)` prefix rules.
pub(crate) fn resolve_plain(s: &str) -> Resolved {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Resolved::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Resolved::Bool(false)
        }
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let first = s.as_bytes()[0];
    if first == b'.' {
        // go-yaml: strconv.ParseFloat for anything else starting with a dot.
        return match s.parse::<f64>() {
            Ok(f) if is_go_float_syntax(s) => Resolved::Float(f),
            _ => Resolved::Str,
        };
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return Resolved::Str;
    }
    // Timestamps (`2001-12-14`) resolve to time.Time, but go-yaml v2 hands them to an
    // interface{} as the original string: nothing to do.
    let plain: String = s.chars().filter(|c| *c != '_').collect();
    if let Some(i) = go_parse_int(&plain) {
        return i;
    }
    if is_yaml_style_float(&plain) {
        if let Ok(f) = plain.parse::<f64>() {
            return Resolved::Float(f);
        }
    }
    Resolved::Str
}

/// Go's `strconv.ParseInt(s, 0, 64)`, falling back to `ParseUint(s, 0, 64)` as go-yaml does.
fn go_parse_int(s: &str) -> Option<Resolved> {
    let (negative, unsigned) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = unsigned.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &unsigned[2..]),
        Some("0o") => (8, &unsigned[2..]),
        Some("0b") => (2, &unsigned[2..]),
        _ if unsigned.len() > 1 && unsigned.starts_with('0') => (8, &unsigned[1..]),
        _ => (10, unsigned),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        // i64::MIN's magnitude is one more than i64::MAX.
        if magnitude <= i64::MAX as u64 {
            Some(Resolved::Int(-(magnitude as i64)))
        } else if magnitude == i64::MAX as u64 + 1 {
            Some(Resolved::Int(i64::MIN))
        } else {
            None
        }
    } else if let Ok(i) = i64::try_from(magnitude) {
        Some(Resolved::Int(i))
    } else if s.starts_with('+') {
        // ParseUint takes no sign.
        None
    } else {
        Some(Resolved::Uint(magnitude))
    }
}

/// go-yaml v2's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's ParseFloat accepts a dot-led decimal with an optional exponent; Rust's parse accepts
/// the same forms, but also `.` words Go refuses are already handled by the table above.
fn is_go_float_syntax(s: &str) -> bool {
    is_yaml_style_float(s)
}

/// A resolved scalar as the JSON value sigs.k8s.io/yaml would produce.
fn scalar_value(resolved: Resolved, text: String, mark: Marker) -> Result<Value, YamlError> {
    Ok(match resolved {
        Resolved::Null => Value::Null,
        Resolved::Bool(b) => Value::Bool(b),
        Resolved::Int(i) => Value::Number(i.into()),
        Resolved::Uint(u) => Value::Number(u.into()),
        Resolved::Float(f) => float_value(f).ok_or_else(|| {
            YamlError::at(
                mark,
                format!(
                    "{text} is a float JSON cannot hold (kubectl fails with \"json: unsupported \
                     value\"); quote it if it is meant as text"
                ),
            )
        })?,
        Resolved::Str => Value::String(text),
    })
}

/// Go's json.Marshal of a float64: integral values print without a fraction (`256`), so they
/// decode into integer fields; NaN and infinities have no JSON form.
fn float_value(f: f64) -> Option<Value> {
    if !f.is_finite() {
        return None;
    }
    if f.fract() == 0.0 && f.abs() < 1e21 {
        if f >= i64::MIN as f64 && f < i64::MAX as f64 {
            return Some(Value::Number((f as i64).into()));
        }
        if f >= 0.0 && f < u64::MAX as f64 {
            return Some(Value::Number((f as u64).into()));
        }
    }
    Number::from_f64(f).map(Value::Number)
}

/// A scalar with an explicit `!!type` tag: go-yaml resolves it and refuses a mismatch.
fn tagged_scalar(
    tag: &Tag,
    text: String,
    style: TScalarStyle,
    mark: Marker,
) -> Result<Value, YamlError> {
    if tag.handle != YAML_TAG {
        // Custom tags (`!foo`) are not resolvable: the text, as go-yaml v2 keeps it.
        return Ok(Value::String(text));
    }
    let expected = tag.suffix.as_str();
    let resolved = resolve_plain(&text);
    let ok = match (expected, &resolved) {
        ("str" | "binary", _) => return Ok(Value::String(text)),
        ("null", Resolved::Null) | ("bool", Resolved::Bool(_)) => true,
        ("int", Resolved::Int(_) | Resolved::Uint(_)) => true,
        ("float", Resolved::Float(_) | Resolved::Int(_) | Resolved::Uint(_)) => true,
        // Timestamps, sets and other types reach an interface{} as their text.
        ("timestamp" | "map" | "seq" | "set" | "omap" | "pairs" | "merge" | "value", _) => {
            return Ok(Value::String(text))
        }
        _ => false,
    };
    if !ok {
        return Err(YamlError::at(
            mark,
            format!("cannot decode !!{expected} `{text}` (go-yaml refuses it too)"),
        ));
    }
    let _ = style;
    scalar_value(resolved, text, mark)
}

/// How sigs.k8s.io/yaml turns a YAML map key into a JSON object key.
fn key_string(key: &Value, mark: Marker) -> Result<String, YamlError> {
    match key {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Err(YamlError::at(
            mark,
            "a mapping key is null (sigs.k8s.io/yaml refuses null keys); quote it",
        )),
        Value::Array(_) | Value::Object(_) => Err(YamlError::at(
            mark,
            "a mapping key is a sequence or mapping, which JSON cannot hold",
        )),
    }
}

enum Pending {
    /// Waiting for a key.
    None,
    /// A key was read (with its line); its value comes next.
    Key(String, usize),
    /// A plain `<<` key was read; the mapping(s) to merge come next.
    Merge,
}

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
        nodes: usize,
        /// The length of the reader's pointer before this node's segment was added.
        base: usize,
    },
    Map {
        map: Map<String, Value>,
        pending: Pending,
        /// Keys set by a merge (an explicit key may override them without being a duplicate).
        merged: Vec<String>,
        anchor: usize,
        nodes: usize,
        mark: Marker,
        /// The length of the reader's pointer before this node's segment was added.
        base: usize,
    },
}

/// Reads a YAML stream into one [`Document`] per `---` document. Reading stops at the first
/// error (a parser cannot resynchronise after a syntax error): the documents before it are
/// returned with it.
pub(crate) fn read_stream(text: &str) -> (Vec<Document>, Option<YamlError>) {
    let mut reader = Reader {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        stack: Vec::new(),
        nodes: 0,
        duplicates: Vec::new(),
        root: None,
        pointer: String::new(),
        positions: Positions::default(),
        unsettled: None,
    };
    let mut docs = Vec::new();
    let mut doc_line = 1;
    loop {
        let (event, mark) = match reader.parser.next_token() {
            Ok(e) => e,
            Err(e) => return (docs, Some(YamlError::at(*e.marker(), e.info().to_string()))),
        };
        let result = match event {
            Event::StreamEnd => return (docs, None),
            Event::DocumentStart => {
                doc_line = mark.line();
                reader.reset();
                Ok(())
            }
            Event::DocumentEnd => {
                docs.push(Document {
                    value: reader.root.take().unwrap_or(Value::Null),
                    line: doc_line,
                    duplicates: std::mem::take(&mut reader.duplicates),
                    positions: std::mem::take(&mut reader.positions),
                });
                Ok(())
            }
            other => reader.event(other, mark),
        };
        if let Err(e) = result {
            return (docs, Some(e));
        }
    }
}

struct Reader<'a> {
    parser: Parser<std::str::Chars<'a>>,
    anchors: HashMap<usize, (Value, usize)>,
    stack: Vec<Frame>,
    /// Nodes of this document, aliases expanded.
    nodes: usize,
    duplicates: Vec<(String, usize)>,
    root: Option<Value>,
    /// The JSON pointer of the innermost open collection.
    pointer: String,
    positions: Positions,
    /// A collection whose start is recorded with the next event ([`Reader::defer_start`]).
    unsettled: Option<(String, Marker)>,
}

impl Reader<'_> {
    fn reset(&mut self) {
        self.anchors.clear();
        self.stack.clear();
        self.nodes = 0;
        self.duplicates.clear();
        self.root = None;
        self.pointer.clear();
        self.positions = Positions::default();
        self.unsettled = None;
    }

    /// Records where the node that starts at `mark` was written, when it is a sequence item or
    /// the root (a mapping value is located at its key, recorded when the key is read).
    fn record_start(&mut self, mark: Marker) {
        if let Some(pointer) = self.item_pointer() {
            self.positions.record(&pointer, mark);
        }
    }

    /// The pointer of the node that starts next, when it is a sequence item or the root.
    fn item_pointer(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Seq { items, .. }) => {
                let mut pointer = self.pointer.clone();
                push_segment(&mut pointer, itoa(items.len()).as_str());
                Some(pointer)
            }
            Some(Frame::Map { .. }) => None,
        }
    }

    /// A collection that starts at `mark` as a sequence item or the root: recorded when the
    /// next event comes. yaml-rust2 marks a block mapping's start at its first key's `:` and a
    /// block sequence's after its first `- `; the collection starts at the earlier of its own
    /// mark and its first child's (a flow collection at its bracket).
    fn defer_start(&mut self, mark: Marker) {
        self.unsettled = self.item_pointer().map(|pointer| (pointer, mark));
    }

    /// Records the collection [`Reader::defer_start`] left, now that the event at `next` came.
    fn settle_start(&mut self, next: Marker) {
        if let Some((pointer, mark)) = self.unsettled.take() {
            let at = if (next.line(), next.col()) < (mark.line(), mark.col()) {
                next
            } else {
                mark
            };
            self.positions.record(&pointer, at);
        }
    }

    /// The pointer of a collection opening as the next child of the innermost one.
    fn enter(&mut self) -> usize {
        let base = self.pointer.len();
        match self.stack.last() {
            None => {}
            Some(Frame::Seq { items, .. }) => {
                push_segment(&mut self.pointer, itoa(items.len()).as_str())
            }
            Some(Frame::Map { pending, .. }) => match pending {
                Pending::Key(key, _) => push_segment(&mut self.pointer, key),
                // Merged mappings are located at the `<<` key's mapping.
                Pending::Merge => push_segment(&mut self.pointer, "<<"),
                Pending::None => {}
            },
        }
        base
    }

    fn event(&mut self, event: Event, mark: Marker) -> Result<(), YamlError> {
        self.settle_start(mark);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                // `<<` as a key, plain and untagged, is a merge.
                if style == TScalarStyle::Plain && tag.is_none() && text == "<<" {
                    if let Some(Frame::Map {
                        pending: pending @ Pending::None,
                        ..
                    }) = self.stack.last_mut()
                    {
                        *pending = Pending::Merge;
                        return Ok(());
                    }
                }
                self.record_start(mark);
                let value = match (&tag, style) {
                    (Some(tag), _) => tagged_scalar(tag, text, style, mark)?,
                    (None, TScalarStyle::Plain) => {
                        let resolved = resolve_plain(&text);
                        scalar_value(resolved, text, mark)?
                    }
                    (None, _) => Value::String(text),
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, (value.clone(), 1));
                }
                self.count(1, mark)?;
                self.attach(value, 1, mark)
            }
            Event::Alias(id) => {
                let Some((value, size)) = self.anchors.get(&id) else {
                    return Err(YamlError::at(mark, "an alias names an unknown anchor"));
                };
                let size = *size;
                if self.nodes + size > MAX_NODES {
                    return Err(YamlError::at(
                        mark,
                        format!(
                            "aliases expand this document beyond {MAX_NODES} nodes (excessive \
                             aliasing, which kubectl refuses too)"
                        ),
                    ));
                }
                let value = value.clone();
                self.record_start(mark);
                self.count(size, mark)?;
                self.attach(value, size, mark)
            }
            Event::SequenceStart(anchor, _) => {
                self.defer_start(mark);
                let base = self.enter();
                self.open(
                    Frame::Seq {
                        items: Vec::new(),
                        anchor,
                        nodes: 1,
                        base,
                    },
                    mark,
                )
            }
            Event::MappingStart(anchor, _) => {
                self.defer_start(mark);
                let base = self.enter();
                self.open(
                    Frame::Map {
                        map: Map::new(),
                        pending: Pending::None,
                        merged: Vec::new(),
                        anchor,
                        nodes: 1,
                        mark,
                        base,
                    },
                    mark,
                )
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = self.stack.pop().expect("the parser balances collections");
                let (value, anchor, nodes, base) = match frame {
                    Frame::Seq {
                        items,
                        anchor,
                        nodes,
                        base,
                    } => (Value::Array(items), anchor, nodes, base),
                    Frame::Map {
                        map,
                        anchor,
                        nodes,
                        base,
                        ..
                    } => (Value::Object(map), anchor, nodes, base),
                };
                self.pointer.truncate(base);
                if anchor > 0 {
                    self.anchors.insert(anchor, (value.clone(), nodes));
                }
                // Its nodes were counted as they were read.
                self.attach(value, nodes, mark)
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd => Ok(()),
            Event::DocumentStart | Event::DocumentEnd => Ok(()),
        }
    }

    fn open(&mut self, frame: Frame, mark: Marker) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError::at(
                mark,
                format!("sequences and mappings nest deeper than {MAX_DEPTH} levels"),
            ));
        }
        if let Some(Frame::Map {
            pending: Pending::None,
            ..
        }) = self.stack.last()
        {
            return Err(YamlError::at(
                mark,
                "a mapping key is a sequence or mapping, which JSON cannot hold",
            ));
        }
        self.count(1, mark)?;
        self.stack.push(frame);
        Ok(())
    }

    /// Counts `size` more nodes in this document.
    fn count(&mut self, size: usize, mark: Marker) -> Result<(), YamlError> {
        self.nodes += size;
        if self.nodes > MAX_NODES {
            return Err(YamlError::at(
                mark,
                format!("the document has more than {MAX_NODES} nodes"),
            ));
        }
        Ok(())
    }

    /// A finished node (`size` nodes with its children, already counted) goes to its parent.
    fn attach(&mut self, value: Value, size: usize, mark: Marker) -> Result<(), YamlError> {
        match self.stack.last_mut() {
            None => {
                self.root = Some(value);
                Ok(())
            }
            Some(Frame::Seq { items, nodes, .. }) => {
                items.push(value);
                *nodes += size;
                Ok(())
            }
            Some(Frame::Map {
                map,
                pending,
                merged,
                nodes,
                mark: map_mark,
                ..
            }) => {
                *nodes += size;
                match std::mem::replace(pending, Pending::None) {
                    Pending::None => {
                        let key = key_string(&value, mark)?;
                        let len = self.pointer.len();
                        push_segment(&mut self.pointer, &key);
                        self.positions.record_key(&self.pointer, mark);
                        self.pointer.truncate(len);
                        *pending = Pending::Key(key, mark.line());
                        Ok(())
                    }
                    Pending::Key(key, line) => {
                        if map.contains_key(&key) {
                            if let Some(i) = merged.iter().position(|k| *k == key) {
                                merged.swap_remove(i);
                            } else {
                                self.duplicates.push((key.clone(), line));
                            }
                        }
                        map.insert(key, value);
                        Ok(())
                    }
                    Pending::Merge => merge(map, merged, value, *map_mark),
                }
            }
        }
    }
}

/// A small decimal number as text (sequence indexes).
fn itoa(n: usize) -> String {
    n.to_string()
}

/// go-yaml v2's merge: a mapping's keys are set (overwriting); in a sequence of mappings the
/// earlier ones take precedence (applied last).
fn merge(
    map: &mut Map<String, Value>,
    merged: &mut Vec<String>,
    value: Value,
    mark: Marker,
) -> Result<(), YamlError> {
    let want_map = || {
        YamlError::at(
            mark,
            "map merge requires a mapping or a list of mappings after `<<`",
        )
    };
    let mut apply = |m: Map<String, Value>| {
        for (k, v) in m {
            if !merged.contains(&k) {
                merged.push(k.clone());
            }
            map.insert(k, v);
        }
    };
    match value {
        Value::Object(m) => apply(m),
        Value::Array(items) => {
            if !items.iter().all(Value::is_object) {
                return Err(want_map());
            }
            for item in items.into_iter().rev() {
                if let Value::Object(m) = item {
                    apply(m);
                }
            }
        }
        _ => return Err(want_map()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Value {
        let (docs, err) = read_stream(text);
        assert!(err.is_none(), "{text}: {err:?}");
        assert_eq!(docs.len(), 1, "{text}");
        docs.into_iter().next().unwrap().value
    }

    #[test]
    fn plain_scalars_resolve_as_go_yaml_v2() {
        let cases: &[(&str, Resolved)] = &[
            ("0400", Resolved::Int(256)),
            ("0o400", Resolved::Int(256)),
            ("0x1F", Resolved::Int(31)),
            ("0b101", Resolved::Int(5)),
            ("-0400", Resolved::Int(-256)),
            ("+12", Resolved::Int(12)),
            ("1_000", Resolved::Int(1000)),
            ("0", Resolved::Int(0)),
            ("08", Resolved::Float(8.0)),
            ("1e3", Resolved::Float(1000.0)),
            ("1.5", Resolved::Float(1.5)),
            (".5", Resolved::Float(0.5)),
            ("18446744073709551615", Resolved::Uint(u64::MAX)),
            ("yes", Resolved::Bool(true)),
            ("Y", Resolved::Bool(true)),
            ("ON", Resolved::Bool(true)),
            ("off", Resolved::Bool(false)),
            ("n", Resolved::Bool(false)),
            ("NO", Resolved::Bool(false)),
            ("~", Resolved::Null),
            ("", Resolved::Null),
            ("yEs", Resolved::Str),
            ("2001-12-14", Resolved::Str),
            ("0x", Resolved::Str),
            ("1.2.3", Resolved::Str),
            ("_1", Resolved::Str),
            ("nginx:1.25", Resolved::Str),
        ];
        for (text, want) in cases {
            assert_eq!(&resolve_plain(text), want, "{text}");
        }
        assert!(matches!(resolve_plain(".nan"), Resolved::Float(f) if f.is_nan()));
    }

    #[test]
    fn quoted_and_block_scalars_stay_strings() {
        let v = one("a: '0400'\nb: \"yes\"\nc: |-\n  on\nd: 0400\ne: yes\nf: !!str 0400\n");
        assert_eq!(
            v,
            json!({"a": "0400", "b": "yes", "c": "on", "d": 256, "e": true, "f": "0400"})
        );
    }

    #[test]
    fn keys_become_strings_as_sigs_k8s_io_yaml_makes_them() {
        let v = one("on: push\n1: x\n\"y\": quoted\n");
        assert_eq!(v, json!({"true": "push", "1": "x", "y": "quoted"}));
        let (_, err) = read_stream("? [a]\n: b\n");
        assert!(err.is_some());
        let (_, err) = read_stream("~: b\n");
        assert!(err.unwrap().message.contains("null"));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let v = one(
            "base: &b {a: 1, b: 2}\nother: &o {b: 3, c: 4}\nm:\n  <<: [*b, *o]\n  a: 9\nl: [*b]\n",
        );
        assert_eq!(v["m"], json!({"a": 9, "b": 2, "c": 4}));
        assert_eq!(v["l"], json!([{"a": 1, "b": 2}]));
        // `y` is a YAML 1.1 boolean, as a key too.
        assert_eq!(one("y: 1\n"), json!({"true": 1}));
        // A quoted "<<" is an ordinary key.
        assert_eq!(one("'<<': 1\n"), json!({"<<": 1}));
    }

    #[test]
    fn positions_of_keys_and_items() {
        let text = "kind: Pod\nspec:\n  containers:\n  - name: a\n    securityContext: {privileged: true}\n  - &b\n    name: b\n  - *b\n  - [x, {k: 1}]\n  - - z\n  odd/key~: 1\n";
        let (docs, err) = read_stream(text);
        assert!(err.is_none(), "{err:?}");
        let p = &docs[0].positions;
        assert_eq!(p.locate(""), Some(("", 1, 1)));
        assert_eq!(p.locate("/kind"), Some(("/kind", 1, 1)));
        assert_eq!(
            p.locate("/spec/containers"),
            Some(("/spec/containers", 3, 3))
        );
        assert_eq!(
            p.locate("/spec/containers/0"),
            Some(("/spec/containers/0", 4, 5))
        );
        assert_eq!(
            p.locate("/spec/containers/0/securityContext/privileged"),
            Some(("/spec/containers/0/securityContext/privileged", 5, 23))
        );
        assert_eq!(
            p.locate("/spec/containers/1/name"),
            Some(("/spec/containers/1/name", 7, 5))
        );
        // An alias: located at the alias; an absent field: at its nearest written ancestor.
        assert_eq!(
            p.locate("/spec/containers/2/name"),
            Some(("/spec/containers/2", 8, 5))
        );
        assert_eq!(
            p.locate("/spec/containers/0/securityContext/seccompProfile/type"),
            Some(("/spec/containers/0/securityContext", 5, 5))
        );
        // Flow collections start at their bracket; a block sequence in a block sequence at its
        // first `-`.
        assert_eq!(
            p.locate("/spec/containers/3"),
            Some(("/spec/containers/3", 9, 5))
        );
        assert_eq!(
            p.locate("/spec/containers/3/1"),
            Some(("/spec/containers/3/1", 9, 9))
        );
        assert_eq!(
            p.locate("/spec/containers/3/1/k"),
            Some(("/spec/containers/3/1/k", 9, 10))
        );
        assert_eq!(
            p.locate("/spec/containers/4"),
            Some(("/spec/containers/4", 10, 5))
        );
        assert_eq!(
            p.locate("/spec/containers/4/0"),
            Some(("/spec/containers/4/0", 10, 7))
        );
        assert_eq!(
            p.locate("/spec/odd~1key~0"),
            Some(("/spec/odd~1key~0", 11, 3))
        );
        // A document that starts with a comment or `---`: its root at its first node.
        let (docs, _) = read_stream("# c\n---\n  - a\n");
        assert_eq!(docs[0].positions.locate("/0"), Some(("/0", 3, 5)));
        // Each document has its own positions.
        let (docs, _) = read_stream("a: 1\n---\n\nb: 2\n");
        assert_eq!(docs[1].positions.locate("/b"), Some(("/b", 4, 1)));
        assert!(!docs[1].positions.contains("/a"));
    }

    #[test]
    fn duplicates_are_reported_with_their_line() {
        let (docs, _) = read_stream("a: 1\nb: 2\na: 3\n");
        assert_eq!(docs[0].value, json!({"a": 3, "b": 2}));
        assert_eq!(docs[0].duplicates, [("a".to_string(), 3)]);
        // The later key is where the value is.
        let (docs, _) = read_stream("s:\n  p: true\nb: 2\ns:\n  u: 1\n");
        let p = &docs[0].positions;
        assert_eq!(p.locate("/s"), Some(("/s", 4, 1)));
        assert_eq!(p.locate("/s/u"), Some(("/s/u", 5, 3)));
    }

    #[test]
    fn streams_errors_and_limits() {
        let (docs, err) = read_stream("a: 1\n---\n---\nb: 2\n---\nc: [\n");
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[1].value, Value::Null);
        assert_eq!(docs[2].line, 3, "the line of its `---`");
        let err = err.unwrap();
        assert!(err.to_string().starts_with("invalid YAML at line"), "{err}");

        let laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
        let (_, err) = read_stream(laughs);
        assert!(err.unwrap().message.contains("alias"));

        let deep = "[".repeat(MAX_DEPTH + 10) + &"]".repeat(MAX_DEPTH + 10);
        let (_, err) = read_stream(&deep);
        assert!(err.is_some());

        let (_, err) = read_stream("a: .nan\n");
        assert!(err.unwrap().message.contains("unsupported value"));
        let (_, err) = read_stream("a: !!int abc\n");
        assert!(err.unwrap().message.contains("!!int"));
    }
}
