//! The OCI runtime-tools validation suite against watertight-runc
//! (`../shared/peers/oci-validation.sh`, which builds the Go suite once into
//! /var/cache/watertight-peers). Asserts at least the number of fully passing test programs
//! reached (docs/oci-runtime.md lists the rest and why); runc 1.1.5 passes 26 of 58 here.
//!
//! The suite checks that each config value is applied exactly as written, which the hardening
//! floor deliberately overrides (no_new_privs forced, masked paths, capabilities, devices,
//! annotations, privileged configs refused), so conformance is measured under the most
//! permissive floor runtime.toml allows (below); docs/oci-runtime.md has the default floor's
//! result too.
//!
//! The suite checks that each config value is applied exactly as written, which the hardening
//! floor deliberately overrides (no_new_privs forced, masked paths, capabilities, devices,
//! annotations, privileged configs refused), so conformance is measured under the most
//! permissive floor runtime.toml allows (below); docs/oci-runtime.md has the default floor's
//! result too.

use std::process::Command;
use watertight_testkit::{require, require_root, require_shared};

/// Programs that fully pass with watertight-runc under the permissive floor on this machine kind
/// (docs/oci-runtime.md): 26 of 58, as many as runc 1.1.5 (a different set).
const AT_LEAST: u32 = 26;

/// The floor at its most permissive: no_new_privs as configured, no second filter, every
/// capability under the ceiling, no audit trail (masked paths, the device allowlist, the
/// privileged policy and the floor's annotations stay: runtime.toml cannot turn them off).
const PERMISSIVE_FLOOR: &str = r#"version = "oci-validation"
no_new_privs = "as-configured"
[seccomp]
enabled = false
[capabilities]
ceiling = ["CAP_AUDIT_CONTROL", "CAP_AUDIT_READ", "CAP_AUDIT_WRITE", "CAP_BLOCK_SUSPEND", "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
  "CAP_FSETID", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_KILL", "CAP_LEASE", "CAP_LINUX_IMMUTABLE",
  "CAP_MAC_ADMIN", "CAP_MAC_OVERRIDE", "CAP_MKNOD", "CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST", "CAP_NET_RAW", "CAP_PERFMON", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
  "CAP_SETUID", "CAP_SYSLOG", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_CHROOT", "CAP_SYS_MODULE",
  "CAP_SYS_NICE", "CAP_SYS_PACCT", "CAP_SYS_PTRACE", "CAP_SYS_RAWIO", "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_WAKE_ALARM"]
[audit_trail]
enabled = false
"#;

#[test]
fn the_validation_suite_passes_at_least_as_many_programs_as_reached() {
    let test = "the_validation_suite_passes_at_least_as_many_programs_as_reached";
    if !require_root(test) {
        return;
    }
    let Some(script) = require_shared(test, "peers/oci-validation.sh") else {
        return;
    };
    // The suite resolves its runtime argument with readlink -f, so a symlink would be called
    // as `watertight`: a wrapper script calls `watertight oci`, the same CLI as a subcommand.
    let dir = watertight_testkit::world_readable_tempdir();
    let floor = dir.path().join("runtime.toml");
    std::fs::write(&floor, PERMISSIVE_FLOOR).unwrap();
    let wrapper = dir.path().join("watertight-runc");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {} oci --config {} \"$@\"\n",
            watertight_testkit::watertight_bin().display(),
            floor.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = Command::new("bash")
        .arg(&script)
        .arg(&wrapper)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let summary = text
        .lines()
        .find(|l| l.starts_with("programs fully passing:"));
    let Some(summary) = summary else {
        // No summary: the suite could not be built (Go from PyPI unreachable, ...).
        require(
            test,
            Some(format!(
                "the validation suite did not run: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("no output")
            )),
        );
        return;
    };
    println!("{text}");
    let passing: u32 = summary
        .trim_start_matches("programs fully passing:")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unreadable summary {summary:?}"));
    assert!(
        passing >= AT_LEAST,
        "{passing} programs fully pass, at least {AT_LEAST} did:\n{text}"
    );
}
