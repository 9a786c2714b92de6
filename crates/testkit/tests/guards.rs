//! The guards as a test sees them: this binary runs itself again (one probe test, picked with
//! `--exact`) with the environment under test, as another user where the guard is about root,
//! and checks that a missing prerequisite is one SKIP line by default and a failure where it
//! must be.

use std::process::{Command, Output};
use watertight_testkit::{require, require_root, require_tools, stderr, stdout};

/// Set in the re-run: which probe is meant to act. Without it the probes return at once.
const PROBE_VAR: &str = "WATERTIGHT_TESTKIT_PROBE";

fn probe_active(name: &str) -> bool {
    std::env::var(PROBE_VAR).as_deref() == Ok(name)
}

#[test]
fn probe_root() {
    if probe_active("root") && require_root("probe_root") {
        println!("RAN");
    }
}

#[test]
fn probe_missing_tool() {
    if probe_active("tool")
        && require_tools("probe_missing_tool", &["no-such-tool-watertight"], "none")
    {
        println!("RAN");
    }
}

/// Runs this binary's `probe` test with PROBE_VAR=`which` and `env` (CI and the root variable
/// cleared first), as `wrapper` (e.g. setpriv) when given.
fn rerun(probe: &str, which: &str, env: &[(&str, &str)], wrapper: &[&str]) -> Output {
    let me = std::env::current_exe().unwrap();
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(&me);
            c
        }
        None => Command::new(&me),
    };
    cmd.args(["--exact", probe, "--nocapture", "--test-threads=1"])
        .env_remove("CI")
        .env_remove(watertight_testkit::REQUIRE_ROOT_VAR)
        .env(PROBE_VAR, which)
        .envs(env.iter().copied());
    cmd.output().expect("re-run the test binary")
}

#[test]
fn a_missing_tool_skips_locally_and_fails_in_ci() {
    let local = rerun("probe_missing_tool", "tool", &[], &[]);
    assert!(local.status.success(), "{}", stderr(&local));
    assert!(
        stderr(&local).contains("SKIP probe_missing_tool: needs no-such-tool-watertight"),
        "{}",
        stderr(&local)
    );
    assert!(!stdout(&local).contains("RAN"));

    let ci = rerun("probe_missing_tool", "tool", &[("CI", "true")], &[]);
    assert!(!ci.status.success(), "passed in CI: {}", stdout(&ci));
    assert!(
        stderr(&ci).contains("CI is set, so a missing prerequisite is a failure"),
        "{}",
        stderr(&ci)
    );

    // CI=false is not CI.
    let not_ci = rerun("probe_missing_tool", "tool", &[("CI", "false")], &[]);
    assert!(not_ci.status.success(), "{}", stderr(&not_ci));
}

#[test]
fn not_root_skips_without_the_variable_and_fails_with_it() {
    // Becoming another user needs root and setpriv; the check itself is what is tested here.
    let test = "not_root_skips_without_the_variable_and_fails_with_it";
    if !require_root(test) || !require_tools(test, &["setpriv"], "util-linux") {
        return;
    }
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let skipped = rerun("probe_root", "root", &[], &nobody);
    if stderr(&skipped).contains("Permission denied") {
        watertight_testkit::host_lacks(test, "this test binary is not readable by uid 65534");
        return;
    }
    assert!(skipped.status.success(), "{}", stderr(&skipped));
    assert!(
        stderr(&skipped).contains("SKIP probe_root: needs root"),
        "{}",
        stderr(&skipped)
    );
    assert!(!stdout(&skipped).contains("RAN"));

    let required = rerun(
        "probe_root",
        "root",
        &[(watertight_testkit::REQUIRE_ROOT_VAR, "1")],
        &nobody,
    );
    assert!(!required.status.success(), "passed as uid 65534");
    assert!(
        stderr(&required).contains("probe_root: needs root, and WATERTIGHT_REQUIRE_ROOT=1"),
        "{}",
        stderr(&required)
    );

    // As root the guarded body runs, with the variable set too.
    let root = rerun(
        "probe_root",
        "root",
        &[(watertight_testkit::REQUIRE_ROOT_VAR, "1")],
        &[],
    );
    assert!(root.status.success(), "{}", stderr(&root));
    assert!(stdout(&root).contains("RAN"), "{}", stdout(&root));
}

#[test]
fn require_passes_what_is_there() {
    assert!(require("require_passes_what_is_there", None));
}
