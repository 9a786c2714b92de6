//! What a sandbox may use: memory (swap counted as memory), processes, CPU bandwidth and devices.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// pids.max refuses values above PID_MAX_LIMIT (4 Mi) with EINVAL.
const PIDS_MAX_LIMIT: u64 = 4 * 1024 * 1024;
/// The memory limits [`Limits::validate`] accepts, in bytes: a page at least, and what the
/// kernel's signed page counter holds at most.
pub const MEMORY_BYTES: RangeInclusive<u64> = 4096..=i64::MAX as u64;
/// The task limits [`Limits::validate`] accepts (pids.max refuses more than PID_MAX_LIMIT).
pub const PIDS_MAX: RangeInclusive<u64> = 1..=PIDS_MAX_LIMIT;
/// CFS bandwidth bounds enforced by the kernel (kernel/sched/core.c): 1 ms..1 s period, quota
/// at least 1 ms.
pub const CFS_PERIOD_US: RangeInclusive<u64> = 1_000..=1_000_000;
/// The CFS quotas [`Limits::validate`] accepts, in microseconds per period.
pub const CFS_QUOTA_US: RangeInclusive<u64> = CFS_MIN_QUOTA_US..=i64::MAX as u64 / 1000;
const CFS_MIN_QUOTA_US: u64 = 1_000;

/// Resource limits of one sandbox. `Default` is "no limits, no device policy".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Memory ceiling in bytes. Swap is not granted on top: v1 memsw = memory, v2 swap.max = 0.
    pub memory_bytes: Option<u64>,
    /// Maximum number of tasks (processes and threads).
    pub pids_max: Option<u64>,
    /// CFS bandwidth: `quota_us` of CPU time per `period_us`.
    pub cpu_quota: Option<CpuQuota>,
    /// `None`: no device policy. `Some(rules)`: deny every device except those the rules allow.
    pub devices: Option<Vec<DeviceRule>>,
}

/// CFS bandwidth limit: the sandbox's tasks together get `quota_us` of CPU time in every
/// `period_us`, then are throttled until the next period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuQuota {
    /// CPU time per period, in microseconds (at least 1 ms; above the period for more than
    /// one CPU).
    pub quota_us: u64,
    /// Length of the accounting period, in microseconds (1 ms..1 s).
    pub period_us: u64,
}

impl CpuQuota {
    /// The period [`CpuQuota::cpus`] uses: 100 ms, the kernel's default.
    pub const DEFAULT_PERIOD_US: u64 = 100_000;

    /// A quota of `cpus` whole or fractional CPUs over the default 100 ms period.
    pub fn cpus(cpus: f64) -> CpuQuota {
        let period_us = CpuQuota::DEFAULT_PERIOD_US;
        CpuQuota {
            quota_us: (cpus * period_us as f64).round().max(0.0) as u64,
            period_us,
        }
    }
}

impl Limits {
    /// Checks every value against what the kernel accepts, so bad input fails before any
    /// directory is created.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(bytes) = self.memory_bytes {
            if !MEMORY_BYTES.contains(&bytes) {
                return Err(Error::InvalidLimit {
                    what: "memory_bytes",
                    reason: format!("{bytes} is outside 4096..=2^63-1 bytes"),
                });
            }
        }
        if let Some(pids) = self.pids_max {
            if !PIDS_MAX.contains(&pids) {
                return Err(Error::InvalidLimit {
                    what: "pids_max",
                    reason: format!("{pids} is outside 1..={PIDS_MAX_LIMIT}"),
                });
            }
        }
        if let Some(cpu) = self.cpu_quota {
            if !CFS_PERIOD_US.contains(&cpu.period_us) {
                return Err(Error::InvalidLimit {
                    what: "cpu_quota.period_us",
                    reason: format!("{} is outside 1000..=1000000 microseconds", cpu.period_us),
                });
            }
            if !CFS_QUOTA_US.contains(&cpu.quota_us) {
                return Err(Error::InvalidLimit {
                    what: "cpu_quota.quota_us",
                    reason: format!(
                        "{} is below the kernel minimum of 1000 microseconds or too large",
                        cpu.quota_us
                    ),
                });
            }
        }
        if let Some(rules) = &self.devices {
            for rule in rules {
                rule.validate()?;
            }
        }
        Ok(())
    }
}

