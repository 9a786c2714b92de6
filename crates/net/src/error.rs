//! Every way the guard can fail, each naming the thing at fault and how to fix it.

use std::net::IpAddr;
use std::path::PathBuf;

/// Errors from building, applying, checking or removing a bridge guard.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bindings file cannot be parsed or is inconsistent.
    #[error("{path}: {reason}")]
    Bindings {
        /// The file, or the namespace's path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A port binding is invalid (bad name, group MAC, no address, ...).
    #[error("port {iface:?}: {reason}")]
    InvalidPort {
        /// The port's interface name.
        iface: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Text that is not a MAC address.
    #[error("malformed MAC address {0:?}: expected six hex octets like 02:42:ac:11:00:35")]
    InvalidMac(String),

    /// One address bound to two ports: either port could then spoof the other.
    #[error("address {addr} is bound to both port {first:?} and port {second:?}; give each address to one port")]
    DuplicateAddress {
        /// The address.
        addr: IpAddr,
        /// The first port that has it.
        first: String,
        /// The second port that has it.
        second: String,
    },

    /// An interface name the kernel would refuse.
    #[error("interface name {0:?} is not usable: use 1-15 characters from A-Z a-z 0-9 _ . - @ +")]
    InvalidIfName(String),

    /// No interface of that name in this network namespace.
    #[error("bridge {0:?} does not exist in this network namespace; create it (ip link add {0} type bridge) or pass the right --bridge")]
    UnknownBridge(String),

    /// The interface named as bridge is not one.
    #[error("interface {0:?} exists but is not a bridge; pass a bridge to --bridge")]
    NotABridge(String),

    /// A bound port does not exist.
    #[error("port {iface:?} does not exist in this network namespace; fix the bindings or create the interface and add it to bridge {bridge:?}")]
    MissingPort {
        /// The port's interface name.
        iface: String,
        /// The bridge.
        bridge: String,
    },

    /// A bound port exists but is not on the bridge.
    #[error("port {iface:?} is not on bridge {bridge:?} ({actual}); run `ip link set {iface} master {bridge}` or fix the bindings")]
    PortNotOnBridge {
        /// The port's interface name.
        iface: String,
        /// The bridge.
        bridge: String,
        /// Where the port is instead (another bridge, or none).
        actual: String,
    },

    /// The caller lacks CAP_NET_ADMIN.
    #[error("{what} needs root (CAP_NET_ADMIN); run it as root")]
    NotRoot {
        /// What needed root, or what was being done.
        what: &'static str,
    },

    /// The `nft` program is not installed.
    #[error("the `nft` program was not found; install it (apt-get install nftables)")]
    NftMissing,

    /// `nft` refused a ruleset or command.
    #[error("nft refused to {action}: {stderr}")]
    Nft {
        /// What was being done.
        action: String,
        /// What `nft` printed on stderr.
        stderr: String,
    },

    /// `nft -j` printed JSON this crate cannot read.
    #[error("cannot read the ruleset nft printed: {0}")]
    RulesetJson(String),

    /// A netlink request failed.
    #[error("netlink request failed: {action}")]
    Netlink {
        /// What was being done.
        action: String,
        /// The underlying error.
        #[source]
        source: rtnetlink::Error,
    },

    /// Entering or opening a network namespace failed.
    #[error("network namespace {}: {action}", path.display())]
    Namespace {
        /// The file, or the namespace's path.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The underlying error.
        #[source]
        source: nix::Error,
    },

    /// A file operation failed.
    #[error("{what}")]
    Io {
        /// What needed root, or what was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A sandbox port request that cannot be served (bad address, name, ...).
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

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
