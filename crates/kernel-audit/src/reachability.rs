//! Which CVEs a process in a watertight sandbox can reach, per isolation tier, decided from the
//! program files of each fix against a data file per tier:
//! - namespaces (`data/reachability.toml`): a list of kernel source paths the default namespace
//!   sandbox cannot reach; everything else is reachable.
//! - gvisor (`data/reachability-gvisor.toml`) and vm (`data/reachability-vm.toml`): the other way
//!   round, a list of the paths the tier's host-side processes (runsc's Sentry and Gofer; QEMU and
//!   KVM) still drive on the guest's behalf; everything else is out of reach.
//!
//! The reasoning lives in the data files and in docs/kernel-audit.md.

use crate::cve::CveRecord;
use crate::error::KernelAuditError;
use serde::{Deserialize, Serialize};

const NAMESPACES_MAP: &str = include_str!("../data/reachability.toml");
const GVISOR_MAP: &str = include_str!("../data/reachability-gvisor.toml");
const VM_MAP: &str = include_str!("../data/reachability-vm.toml");

/// The isolation tiers `watertight run --isolation` offers, by the boundary they put between the
/// workload and the host kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IsolationTier {
    /// Namespaces, seccomp, capabilities: the workload's system calls run in the host kernel.
    Namespaces,
    /// gVisor: the workload's system calls run in runsc's Sentry, a kernel in user space; the
    /// host kernel sees only what the Sentry and Gofer call.
    Gvisor,
    /// A virtual machine with its own kernel: the host kernel sees KVM exits and what QEMU's
    /// device models do on the guest's behalf.
    Vm,
}

impl IsolationTier {
    /// Every tier, in the order reports show them.
    pub const ALL: [IsolationTier; 3] = [
        IsolationTier::Namespaces,
        IsolationTier::Gvisor,
        IsolationTier::Vm,
    ];

    /// The name `--isolation` and the JSON use.
    pub fn as_str(self) -> &'static str {
        match self {
            IsolationTier::Namespaces => "namespaces",
            IsolationTier::Gvisor => "gvisor",
            IsolationTier::Vm => "vm",
        }
    }

    /// How reports name the tier in a sentence.
    pub fn describe(self) -> &'static str {
        match self {
            IsolationTier::Namespaces => "a default watertight sandbox",
            IsolationTier::Gvisor => "the gVisor tier",
            IsolationTier::Vm => "the VM tier",
        }
    }
}

impl std::fmt::Display for IsolationTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for IsolationTier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IsolationTier::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown isolation `{s}`: use namespaces, gvisor or vm"))
    }
}

/// One value per tier, serialized as an object keyed by tier name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PerTier<T> {
    /// A default `watertight run`: namespaces, seccomp, no capabilities.
    pub namespaces: T,
    /// `watertight run --isolation gvisor`.
    pub gvisor: T,
    /// `watertight run --isolation vm`.
    pub vm: T,
}

impl<T> PerTier<T> {
    /// Builds one value per tier.
    pub fn from_fn(mut f: impl FnMut(IsolationTier) -> T) -> Self {
        PerTier {
            namespaces: f(IsolationTier::Namespaces),
            gvisor: f(IsolationTier::Gvisor),
            vm: f(IsolationTier::Vm),
        }
    }

    /// The value for `tier`.
    pub fn get(&self, tier: IsolationTier) -> &T {
        match tier {
            IsolationTier::Namespaces => &self.namespaces,
            IsolationTier::Gvisor => &self.gvisor,
            IsolationTier::Vm => &self.vm,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    #[serde(default)]
    unreachable: Vec<PathRule>,
    #[serde(default)]
    reachable: Vec<PathRule>,
    /// For a `reachable` map: why everything it does not list is out of reach.
    outside: Option<String>,
}

/// One kernel source prefix with the paths under it that the rule does not cover.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathRule {
    /// The start of a source path: a directory (`net/packet/`), a family of files or one file.
    pub prefix: String,
    /// Paths under the prefix that the rule does not cover.
    #[serde(default)]
    pub except: Vec<String>,
    /// Cover only files directly in the prefix directory, not its subdirectories (`fs/` top
    /// level is the VFS core; its subdirectories are individual filesystems).
    #[serde(default)]
    pub top_level: bool,
    /// Why code under the prefix is out of reach (an `unreachable` rule) or still reached (a
    /// `reachable` rule).
    pub reason: String,
}

/// The rule of the namespace map (the name it has always had).
pub type UnreachableRule = PathRule;

impl PathRule {
    fn covers(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix(self.prefix.as_str()) else {
            return false;
        };
        let below_top = self.top_level && rest.contains('/');
        let excepted = self.except.iter().any(|e| path.starts_with(e));
        !below_top && !excepted
    }
}

/// The verdict for one CVE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reachability {
    /// Some program file of the fix is reachable from a sandbox (or the record names none).
    Reachable,
    /// Every program file is out of reach; the distinct reasons, in map order.
    Unreachable(Vec<String>),
}