/// Which device nodes a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// Character devices (`c`).
    Char,
    /// Block devices (`b`).
    Block,
    /// Both kinds (`a`).
    All,
}

/// One allowlist entry, the same shape as an OCI `linux.resources.devices` entry with
/// `allow: true`. `None` for major/minor means any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRule {
    /// Which kind of device node the rule covers.
    pub kind: DeviceKind,
    /// Device major number; `None` matches any.
    pub major: Option<u32>,
    /// Device minor number; `None` matches any.
    pub minor: Option<u32>,
    /// Allows opening the device for reading.
    pub read: bool,
    /// Allows opening the device for writing.
    pub write: bool,
    /// Allows creating a node for the device with mknod(2).
    pub mknod: bool,
}

impl DeviceRule {
    /// A read+write (no mknod) rule for one character device.
    pub fn char_rw(major: u32, minor: u32) -> DeviceRule {
        DeviceRule {
            kind: DeviceKind::Char,
            major: Some(major),
            minor: Some(minor),
            read: true,
            write: true,
            mknod: false,
        }
    }

    /// The devices every OCI runtime grants a container: null, zero, full, random, urandom,
    /// tty, ptmx and the pty slaves (136:*), read and write.
    pub fn container_defaults() -> Vec<DeviceRule> {
        let mut rules: Vec<DeviceRule> = [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2)]
            .into_iter()
            .map(|(major, minor)| DeviceRule::char_rw(major, minor))
            .collect();
        rules.push(DeviceRule {
            minor: None,
            ..DeviceRule::char_rw(136, 0)
        });
        rules
    }

    fn validate(&self) -> Result<(), Error> {
        if !(self.read || self.write || self.mknod) {
            return Err(Error::InvalidLimit {
                what: "devices",
                reason: format!("rule {self} grants no access; set read, write or mknod"),
            });
        }
        Ok(())
    }

    /// The access string in v1 syntax (`rwm` subset).
    pub fn access(&self) -> String {
        let mut access = String::with_capacity(3);
        if self.read {
            access.push('r');
        }
        if self.write {
            access.push('w');
        }
        if self.mknod {
            access.push('m');
        }
        access
    }

    /// The lines to write to v1 `devices.allow` for this rule. `a` in v1 means "everything,
    /// any access", so a partial `All` rule is split into a char and a block rule.
    pub fn v1_allow_lines(&self) -> Vec<String> {
        let number = |n: Option<u32>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
        let line = |kind: char| {
            format!(
                "{kind} {}:{} {}",
                number(self.major),
                number(self.minor),
                self.access()
            )
        };
        match self.kind {
            DeviceKind::Char => vec![line('c')],
            DeviceKind::Block => vec![line('b')],
            DeviceKind::All
                if self.major.is_none()
                    && self.minor.is_none()
                    && self.read
                    && self.write
                    && self.mknod =>
            {
                vec!["a".to_owned()]
            }
            DeviceKind::All => vec![line('c'), line('b')],
        }
    }
}

impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
            DeviceKind::All => 'a',
        };
        let number = |n: Option<u32>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
        write!(
            f,
            "{kind} {}:{} {}",
            number(self.major),
            number(self.minor),
            self.access()
        )
    }
}

/// Parses the v1 `devices.list` / `devices.allow` syntax: `c 1:3 rwm`, `b *:* r`, or `a`
/// (everything, any access).
impl FromStr for DeviceRule {
    type Err = Error;

