//! Sources: each turns one kind of input into normalized [`watertight_model::Workload`]s.

pub mod docker;
pub mod host;
pub mod k8s;
pub mod oci;