impl Reachability {
    /// Whether the CVE counts as reachable.
    pub fn is_reachable(&self) -> bool {
        matches!(self, Reachability::Reachable)
    }
}

#[derive(Debug, Clone)]
enum Rules {
    /// Listed paths are out of reach; the rest is reachable (the namespace sandbox).
    Unreachable(Vec<PathRule>),
    /// Listed paths are reachable; the rest is out of reach for the one reason given.
    Reachable {
        rules: Vec<PathRule>,
        outside: String,
    },
}

/// The prefix map of one tier.
#[derive(Debug, Clone)]
pub struct ReachabilityMap {
    rules: Rules,
}

impl ReachabilityMap {
    /// The built-in map for the default watertight (namespace) sandbox.
    pub fn default_sandbox() -> Self {
        Self::for_tier(IsolationTier::Namespaces)
    }

    /// The built-in map for `tier`.
    pub fn for_tier(tier: IsolationTier) -> Self {
        let text = match tier {
            IsolationTier::Namespaces => NAMESPACES_MAP,
            IsolationTier::Gvisor => GVISOR_MAP,
            IsolationTier::Vm => VM_MAP,
        };
        Self::from_toml(text).expect("the built-in reachability maps are valid (tested)")
    }

    /// Parses a map in the layout of the built-in ones: either `[[unreachable]]` rules, or
    /// `[[reachable]]` rules with an `outside` reason.
    pub fn from_toml(text: &str) -> Result<Self, KernelAuditError> {
        let file: MapFile =
            toml::from_str(text).map_err(|e| KernelAuditError::ReachabilityMap(e.to_string()))?;
        let bad = |m: String| Err(KernelAuditError::ReachabilityMap(m));
        for rule in file.unreachable.iter().chain(&file.reachable) {
            if rule.prefix.is_empty() || rule.reason.trim().is_empty() {
                return bad(format!(
                    "every rule needs a non-empty prefix and reason (prefix `{}`)",
                    rule.prefix
                ));
            }
            if let Some(e) = rule.except.iter().find(|e| !e.starts_with(&rule.prefix)) {
                return bad(format!(
                    "except `{e}` is not under prefix `{}`",
                    rule.prefix
                ));
            }
        }
        let rules = match (
            file.unreachable.is_empty(),
            file.reachable.is_empty(),
            file.outside,
        ) {
            (false, true, None) => Rules::Unreachable(file.unreachable),
            (true, false, Some(outside)) if !outside.trim().is_empty() => Rules::Reachable {
                rules: file.reachable,
                outside,
            },
            (true, false, _) => {
                return bad("a [[reachable]] map needs a non-empty `outside` reason".into())
            }
            (true, true, _) => return bad("the map has no rules".into()),
            (false, false, _) => {
                return bad(
                    "a map lists either [[unreachable]] or [[reachable]] rules, not both".into(),
                )
            }
            (false, true, Some(_)) => return bad("`outside` belongs to a [[reachable]] map".into()),
        };
        Ok(Self { rules })
    }

    /// The rules, in map order.
    pub fn rules(&self) -> &[PathRule] {
        match &self.rules {
            Rules::Unreachable(rules) | Rules::Reachable { rules, .. } => rules,
        }
    }

    /// Whether the map lists reachable paths (the rest out of reach) rather than unreachable ones.
    pub fn lists_reachable(&self) -> bool {
        matches!(self.rules, Rules::Reachable { .. })
    }

    /// The rule that covers `path`, if any.
    pub fn rule_for(&self, path: &str) -> Option<&PathRule> {
        self.rules().iter().find(|r| r.covers(path))
    }

