//! Bytes from the caller or the sandbox (file names, arguments, paths, syscall strings) shown to
//! people or stored as text. Such bytes need not be UTF-8 and may hold anything: terminal escape
//! sequences, newlines that start a fake log line, bidi overrides that reorder one.
//!
//! - [`quote`]: for a human-readable message. Always in double quotes; `"` and `\` are
//!   backslash-escaped; `\n`, `\t`, `\r` by name; any other ASCII control byte and any byte that is
//!   not part of valid UTF-8 as `\xNN` (one byte each); other control and invisible format
//!   characters (C1, bidi, zero-width) as `\u{NNNN}`. The result is one line of visible text.
//! - [`lossless`]: for text that must give the bytes back (JSON fields): `\` is written `\\` and
//!   a byte that is not part of valid UTF-8 is written `\xNN`; everything else as is (JSON escapes
//!   the control characters). Decoding: `\\` is one backslash, `\xNN` one byte.
//! - [`escape_controls`]: a last line of defence for a whole message that may embed such values
//!   unquoted: controls and format characters escaped as in [`quote`], nothing else changed.
//!
//! Pure functions (no syscalls): here so that every crate that prints such values can share
//! them (all of watertight's crates that run or inspect sandboxes depend on this one).

use std::borrow::Cow;
use std::fmt::Write;

/// `bytes` as one quoted line of visible text (see the module doc).
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c => push_escaped(&mut out, c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

/// `bytes` as text from which they can be recovered exactly (see the module doc).
pub fn lossless(bytes: &[u8]) -> String {
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
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// The bytes [`lossless`] was given; None if `s` is not in that form.
pub fn from_lossless(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hex = std::str::from_utf8(b.get(i + 2..i + 4)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 4;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// `s` with every control and invisible format character made visible; borrowed when there is
/// none (the common case costs no allocation).
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if c.is_ascii_control() => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if needs_escape(c) => {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
        c => out.push(c),
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
    fn quote_makes_every_byte_visible_on_one_line() {
        let raw = b"a.out\n\x1b[31mverdict: OK\"\\\xff\xfe\x7f\xc2\x9b\xe2\x80\xaeok";
        let q = quote(raw);
        assert_eq!(
            q,
            r#""a.out\n\x1b[31mverdict: OK\"\\\xff\xfe\x7f\u{009b}\u{202e}ok""#
        );
        assert!(q.chars().all(|c| !needs_escape(c)));
        assert_eq!(quote("plain/é".as_bytes()), "\"plain/é\"");
    }

    #[test]
    fn lossless_round_trips_any_bytes() {
        for raw in [
            &b"/tmp/\xff\xfe"[..],
            b"a\\xff",
            b"\\",
            b"\x1b[0m\n",
            "é\u{202e}".as_bytes(),
            b"",
        ] {
            let text = lossless(raw);
            assert_eq!(from_lossless(&text).as_deref(), Some(raw), "{text}");
        }
        assert_eq!(lossless(b"/tmp/\xff"), "/tmp/\\xff");
        assert_eq!(lossless(b"a\\xff"), "a\\\\xff");
        assert_eq!(from_lossless("\\q"), None);
        assert_eq!(from_lossless("\\x4"), None);
    }

    #[test]
    fn escape_controls_leaves_clean_text_borrowed() {
        assert!(matches!(
            escape_controls("cannot execute \"x\": not found"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls("a\nb\x1b[1m\u{202e}\\"),
            "a\\nb\\x1b[1m\\u{202e}\\"
        );
    }
}
