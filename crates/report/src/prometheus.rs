//! The one Prometheus text exposition (format 0.0.4) writer, for the node-exporter textfile
//! collector. Result classes name their metric families (names are stable: dashboards and alerts
//! depend on them); this writer owns the syntax: `# HELP`/`# TYPE` once per family before its
//! samples, label-value and help escaping, and name validity.

use std::fmt::{Display, Write};

/// Escapes a label value: backslash, double quote and newline (the exposition format's rule).
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a `# HELP` text: backslash and newline.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names; label names exclude the colon.
fn valid_name(name: &str, colon: bool) -> bool {
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic() || c == '_' || (colon && c == ':') || (!first && c.is_ascii_digit())
    };
    let mut chars = name.chars();
    chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false))
}

/// A text exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
    families: Vec<String>,
}

/// One gauge family of an [`Exposition`]; its samples follow its header.
pub struct Gauge<'a> {
    exposition: &'a mut Exposition,
    name: &'static str,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a gauge family: writes its `# HELP` and `# TYPE` lines. Every family's name is a
    /// constant of the code, so a bad or repeated name is a bug, caught by debug assertions.
    pub fn gauge(&mut self, name: &'static str, help: &str) -> Gauge<'_> {
        debug_assert!(valid_name(name, true), "metric name {name:?}");
        debug_assert!(
            !self.families.iter().any(|f| f == name),
            "metric family {name} written twice"
        );
        self.families.push(name.to_string());
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} gauge");
        Gauge {
            exposition: self,
            name,
        }
    }

    /// The exposition text (ends with a newline when anything was written).
    pub fn finish(self) -> String {
        self.text
    }
}

impl Gauge<'_> {
    /// One sample: `name{label="value",...} value`. Label values are escaped here.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl Display) -> &mut Self {
        let out = &mut self.exposition.text;
        out.push_str(self.name);
        if !labels.is_empty() {
            out.push('{');
            for (i, (name, value)) in labels.iter().enumerate() {
                debug_assert!(valid_name(name, false), "label name {name:?}");
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{name}=\"{}\"", escape_label_value(value));
            }
            out.push('}');
        }
        let _ = writeln!(out, " {value}");
        self
    }
}

/// One sample read back by [`read`].
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A strict reader of the text format (0.0.4): every family has HELP then TYPE before its
/// samples and appears once, names are valid, label values are quoted with only `\\`, `\"`
/// and `\n` escapes, values are floats. Returns every sample as (name, labels, value).
pub fn read(text: &str) -> Result<Vec<Sample>, String> {
    use std::collections::BTreeSet;
    let mut samples = Vec::new();
    let mut helped: Option<String> = None;
    let mut typed: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let at = |m: &str| format!("line {}: {m}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            if !valid_name(name, true) || typed.contains(name) {
                return Err(at("bad or repeated HELP"));
            }
            helped = Some(name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or_else(|| at("TYPE"))?;
            if helped.as_deref() != Some(name) || !typed.insert(name.to_string()) {
                return Err(at("TYPE without its HELP, or repeated"));
            }
            if !["gauge", "counter", "untyped", "summary", "histogram"].contains(&kind) {
                return Err(at("unknown type"));
            }
            current = Some(name.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value"))?;
        let name = &line[..name_end];
        if current.as_deref() != Some(name) {
            return Err(at("sample outside its family"));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            loop {
                let start = chars.peek().map(|(i, _)| *i).ok_or_else(|| at("open"))?;
                if body[start..].starts_with('}') {
                    rest = &body[start + 1..];
                    break;
                }
                let eq = body[start..].find('=').ok_or_else(|| at("label ="))? + start;
                let label = &body[start..eq];
                if !valid_name(label, false) {
                    return Err(at("label name"));
                }
                while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                    chars.next();
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(at("label value not quoted"));
                }
                let mut value = String::new();
                loop {
                    match chars.next().ok_or_else(|| at("unterminated"))?.1 {
                        '"' => break,
                        '\n' => return Err(at("raw newline")),
                        '\\' => match chars.next().ok_or_else(|| at("escape"))?.1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            _ => return Err(at("bad escape")),
                        },
                        c => value.push(c),
                    }
                }
                labels.push((label.to_string(), value));
                match chars.peek().map(|(_, c)| *c) {
                    Some(',') => {
                        chars.next();
                    }
                    Some('}') => {}
                    _ => return Err(at("after label")),
                }
            }
        }
        let value = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("space before value"))?;
        let value: f64 = value.parse().map_err(|_| at("value"))?;
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_help_type_and_escaped_labels_that_parse_back() {
        let mut e = Exposition::new();
        e.gauge("watertight_test_a", "A test.\nSecond line \\ here.")
            .sample(&[("rule", "x\"y\\z\nw")], 3)
            .sample(&[], 1.5);
        e.gauge("watertight_test_b", "B.")
            .sample(&[("a", ""), ("b", "ok")], 0);
        let text = e.finish();
        assert!(text.starts_with("# HELP watertight_test_a A test.\\nSecond line \\\\ here.\n# TYPE watertight_test_a gauge\n"), "{text}");
        let samples = read(&text).unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(
            samples[0].labels,
            vec![("rule".to_string(), "x\"y\\z\nw".to_string())]
        );
        assert_eq!(samples[1].value, 1.5);
        assert_eq!(samples[2].labels.len(), 2);
    }

    #[test]
    fn the_reader_refuses_broken_text() {
        for bad in [
            "x 1\n",
            "# HELP a h\na 1\n",
            "# HELP a h\n# TYPE a gauge\na{l=\"v} 1\n",
            "# HELP a h\n# TYPE a gauge\na{l=\"\\t\"} 1\n",
            "# HELP a h\n# TYPE a gauge\na one\n",
            "# HELP a h\n# TYPE a gauge\n# HELP a h\n# TYPE a gauge\n",
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }
}
