//! Placeholder until its owner lands it.

#[derive(clap::Subcommand)]
pub enum Command {
    /// Not built yet.
    Todo,
}

pub fn run(_cmd: Command) -> anyhow::Result<u8> {
    anyhow::bail!("not built yet")
}
