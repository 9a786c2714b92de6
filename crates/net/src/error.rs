//! Every way the guard can fail, each naming the thing at fault and how to fix it.

use std::net::IpAddr;
use std::path::PathBuf;

/// Errors from building, applying, checking or removing a bridge guard.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {reason}")]
    Bindings { path: String, reason: String },

    #[error("port {iface:?}: {reason}")]
    InvalidPort { iface: String, reason: String },

    #[error("malformed MAC address {0:?}: expected six hex octets like 02:42:ac:11:00:35")]
    InvalidMac(String),

    #[error("address {addr} is bound to both port {first:?} and port {second:?}; give each address to one port")]
    DuplicateAddress {
        addr: IpAddr,
        first: String,
        second: String,
    },

    #[error("interface name {0:?} is not usable: use 1-15 characters from A-Z a-z 0-9 _ . - @ +")]
    InvalidIfName(String),

    #[error("bridge {0:?} does not exist in this network namespace; create it (ip link add {0} type bridge) or pass the right --bridge")]
    UnknownBridge(String),

    #[error("interface {0:?} exists but is not a bridge; pass a bridge to --bridge")]
    NotABridge(String),

    #[error("port {iface:?} does not exist in this network namespace; fix the bindings or create the interface and add it to bridge {bridge:?}")]
    MissingPort { iface: String, bridge: String },

    #[error("port {iface:?} is not on bridge {bridge:?} ({actual}); run `ip link set {iface} master {bridge}` or fix the bindings")]
    PortNotOnBridge {
        iface: String,
        bridge: String,
        actual: String,
    },

    #[error("{what} needs root (CAP_NET_ADMIN); run it as root")]
    NotRoot { what: &'static str },

    #[error("the `nft` program was not found; install it (apt-get install nftables)")]
    NftMissing,

    #[error("nft refused to {action}: {stderr}")]
    Nft { action: String, stderr: String },

    #[error("cannot read the ruleset nft printed: {0}")]
    RulesetJson(String),

    #[error("netlink request failed: {action}")]
    Netlink {
        action: String,
        #[source]
        source: rtnetlink::Error,
    },

    #[error("network namespace {}: {action}", path.display())]
    Namespace {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: nix::Error,
    },

    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("sandbox port request: {0}")]
    InvalidRequest(String),
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn netlink(action: impl Into<String>, source: rtnetlink::Error) -> Self {
        Error::Netlink {
            action: action.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
