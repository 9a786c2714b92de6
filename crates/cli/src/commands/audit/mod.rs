//! `watertight audit ...`: one module per source.

pub mod docker;
pub mod fleet;
pub mod host;
pub mod k8s;
pub mod kernel;
pub mod oci;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Audit this node, live: every workload's isolation from /proc.
    Host(host::Args),
    /// Audit Kubernetes YAML (files or directories) against Pod Security Standards and more.
    K8s(k8s::Args),
    /// Audit the JSON output of `docker inspect`.
    Docker(docker::Args),
    /// Audit an OCI runtime bundle's config.json.
    Oci(oci::Args),
    /// Merge many nodes' JSON reports into one summary.
    Fleet(fleet::Args),
    /// Which published kernel CVEs affect this kernel, and its hardening posture.
    Kernel(kernel::Args),
}

pub fn run(cmd: Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Host(a) => host::run(a),
        Command::K8s(a) => k8s::run(a),
        Command::Docker(a) => docker::run(a),
        Command::Oci(a) => oci::run(a),
        Command::Fleet(a) => fleet::run(a),
        Command::Kernel(a) => kernel::run(a),
    }
}
