//! Strings that come from the sandbox (file names, link targets, comm, command lines) are bytes,
//! not necessarily UTF-8, and may hold anything: terminal escapes, newlines, fake headers.
//!
//! In `capture.json` they are stored losslessly as text: a backslash is written `\\` and a byte
//! that is not part of valid UTF-8 is written `\xNN`; everything else as is (JSON escapes the
//! control characters). [`quote_captured`] and [`quote_raw`] render such values for people:
//! always inside double quotes, with every control, format (bidi, zero-width) and non-UTF-8
//! character as a visible escape, so a value can neither move the cursor nor start a line.

/// Lossless text form of sandbox bytes (see the module doc).
pub fn from_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// A value from `capture.json` (already in the [`from_bytes`] form: its `\\` and `\xNN` are kept
/// as they are), quoted for display.
pub fn quote_captured(s: &str) -> String {
    quote(s, true)
}

/// Any other string (e.g. from the event log), quoted for display; backslashes are doubled.
pub fn quote_raw(s: &str) -> String {
    quote(s, false)
}

/// For the supervisor's and the capture's own words (event kinds, times, the verdict message,
/// truncation notes that hold already-quoted paths): no quotes, backslashes kept, but controls
/// and format characters escaped, so even a hand-edited bundle cannot break a line.
pub fn escape_raw(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn quote(s: &str, captured: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if captured && is_capture_escape(&s[i..]) => {
                // `\\` or `\xNN`: copy the whole escape as it is.
                let len = if s[i + 1..].starts_with('\\') { 2 } else { 4 };
                out.push_str(&s[i..i + len]);
                for _ in 1..len {
                    chars.next();
                }
            }
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_capture_escape(s: &str) -> bool {
    let b = s.as_bytes();
    match b.get(1) {
        Some(b'\\') => true,
        Some(b'x') => b.len() >= 4 && b[2].is_ascii_hexdigit() && b[3].is_ascii_hexdigit(),
        _ => false,
    }
}

/// Controls (C0, DEL, C1) and the invisible format characters that reorder or hide text.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e007f}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_losslessly_and_display_escaped() {
        let raw = b"a\\b\xff\x1b[31mX\nverdict: OK\"";
        let text = from_bytes(raw);
        assert_eq!(text, "a\\\\b\\xff\x1b[31mX\nverdict: OK\"");
        let shown = quote_captured(&text);
        assert_eq!(shown, r#""a\\b\xff\u{1b}[31mX\nverdict: OK\"""#);
        assert!(!shown.contains('\n') && !shown.contains('\x1b'));
        assert_eq!(quote_raw("x\\xff\u{202e}"), r#""x\\xff\u{202e}""#);
        // A lone backslash (only a hand-edited capture.json has one) is still escaped.
        assert_eq!(quote_captured("a\\"), r#""a\\""#);
        assert_eq!(quote_captured("\\x4"), r#""\\x4""#);
        assert_eq!(escape_raw("a \"b\"\n\\\u{1b}"), "a \"b\"\\n\\\\u{1b}");
    }
}
