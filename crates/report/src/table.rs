//! Aligned text tables for people, shared by every result class's table.

/// `text` on one line (newlines and carriage returns become spaces), cut to at most `max`
/// characters with the cut marked.
pub fn clip(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut out: String = one_line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Writes `header` and `rows` as left-aligned columns two spaces apart; the last column is not
/// padded and trailing blanks are trimmed.
pub fn write_rows<const N: usize>(out: &mut String, header: [&str; N], rows: &[[String; N]]) {
    let mut widths: [usize; N] = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.zip(widths).enumerate() {
            l.push_str(cell);
            if i + 1 < N {
                l.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 2));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(out, &mut header.iter().copied());
    for row in rows {
        line(out, &mut row.iter().map(String::as_str));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_cells_stay_on_one_line() {
        let mut out = String::new();
        write_rows(
            &mut out,
            ["A", "LONGER", "LAST"],
            &[
                ["xyz".into(), "1".into(), "tail".into()],
                ["q".into(), clip("two\nlines", 20), "".into()],
            ],
        );
        assert_eq!(
            out,
            "A    LONGER     LAST\nxyz  1          tail\nq    two lines\n"
        );
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
