//! Renderings of a [`KernelReport`](crate::report::KernelReport): one module per output format.

mod json;
mod prometheus;
mod sarif;
mod table;

use crate::report::KernelReport;

/// An output format of `watertight audit kernel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned text for people.
    Table,
    /// The report as one JSON document.
    Json,
    /// SARIF 2.1.0 for code-scanning dashboards.
    Sarif,
    /// Prometheus text exposition format (node-exporter textfile collector).
    Prometheus,
}

impl Format {
    pub fn parse(text: &str) -> Option<Format> {
        Some(match text.to_ascii_lowercase().as_str() {
            "table" => Format::Table,
            "json" => Format::Json,
            "sarif" => Format::Sarif,
            "prometheus" | "prom" => Format::Prometheus,
            _ => return None,
        })
    }
}

/// Renders the report; the text ends with a newline.
pub fn render(report: &KernelReport, format: Format) -> String {
    match format {
        Format::Table => table::render(report),
        Format::Json => json::render(report),
        Format::Sarif => sarif::render(report),
        Format::Prometheus => prometheus::render(report),
    }
}
