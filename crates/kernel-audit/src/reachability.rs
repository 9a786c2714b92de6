//! Which CVEs a process in a default watertight sandbox can reach, decided from the program files
//! of each fix against a data file of unreachable kernel source paths
//! (`data/reachability.toml`; the reasoning lives there and in docs/kernel-audit.md).

use crate::cve::CveRecord;
use crate::error::KernelAuditError;
use serde::Deserialize;

const DEFAULT_MAP: &str = include_str!("../data/reachability.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    unreachable: Vec<UnreachableRule>,
}

/// One kernel source prefix the sandbox cannot reach, with the paths under it that stay reachable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnreachableRule {
    /// The start of a source path: a directory (`net/packet/`), a family of files or one file.
    pub prefix: String,
    /// Paths under the prefix that stay reachable.
    #[serde(default)]
    pub except: Vec<String>,
    /// Why the sandbox cannot reach code under the prefix.
    pub reason: String,
}

impl UnreachableRule {
    fn covers(&self, path: &str) -> bool {
        path.starts_with(&self.prefix) && !self.except.iter().any(|e| path.starts_with(e))
    }
}

/// The verdict for one CVE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reachability {
    /// Some program file of the fix is reachable from a sandbox (or the record names none).
    Reachable,
    /// Every program file is covered; the distinct reasons, in map order.
    Unreachable(Vec<String>),
}

impl Reachability {
    /// Whether the CVE counts as reachable.
    pub fn is_reachable(&self) -> bool {
        matches!(self, Reachability::Reachable)
    }
}

/// The prefix map.
#[derive(Debug, Clone)]
pub struct ReachabilityMap {
    rules: Vec<UnreachableRule>,
}

impl ReachabilityMap {
    /// The built-in map for the default watertight sandbox.
    pub fn default_sandbox() -> Self {
        Self::from_toml(DEFAULT_MAP).expect("the built-in reachability map is valid (tested)")
    }

    /// Parses a map in the same TOML layout as the built-in one.
    pub fn from_toml(text: &str) -> Result<Self, KernelAuditError> {
        let file: MapFile =
            toml::from_str(text).map_err(|e| KernelAuditError::ReachabilityMap(e.to_string()))?;
        for rule in &file.unreachable {
            if rule.prefix.is_empty() || rule.reason.trim().is_empty() {
                return Err(KernelAuditError::ReachabilityMap(format!(
                    "every rule needs a non-empty prefix and reason (prefix `{}`)",
                    rule.prefix
                )));
            }
            if let Some(e) = rule.except.iter().find(|e| !e.starts_with(&rule.prefix)) {
                return Err(KernelAuditError::ReachabilityMap(format!(
                    "except `{e}` is not under prefix `{}`",
                    rule.prefix
                )));
            }
        }
        Ok(Self {
            rules: file.unreachable,
        })
    }

    /// The rules, in map order.
    pub fn rules(&self) -> &[UnreachableRule] {
        &self.rules
    }

    /// The rule that puts `path` out of reach, if any.
    pub fn rule_for(&self, path: &str) -> Option<&UnreachableRule> {
        self.rules.iter().find(|r| r.covers(path))
    }

    /// A CVE is unreachable only when all of its program files are; a record without program
    /// files is reachable (nothing says otherwise).
    pub fn classify(&self, cve: &CveRecord) -> Reachability {
        if cve.program_files.is_empty() {
            return Reachability::Reachable;
        }
        let mut reasons: Vec<String> = Vec::new();
        for file in &cve.program_files {
            match self.rule_for(file) {
                None => return Reachability::Reachable,
                Some(rule) => {
                    if !reasons.contains(&rule.reason) {
                        reasons.push(rule.reason.clone());
                    }
                }
            }
        }
        Reachability::Unreachable(reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cve::AffectRule;

    fn cve(files: &[&str]) -> CveRecord {
        CveRecord {
            id: "CVE-2000-1".into(),
            title: String::new(),
            cvss: None,
            program_files: files.iter().map(|s| s.to_string()).collect(),
            rule: AffectRule::default(),
        }
    }

    #[test]
    fn built_in_map_parses_and_decides() {
        let map = ReachabilityMap::default_sandbox();
        assert!(map.rules().len() > 20);
        let unreachable = |files: &[&str]| !map.classify(&cve(files)).is_reachable();
        assert!(unreachable(&["net/netfilter/nf_tables_api.c"]));
        assert!(unreachable(&[
            "net/netfilter/nf_tables_api.c",
            "include/net/netfilter/nf_tables.h"
        ]));
        assert!(unreachable(&["io_uring/io_uring.c"]));
        assert!(unreachable(&["kernel/bpf/verifier.c"]));
        assert!(unreachable(&["security/keys/keyctl.c"]));
        assert!(unreachable(&["fs/userfaultfd.c"]));
        assert!(unreachable(&["kernel/events/core.c"]));
        assert!(unreachable(&["net/packet/af_packet.c"]));
        assert!(unreachable(&["crypto/algif_hash.c"]));
        assert!(unreachable(&["drivers/gpu/drm/i915/i915_gem.c"]));
        assert!(unreachable(&["net/sched/cls_u32.c"]));
        // Reachable: anything not listed, an exception, or a mix with a reachable file.
        assert!(!unreachable(&["fs/ext4/inode.c"]));
        assert!(!unreachable(&[]));
        assert!(!unreachable(&["kernel/bpf/core.c"]));
        assert!(!unreachable(&["kernel/events/uprobes.c"]));
        assert!(!unreachable(&["drivers/tty/n_tty.c"]));
        assert!(!unreachable(&["drivers/char/random.c"]));
        assert!(!unreachable(&["net/sched/sch_generic.c"]));
        assert!(!unreachable(&[
            "net/netfilter/nf_tables_api.c",
            "net/core/dev.c"
        ]));
        // Prefixes are not substrings: drivers-like names elsewhere stay reachable.
        assert!(!unreachable(&["fs/drivers.c"]));
    }

    #[test]
    fn reasons_are_distinct_and_named() {
        let map = ReachabilityMap::default_sandbox();
        match map.classify(&cve(&[
            "net/netfilter/nft_set_rbtree.c",
            "net/netfilter/nft_set_hash.c",
            "io_uring/rw.c",
        ])) {
            Reachability::Unreachable(reasons) => {
                assert_eq!(reasons.len(), 2);
                assert!(reasons[0].contains("CAP_NET_ADMIN"));
                assert!(reasons[1].contains("io_uring"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_bad_maps() {
        assert!(ReachabilityMap::from_toml("unreachable = 3").is_err());
        assert!(ReachabilityMap::from_toml(
            "[[unreachable]]\nprefix = \"net/\"\nexcept = [\"fs/\"]\nreason = \"x\""
        )
        .is_err());
        assert!(
            ReachabilityMap::from_toml("[[unreachable]]\nprefix = \"\"\nreason = \"x\"").is_err()
        );
        assert!(ReachabilityMap::from_toml(
            "[[unreachable]]\nprefix = \"a/\"\nreason = \"x\"\nbogus = 1"
        )
        .is_err());
    }
}
