//! How a [`KernelReport`](crate::report::KernelReport) reads in each format: its rows for the
//! shared SARIF builder and `--fail-on`, its table and its metric families. The writers
//! themselves (and JSON) are `watertight-report`'s.

pub(crate) mod prometheus;
pub(crate) mod sarif;
pub(crate) mod table;
