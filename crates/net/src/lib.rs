//! Per-port anti-spoofing for Linux bridges, so a container cannot impersonate its neighbours.
//!
//! - [`bindings`]: the `ports.toml` format (each port's MAC and addresses) and its validation.
//! - [`ruleset`]: the nftables `bridge` table (prerouting hook, a verdict map to one chain per
//!   port) rendered as nft script.
//! - [`guard`]: `net guard`, applying or removing that table atomically.
//! - [`check`]: `net check`, comparing the live table and neighbour caches with the bindings.
//! - [`sandbox`]: a sandbox's guarded veth port on a bridge, and static neighbour entries.
//! - [`netlink`], [`netns`], [`nft`], [`state`]: the kernel interfaces these use.

#![forbid(unsafe_code)]

pub mod bindings;
pub mod check;
pub mod error;
pub mod guard;
pub mod mac;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod ruleset;
pub mod sandbox;
pub mod state;

pub use bindings::{Bindings, PortBinding};
pub use check::{check_guard, CheckReport, Finding, FindingKind};
pub use error::{Error, Result};
pub use guard::{apply_guard, remove_guard, render_guard};
pub use ipnet::IpNet;
pub use mac::MacAddr;
pub use netns::Netns;
pub use sandbox::{
    attach_sandbox_port, install_static_neighbours, parse_static_neighbour, SandboxPort,
    SandboxPortRequest,
};
