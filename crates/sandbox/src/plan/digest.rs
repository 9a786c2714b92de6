//! The plan's digest: a sha256 of the policy a sandbox runs under, so an operator can ask which
//! running sandboxes (and which verdicts, event logs, evidence bundles) came from a policy that
//! has since changed. It covers what decides the sandbox's isolation and limits: the effective
//! profile (file plus flags), the compiled seccomp program and its flags, and the integrity
//! inputs (manifest and key contents). It leaves out what changes from run to run under one
//! policy: the command, its environment, the caller's working directory, secrets' contents.
//!
//! Canonical encoding: JSON with object keys sorted, no whitespace, numbers as serde_json writes
//! them; the digest is `sha256:` and 64 lowercase hex digits.

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use watertight_seccomp::CompiledFilter;

use crate::error::Error;
use crate::layers::integrity::IntegrityRequest;
use crate::profile::Profile;

/// `sha256:<hex>` of a plan's canonical policy encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PlanDigest(String);

/// Bumped when the encoding below changes meaning, so old and new digests never collide.
const ENCODING: u32 = 1;

/// What of exec-time integrity a digest covers: the manifest's and the key's contents (read
/// when the plan is built, as verification reads them).
#[derive(Debug, Clone)]
pub struct IntegrityInputs {
    manifest_sha256: String,
    pubkey_sha256: String,
    allow_weaker: bool,
}

impl IntegrityInputs {
    /// Hashes the files `req` names.
    pub fn read(req: &IntegrityRequest) -> Result<IntegrityInputs, Error> {
        Ok(IntegrityInputs {
            manifest_sha256: file_sha256(&req.manifest)?,
            pubkey_sha256: file_sha256(&req.pubkey)?,
            allow_weaker: req.allow_weaker,
        })
    }
}

impl PlanDigest {
    /// The digest of the policy made of these parts.
    pub fn of(
        profile: &Profile,
        filter: &CompiledFilter,
        integrity: Option<&IntegrityInputs>,
    ) -> PlanDigest {
        let integrity = match integrity {
            None => serde_json::Value::Null,
            Some(i) => json!({
                "manifest_sha256": i.manifest_sha256,
                "pubkey_sha256": i.pubkey_sha256,
                "allow_weaker": i.allow_weaker,
            }),
        };
        // Bind paths come from the command line as bytes (not always UTF-8, which serde_json
        // refuses): they go in as lossless text, the rest of the profile as it serializes.
        let mut rest = profile.clone();
        let binds: Vec<serde_json::Value> = std::mem::take(&mut rest.binds)
            .iter()
            .map(|b| {
                json!({
                    "source": lossless(&b.source),
                    "target": lossless(&b.target),
                    "read_only": b.read_only,
                })
            })
            .collect();
        let rest = profile_encoding(&rest);
        let mut policy = json!({
            "encoding": ENCODING,
            "profile": rest,
            "binds": binds,
            "seccomp": {
                "flags": filter.flags(),
                "program_sha256": hex(&Sha256::digest(filter.program_bytes())),
            },
            "integrity": integrity,
        });
        policy.sort_all_objects();
        // Plain data (strings, numbers, maps with string keys): it always encodes.
        let bytes = serde_json::to_vec(&policy).expect("a plan's policy encodes as JSON");
        PlanDigest(format!("sha256:{}", hex(&Sha256::digest(bytes))))
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PlanDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The profile (binds taken out) as the digest encodes it.
fn profile_encoding(rest: &Profile) -> serde_json::Value {
    let mut rest = serde_json::to_value(rest)
        // Any other field that is not UTF-8: its debug form, which keeps every byte.
        .unwrap_or_else(|_| serde_json::Value::String(format!("{rest:?}")));
    // A limit that is not set serializes as "none" (the word a profile file uses); this
    // encoding has it as null, as it always had.
    if let Some(limits) = rest
        .get_mut("limits")
        .and_then(serde_json::Value::as_object_mut)
    {
        for v in limits.values_mut() {
            if v == crate::profile::NO_LIMIT {
                *v = serde_json::Value::Null;
            }
        }
    }
    rest
}

fn file_sha256(path: &std::path::Path) -> Result<String, Error> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    Ok(hex(&Sha256::digest(bytes)))
}

fn lossless(path: &std::path::Path) -> String {
    watertight_sys::text::lossless(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::default_profile;

    fn digest_of(profile: &Profile) -> PlanDigest {
        let filter = crate::layers::seccomp::compile(&profile.seccomp, false, false).unwrap();
        PlanDigest::of(profile, &filter, None)
    }

    #[test]
    fn the_same_policy_gives_the_same_digest() {
        let a = digest_of(&default_profile());
        assert_eq!(a, digest_of(&default_profile()));
        assert!(a.as_str().starts_with("sha256:") && a.as_str().len() == 7 + 64);
    }

    #[test]
    fn any_change_of_policy_changes_the_digest() {
        let base = digest_of(&default_profile());
        let mut memory = default_profile();
        memory.limits.memory = Some(crate::size::Size::mib(100));
        let mut net = default_profile();
        net.namespaces.net = false;
        let mut kill = default_profile();
        kill.seccomp.on_violation = crate::profile::OnViolation::Kill;
        for changed in [memory, net, kill] {
            assert_ne!(digest_of(&changed), base);
        }
    }

    #[test]
    fn a_limit_that_is_not_set_is_null_in_the_encoding() {
        // Encoding 1 has had null for an unset limit since before profiles wrote "none".
        let limits = &profile_encoding(&default_profile())["limits"];
        assert_eq!(limits["cpus"], serde_json::Value::Null);
        assert_eq!(limits["stack"], serde_json::Value::Null);
        assert_eq!(limits["memory"], "512M");
        assert_eq!(limits["pids"], 128);
    }

    #[test]
    fn a_bind_that_is_not_utf8_has_a_digest_of_its_own() {
        use std::os::unix::ffi::OsStrExt;
        let with = |bytes: &[u8]| {
            let mut p = default_profile();
            p.binds.push(crate::profile::Bind {
                source: std::ffi::OsStr::from_bytes(bytes).into(),
                target: "/data".into(),
                read_only: true,
            });
            digest_of(&p)
        };
        assert_ne!(with(b"/srv/\xff"), with(b"/srv/\xfe"));
        assert_ne!(with(b"/srv/\xff"), digest_of(&default_profile()));
    }
}