    /// Decides one CVE.
    ///
    /// An `unreachable` map: the CVE is unreachable only when all of its program files are
    /// covered. A `reachable` map: the CVE is reachable when any program file is covered; headers
    /// and files outside the kernel proper (`tools/`, `Documentation/`, ...) decide nothing
    /// there, since a header's users cannot be told apart, unless they are all the fix has (then it
    /// is reachable). A record without program files is reachable (nothing says otherwise).
    pub fn classify(&self, cve: &CveRecord) -> Reachability {
        if cve.program_files.is_empty() {
            return Reachability::Reachable;
        }
        match &self.rules {
            Rules::Unreachable(_) => {
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
            Rules::Reachable { outside, .. } => {
                let deciding: Vec<&String> = cve
                    .program_files
                    .iter()
                    .filter(|f| !decides_nothing(f))
                    .collect();
                if deciding.is_empty() || deciding.iter().any(|f| self.rule_for(f).is_some()) {
                    Reachability::Reachable
                } else {
                    Reachability::Unreachable(vec![outside.clone()])
                }
            }
        }
    }
}

/// Files that do not tell which kernel code a fix changes: headers (included by every user of
/// the interface they declare) and files outside the kernel build.
fn decides_nothing(path: &str) -> bool {
    const OUTSIDE_KERNEL: [&str; 6] = [
        "tools/",
        "Documentation/",
        "scripts/",
        "samples/",
        "LICENSES/",
        "MAINTAINERS",
    ];
    path.ends_with(".h") || OUTSIDE_KERNEL.iter().any(|p| path.starts_with(p))
}

/// The built-in map of every tier.
#[derive(Debug, Clone)]
pub struct TierMaps {
    maps: PerTier<ReachabilityMap>,
}

impl TierMaps {
    /// The built-in maps.
    pub fn built_in() -> Self {
        TierMaps {
            maps: PerTier::from_fn(ReachabilityMap::for_tier),
        }
    }

    /// The map of `tier`.
    pub fn get(&self, tier: IsolationTier) -> &ReachabilityMap {
        self.maps.get(tier)
    }

    /// One CVE decided for every tier.
    pub fn classify(&self, cve: &CveRecord) -> PerTier<Reachability> {
        PerTier::from_fn(|tier| self.get(tier).classify(cve))
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
    fn tier_maps_parse_and_decide() {
        let maps = TierMaps::built_in();
        let reach = |tier, files: &[&str]| maps.get(tier).classify(&cve(files)).is_reachable();
        use IsolationTier::{Gvisor, Namespaces, Vm};
        // The seed's route to host root: out of reach for every tier.
        for tier in IsolationTier::ALL {
            assert!(!reach(tier, &["net/netfilter/nf_tables_api.c"]), "{tier}");
        }
        // A socket family the namespace sandbox allows; gVisor and the VM serve it themselves.
        assert!(reach(Namespaces, &["net/ipv4/tcp.c"]));
        assert!(!reach(Gvisor, &["net/ipv4/tcp.c"]));
        assert!(!reach(Vm, &["net/ipv4/tcp.c"]));
        // ptrace: gVisor's ptrace platform drives it on the host; a VM's QEMU does not.
        assert!(reach(Gvisor, &["kernel/ptrace.c"]));
        assert!(!reach(Vm, &["kernel/ptrace.c"]));
        // KVM: only the VM tier.
        assert!(!reach(Namespaces, &["arch/x86/kvm/x86.c"]));
        assert!(!reach(Gvisor, &["arch/x86/kvm/x86.c"]));
        assert!(reach(Vm, &["arch/x86/kvm/x86.c"]));
        // Memory management and the root's filesystem: every tier.
        for tier in IsolationTier::ALL {
            assert!(reach(tier, &["mm/huge_memory.c"]), "{tier}");
            assert!(reach(tier, &["fs/ext4/inode.c"]), "{tier}");
            assert!(reach(tier, &["fs/namei.c"]), "{tier}");
        }
        // The VFS core is fs/ top level only: a network filesystem below it is not.
        assert!(!reach(Gvisor, &["fs/smb/client/file.c"]));
        assert!(!reach(Vm, &["fs/netfs/misc.c"]));
        assert!(!reach(Gvisor, &["fs/io_uring.c"]));
        // Headers decide nothing beside a .c file; alone they count as reachable.
        assert!(!reach(Gvisor, &["net/sctp/socket.c", "include/linux/mm.h"]));
        assert!(reach(Gvisor, &["include/net/sctp/structs.h"]));
        assert!(!reach(
            Gvisor,
            &["drivers/gpu/drm/drm_ioctl.c", "tools/testing/x.c"]
        ));
        assert!(reach(Gvisor, &[]));
        match maps.get(Gvisor).classify(&cve(&["net/sctp/socket.c"])) {
            Reachability::Unreachable(reasons) => assert!(reasons[0].contains("Sentry")),
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
        // A reachable map needs its `outside` reason, and the two kinds do not mix.
        let reachable = "[[reachable]]\nprefix = \"mm/\"\nreason = \"x\"\n";
        assert!(ReachabilityMap::from_toml(reachable).is_err());
        assert!(ReachabilityMap::from_toml(&format!("outside = \"y\"\n{reachable}")).is_ok());
        assert!(ReachabilityMap::from_toml(&format!(
            "outside = \"y\"\n{reachable}[[unreachable]]\nprefix = \"a/\"\nreason = \"x\""
        ))
        .is_err());
        assert!(ReachabilityMap::from_toml("outside = \"y\"").is_err());
    }
}
