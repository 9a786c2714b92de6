//! JSON output: the [`Report`] as it is, also the input format of `audit fleet`.

use super::Report;

pub fn render(report: &Report) -> String {
    // Serializing plain data structs cannot fail.
    let mut s = serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use crate::report::test_support::sample;
    use crate::Report;

    #[test]
    fn round_trips() {
        let r = sample();
        let text = super::render(&r);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["findings"][0]["rule"], "shared-host-namespace");
        assert_eq!(v["findings"][0]["namespace"], "net");
        assert_eq!(v["findings"][1]["pid"], 7);
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }
}
