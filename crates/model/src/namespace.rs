//! Namespaces: for each kind, whether the workload shares it with the host.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A Linux namespace kind, named as in `/proc/PID/ns/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceKind {
    /// Network.
    Net,
    /// Process ids.
    Pid,
    /// System V IPC and POSIX message queues.
    Ipc,
    /// Host name and domain name.
    Uts,
    /// Mounts.
    Mnt,
    /// User and group ids, and the capabilities over the namespace.
    User,
    /// The cgroup root.
    Cgroup,
    /// Boot and monotonic clocks.
    Time,
}

impl NamespaceKind {
    /// Every kind, in a fixed order.
    pub const ALL: [NamespaceKind; 8] = [
        NamespaceKind::Net,
        NamespaceKind::Pid,
        NamespaceKind::Ipc,
        NamespaceKind::Uts,
        NamespaceKind::Mnt,
        NamespaceKind::User,
        NamespaceKind::Cgroup,
        NamespaceKind::Time,
    ];

    /// The file name under `/proc/PID/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            NamespaceKind::Net => "net",
            NamespaceKind::Pid => "pid",
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::Uts => "uts",
            NamespaceKind::Mnt => "mnt",
            NamespaceKind::User => "user",
            NamespaceKind::Cgroup => "cgroup",
            NamespaceKind::Time => "time",
        }
    }

    /// Words for people ("network", "PID", ...).
    pub fn describe(self) -> &'static str {
        match self {
            NamespaceKind::Net => "network",
            NamespaceKind::Pid => "PID",
            NamespaceKind::Ipc => "IPC",
            NamespaceKind::Uts => "UTS (hostname)",
            NamespaceKind::Mnt => "mount",
            NamespaceKind::User => "user",
            NamespaceKind::Cgroup => "cgroup",
            NamespaceKind::Time => "time",
        }
    }
}

impl fmt::Display for NamespaceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.proc_name())
    }
}

impl FromStr for NamespaceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "net" | "network" => NamespaceKind::Net,
            "pid" => NamespaceKind::Pid,
            "ipc" => NamespaceKind::Ipc,
            "uts" => NamespaceKind::Uts,
            "mnt" | "mount" => NamespaceKind::Mnt,
            "user" => NamespaceKind::User,
            "cgroup" => NamespaceKind::Cgroup,
            "time" => NamespaceKind::Time,
            other => return Err(format!("unknown namespace kind {other:?}")),
        })
    }
}

/// Whether one namespace is the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceState {
    /// The same namespace as the host reference.
    Shared,
    /// A namespace of its own (or another workload's), not the host's.
    Isolated,
    /// Could not be determined (reference unreadable, source silent).
    #[default]
    Unknown,
}

/// The state of every namespace kind; kinds never set read as [`NamespaceState::Unknown`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Namespaces(BTreeMap<NamespaceKind, NamespaceState>);

impl Namespaces {
    /// All kinds in one state.
    pub fn all(state: NamespaceState) -> Self {
        Namespaces(NamespaceKind::ALL.iter().map(|k| (*k, state)).collect())
    }

    /// The state of one kind (unknown when not recorded).
    pub fn get(&self, kind: NamespaceKind) -> NamespaceState {
        self.0.get(&kind).copied().unwrap_or_default()
    }

    /// Records the state of one kind.
    pub fn set(&mut self, kind: NamespaceKind, state: NamespaceState) {
        self.0.insert(kind, state);
    }

    /// Kinds in the given state, in a stable order.
    pub fn kinds_in(&self, state: NamespaceState) -> impl Iterator<Item = NamespaceKind> + '_ {
        NamespaceKind::ALL
            .into_iter()
            .filter(move |k| self.get(*k) == state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_kinds_are_unknown_never_isolated() {
        let ns = Namespaces::default();
        for kind in NamespaceKind::ALL {
            assert_eq!(ns.get(kind), NamespaceState::Unknown);
        }
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in NamespaceKind::ALL {
            assert_eq!(kind.proc_name().parse::<NamespaceKind>().unwrap(), kind);
        }
        assert!("bogus".parse::<NamespaceKind>().is_err());
    }
}
