//! Linux capabilities as bit sets, named as `capabilities(7)` names them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Capability names by number (`CAP_` prefix omitted), as of Linux 6.x (`cap_last_cap` = 40).
pub const CAPABILITY_NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The highest capability number this build knows by name.
pub const LAST_KNOWN_CAP: u8 = (CAPABILITY_NAMES.len() - 1) as u8;

/// A capability name that is not one of [`CAPABILITY_NAMES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCapability(pub String);

impl fmt::Display for UnknownCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown capability {:?} (expected a capabilities(7) name such as CAP_NET_ADMIN)",
            self.0
        )
    }
}

impl std::error::Error for UnknownCapability {}

/// A set of capabilities; bit N is capability number N. Serialized as a list of `CAP_*` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
#[serde(into = "Vec<String>", try_from = "Vec<String>")]
pub struct CapSet(pub u64);

impl CapSet {
    /// The set with no capability.
    pub const EMPTY: CapSet = CapSet(0);

    /// Every capability numbered 0..=`last_cap`.
    pub fn full(last_cap: u8) -> CapSet {
        let last = last_cap.min(63);
        CapSet(if last == 63 {
            u64::MAX
        } else {
            (1u64 << (last + 1)) - 1
        })
    }

    /// Parses one capability name (`SYS_ADMIN`, `CAP_SYS_ADMIN`, any case) to its number.
    pub fn number_of(name: &str) -> Result<u8, UnknownCapability> {
        let upper = name.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        if let Some(i) = CAPABILITY_NAMES.iter().position(|n| *n == bare) {
            return Ok(i as u8);
        }
        // Numbered capabilities newer than this build, as `CAP_41`.
        match bare.parse::<u8>() {
            Ok(n) if n < 64 => Ok(n),
            _ => Err(UnknownCapability(name.to_string())),
        }
    }

    /// A set from names; `ALL` means every capability this build knows.
    pub fn from_names<I, S>(names: I) -> Result<CapSet, UnknownCapability>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = CapSet::EMPTY;
        for name in names {
            let name = name.as_ref();
            if name.trim().eq_ignore_ascii_case("ALL")
                || name.trim().eq_ignore_ascii_case("CAP_ALL")
            {
                set = set.union(CapSet::full(LAST_KNOWN_CAP));
            } else {
                set.insert(CapSet::number_of(name)?);
            }
        }
        Ok(set)
    }

    /// Whether capability number `cap` is in the set.
    pub fn contains(self, cap: u8) -> bool {
        cap < 64 && self.0 & (1u64 << cap) != 0
    }

    /// Whether the capability named `name` (`CAP_SYS_ADMIN` or `sys_admin`) is in the set.
    pub fn contains_name(self, name: &str) -> bool {
        CapSet::number_of(name).is_ok_and(|n| self.contains(n))
    }

    /// Adds capability number `cap` (numbers above 63 are ignored).
    pub fn insert(&mut self, cap: u8) {
        if cap < 64 {
            self.0 |= 1u64 << cap;
        }
    }

    /// Capabilities in either set.
    pub fn union(self, other: CapSet) -> CapSet {
        CapSet(self.0 | other.0)
    }

    /// Capabilities in this set and not in `other`.
    pub fn difference(self, other: CapSet) -> CapSet {
        CapSet(self.0 & !other.0)
    }

    /// Whether the set holds no capability.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether the set holds every capability up to `last_cap` (the kernel's
    /// `/proc/sys/kernel/cap_last_cap`): the subject is as strong as root on the host.
    pub fn is_full(self, last_cap: u8) -> bool {
        let full = CapSet::full(last_cap);
        self.0 & full.0 == full.0
    }

    /// `CAP_*` names in number order.
    pub fn names(self) -> Vec<String> {
        (0u8..64)
            .filter(|n| self.contains(*n))
            .map(|n| match CAPABILITY_NAMES.get(n as usize) {
                Some(name) => format!("CAP_{name}"),
                None => format!("CAP_{n}"),
            })
            .collect()
    }
}

impl From<CapSet> for Vec<String> {
    fn from(set: CapSet) -> Self {
        set.names()
    }
}

impl TryFrom<Vec<String>> for CapSet {
    type Error = UnknownCapability;
    fn try_from(names: Vec<String>) -> Result<Self, Self::Error> {
        CapSet::from_names(names)
    }
}

/// A subject's capabilities. Live sources fill the kernel's sets; static sources fill what the
/// configuration adds and drops and the effective set that results from the runtime's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capabilities {
    /// The effective set: what the subject can use now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<CapSet>,
    /// The permitted set: what it can make effective.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permitted: Option<CapSet>,
    /// The bounding set: the most it can ever gain through execve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounding: Option<CapSet>,
    /// Capabilities the configuration adds to the runtime's default set, as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
    /// Capabilities the configuration drops, as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// The kernel's `cap_last_cap` the sets were measured against (live sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cap: Option<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_every_spelling() {
        assert_eq!(CapSet::number_of("SYS_ADMIN").unwrap(), 21);
        assert_eq!(CapSet::number_of("cap_sys_admin").unwrap(), 21);
        assert_eq!(CapSet::number_of("CAP_BPF").unwrap(), 39);
        assert!(CapSet::number_of("CAP_FLY").is_err());
    }

    #[test]
    fn full_means_every_cap_up_to_last() {
        let root_here = CapSet(0x1fffeffffff); // every cap but SYS_RESOURCE
        assert!(!root_here.is_full(40));
        assert!(CapSet(0x1ffffffffff).is_full(40));
        assert!(CapSet::from_names(["ALL"]).unwrap().is_full(40));
        assert!(!CapSet::from_names(["SYS_ADMIN"]).unwrap().is_full(40));
    }

    #[test]
    fn serializes_as_names() {
        let set = CapSet::from_names(["NET_RAW", "CHOWN"]).unwrap();
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"["CAP_CHOWN","CAP_NET_RAW"]"#);
        assert_eq!(serde_json::from_str::<CapSet>(&json).unwrap(), set);
    }
}
