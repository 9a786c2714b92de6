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
    watertight_sys::text::lossless(bytes)
}

/// A value from `capture.json` (already in the [`from_bytes`] form), quoted for display: the
/// bytes it stands for, every control and non-UTF-8 byte visible. A value not in that form (only
/// a hand-edited capture.json has one) is quoted as it is.
pub fn quote_captured(s: &str) -> String {
    match watertight_sys::text::from_lossless(s) {
        Some(bytes) => watertight_sys::text::quote(&bytes),
        None => quote_raw(s),
    }
}

/// Any other string (e.g. from the event log), quoted for display; backslashes are doubled.
pub fn quote_raw(s: &str) -> String {
    watertight_sys::text::quote(s.as_bytes())
}

/// For the supervisor's and the capture's own words (event kinds, times, the verdict message,
/// truncation notes that hold already-quoted paths): no quotes, backslashes kept, but controls
/// and format characters escaped, so even a hand-edited bundle cannot break a line.
pub fn escape_raw(s: &str) -> String {
    watertight_sys::text::escape_controls(s).into_owned()
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
        assert_eq!(shown, r#""a\\b\xff\x1b[31mX\nverdict: OK\"""#);
        assert!(!shown.contains('\n') && !shown.contains('\x1b'));
        assert_eq!(quote_raw("x\\xff\u{202e}"), r#""x\\xff\u{202e}""#);
        // A lone backslash (only a hand-edited capture.json has one) is still escaped.
        assert_eq!(quote_captured("a\\"), r#""a\\""#);
        assert_eq!(escape_raw("a \"b\"\n\\\u{1b}"), "a \"b\"\\n\\\\x1b");
    }
}
