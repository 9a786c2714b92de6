//! Landlock layer: EXECUTE allowed only beneath the verified roots and, in the sandbox
//! ([`landlock_exec_write_ruleset`]), WRITE_FILE only beneath its writable mounts: opening
//! /proc/<pid>/mem for writing (which patches code through FOLL_FORCE, ignoring page protections
//! and MDWE) is refused, with every other write beneath /proc. Reads stay unrestricted here.

use crate::{Error, Result};
use landlock::{
    path_beneath_rules, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, RulesetStatus, ABI,
};
use std::path::Path;

/// A Landlock ruleset built in the supervisor (where paths resolve) and applied in the child
/// right before `execve` with [`PreparedRuleset::restrict_self`].
pub struct PreparedRuleset {
    ruleset: RulesetCreated,
}

/// Builds the ruleset: EXECUTE only beneath `exec_roots`. Fails when the kernel lacks Landlock or
/// a root cannot be opened; nothing is applied until `restrict_self`.
pub fn landlock_exec_ruleset(exec_roots: &[&Path]) -> Result<PreparedRuleset> {
    ruleset(exec_roots, None)
}

/// Like [`landlock_exec_ruleset`], and files can be opened for writing only beneath
/// `write_roots` (the sandbox's writable mounts; their mount flags still apply). Roots that do
/// not exist are skipped: no write there, the closed side.
pub fn landlock_exec_write_ruleset(
    exec_roots: &[&Path],
    write_roots: &[&Path],
) -> Result<PreparedRuleset> {
    ruleset(exec_roots, Some(write_roots))
}

fn ruleset(exec_roots: &[&Path], write_roots: Option<&[&Path]>) -> Result<PreparedRuleset> {
    if exec_roots.is_empty() {
        return Err(Error::Landlock(
            "no exec root given; pass the verified tree".into(),
        ));
    }
    for root in exec_roots {
        std::fs::metadata(root)
            .map_err(|e| Error::Landlock(format!("exec root {}: {e}", root.display())))?;
    }
    let execute = AccessFs::Execute;
    let write = AccessFs::WriteFile;
    let handled = if write_roots.is_some() {
        execute | write
    } else {
        execute.into()
    };
    let write_roots: Vec<&Path> = write_roots
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|p| p.exists())
        .collect();
    let ruleset = Ruleset::default()
        // Execute and WriteFile exist since ABI 1; anything less than full support is a
        // refusal, not a silently weaker sandbox.
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI::V1) & handled)
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(path_beneath_rules(exec_roots, execute)))
        .and_then(|r| r.add_rules(path_beneath_rules(&write_roots, write)))
        .map_err(|e| {
            Error::Landlock(format!(
                "{e}; this kernel needs Landlock (CONFIG_SECURITY_LANDLOCK and lsm=landlock)"
            ))
        })?;
    Ok(PreparedRuleset { ruleset })
}

impl PreparedRuleset {
    /// Applies the ruleset to the calling thread (and everything it forks or execs later), with
    /// `no_new_privs`. Call it in the child, just before `execve`.
    pub fn restrict_self(self) -> Result<()> {
        let status = self
            .ruleset
            .restrict_self()
            .map_err(|e| Error::Landlock(format!("restrict_self: {e}")))?;
        match status.ruleset {
            RulesetStatus::FullyEnforced => Ok(()),
            other => Err(Error::Landlock(format!(
                "ruleset only {other:?}; refusing a weaker sandbox"
            ))),
        }
    }
}
