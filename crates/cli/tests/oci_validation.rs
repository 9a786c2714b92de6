//! The OCI runtime-tools validation suite against watertight-runc
//! (`../shared/peers/oci-validation.sh`, which builds the Go suite once into
//! /var/cache/watertight-peers). Asserts at least the number of fully passing test programs
//! reached (docs/oci-runtime.md lists the rest and why); runc 1.1.5 passes 26 of 58 here.

use std::process::Command;
use watertight_testkit::{require, require_root, require_shared};

/// Programs that fully pass with watertight-runc on this machine kind (docs/oci-runtime.md).
const AT_LEAST: u32 = 31;

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
    let wrapper = dir.path().join("watertight-runc");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {} oci \"$@\"\n",
            watertight_testkit::watertight_bin().display()
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
