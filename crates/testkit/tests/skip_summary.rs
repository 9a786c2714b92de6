//! A skipped test is visible in a plain `cargo test`: its `SKIP` line gets past libtest's capture,
//! and the binary ends with how many of its tests skipped and why.

use std::process::Command;

/// Run only by the test below, in a child process of this test binary.
#[test]
#[ignore = "run by skip_lines_and_summary_reach_the_terminal"]
fn skips_because_the_host_lacks_something() {
    watertight_testkit::host_lacks(
        "skips_because_the_host_lacks_something",
        "no such feature here",
    );
}

#[test]
fn skip_lines_and_summary_reach_the_terminal() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "skips_because_the_host_lacks_something",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("test result: ok. 1 passed"), "{stdout}");
    let skip = "SKIP skips_because_the_host_lacks_something: no such feature here";
    assert_eq!(
        stderr.matches(skip).count(),
        2,
        "the line, then the summary: {stderr}"
    );
    assert!(
        stderr.contains("1 test(s) of skip_summary-"),
        "the summary names the binary: {stderr}"
    );
}