    fn from_str(text: &str) -> Result<DeviceRule, Error> {
        let bad = |reason: String| Error::InvalidLimit {
            what: "devices",
            reason: format!("{text:?}: {reason} (expected e.g. \"c 1:3 rwm\")"),
        };
        let mut parts = text.split_whitespace();
        let kind = match parts.next() {
            Some("c") => DeviceKind::Char,
            Some("b") => DeviceKind::Block,
            Some("a") => DeviceKind::All,
            Some(other) => return Err(bad(format!("unknown type {other:?}, use c, b or a"))),
            None => return Err(bad("empty rule".to_owned())),
        };
        let Some(numbers) = parts.next() else {
            if kind == DeviceKind::All {
                return Ok(DeviceRule {
                    kind,
                    major: None,
                    minor: None,
                    read: true,
                    write: true,
                    mknod: true,
                });
            }
            return Err(bad("missing major:minor".to_owned()));
        };
        let (major, minor) = numbers
            .split_once(':')
            .ok_or_else(|| bad(format!("{numbers:?} is not major:minor")))?;
        let number = |n: &str| -> Result<Option<u32>, Error> {
            if n == "*" {
                Ok(None)
            } else {
                n.parse::<u32>()
                    .map(Some)
                    .map_err(|_| bad(format!("{n:?} is not a device number or *")))
            }
        };
        let access = parts
            .next()
            .ok_or_else(|| bad("missing access (r, w, m)".to_owned()))?;
        if parts.next().is_some() {
            return Err(bad("trailing text".to_owned()));
        }
        let mut rule = DeviceRule {
            kind,
            major: number(major)?,
            minor: number(minor)?,
            read: false,
            write: false,
            mknod: false,
        };
        for flag in access.chars() {
            match flag {
                'r' => rule.read = true,
                'w' => rule.write = true,
                'm' => rule.mknod = true,
                other => return Err(bad(format!("access flag {other:?} is not r, w or m"))),
            }
        }
        rule.validate()?;
        Ok(rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_round_trip_through_v1_syntax() {
        for text in ["c 1:3 rwm", "b *:* r", "c 136:* rw", "a *:* m"] {
            let rule: DeviceRule = text.parse().unwrap();
            assert_eq!(rule.to_string(), text);
        }
        assert_eq!("a".parse::<DeviceRule>().unwrap().v1_allow_lines(), ["a"]);
        assert_eq!(
            "a *:* r".parse::<DeviceRule>().unwrap().v1_allow_lines(),
            ["c *:* r", "b *:* r"]
        );
    }

    #[test]
    fn bad_rules_are_refused() {
        for text in [
            "",
            "x 1:3 r",
            "c 1:3",
            "c 1-3 r",
            "c 1:3 rx",
            "c 1:3 r extra",
            "c -1:3 r",
            "c 1:3 ",
        ] {
            assert!(text.parse::<DeviceRule>().is_err(), "{text:?}");
        }
    }

    #[test]
    fn limits_are_validated() {
        assert!(Limits::default().validate().is_ok());
        let bad = [
            Limits {
                memory_bytes: Some(1),
                ..Limits::default()
            },
            Limits {
                pids_max: Some(0),
                ..Limits::default()
            },
            Limits {
                cpu_quota: Some(CpuQuota {
                    quota_us: 50_000,
                    period_us: 0,
                }),
                ..Limits::default()
            },
            Limits {
                cpu_quota: Some(CpuQuota {
                    quota_us: 10,
                    period_us: 100_000,
                }),
                ..Limits::default()
            },
        ];
        for limits in bad {
            assert!(limits.validate().is_err(), "{limits:?}");
        }
        assert_eq!(
            CpuQuota::cpus(0.5),
            CpuQuota {
                quota_us: 50_000,
                period_us: 100_000
            }
        );
    }

    #[test]
    fn limits_read_from_json() {
        let limits: Limits = serde_json::from_str(
            r#"{"memory_bytes":67108864,"pids_max":64,"cpu_quota":{"quota_us":50000,"period_us":100000},
               "devices":[{"kind":"char","major":1,"minor":3,"read":true,"write":true,"mknod":false}]}"#,
        )
        .unwrap();
        assert_eq!(limits.devices.unwrap()[0], DeviceRule::char_rw(1, 3));
        assert!(serde_json::from_str::<Limits>(r#"{"memory":1}"#).is_err());
    }
}
