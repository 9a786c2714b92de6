//! The command line's edges, through the binary: `-V` and `--version` (the version, the git
//! revision the binary was built from, the target, the features and what is linked in), and the
//! tip `watertight run` gives when the program is not after `--` (exit 125, like its other
//! usage errors). No root needed.

use std::process::{Command, Output};

use watertight_testkit::{stderr, stdout, watertight};

fn run(args: &[&str]) -> Output {
    watertight().args(args).output().unwrap()
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn short_version_is_one_line_with_the_revision_built_from() {
    let out = run(&["-V"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    let line = text.trim_end();
    let rest = line
        .strip_prefix(&format!("watertight {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{line}"));
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        // Built from this checkout: HEAD's revision, dirty or not (whether a file changed since
        // the binary was built is not the binary's to know).
        Some(head) => assert!(
            rest == head || rest == format!("{head}-dirty"),
            "{rest} vs HEAD {head}"
        ),
        None => assert_eq!(rest, "unknown"),
    }
}

#[test]
fn long_version_adds_the_build_facts_one_per_line() {
    let short = stdout(&run(&["-V"]));
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], short.trim_end(), "the first line is -V's");
    let value = |key: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("no {key}: line in\n{text}"))
    };
    assert!(lines[0].contains(value("revision")));
    let host = Command::new("rustc")
        .arg("-vV")
        .output()
        .ok()
        .and_then(|o| {
            stdout(&o)
                .lines()
                .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        });
    if let Some(host) = host {
        assert!(
            value("target").starts_with(&format!("{host}, linked ")),
            "{text}"
        );
    }
    assert!(matches!(value("profile"), "debug" | "release"), "{text}");
    // The watertight crate defines no cargo features: none are made up.
    assert_eq!(value("features"), "none");
    // libseccomp tells its own version; .cargo/config.toml links it statically.
    let seccomp = value("libseccomp");
    assert!(
        seccomp.starts_with("2.") && seccomp.ends_with(", linked statically"),
        "{seccomp}"
    );
}

#[test]
fn run_without_dashes_says_where_the_program_goes() {
    let out = run(&["run", "./a.out", "-x"]);
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    assert!(err.contains("unexpected argument './a.out'"), "{err}");
    assert!(
        err.contains("tip: the program and its arguments go after `--`: watertight run [OPTIONS] -- PROGRAM [ARGS...]"),
        "{err}"
    );
    assert!(
        err.contains("tip: here: watertight run -- ./a.out -x\n"),
        "{err}"
    );

    // Options stay before `--`, values and all; words that need quotes get them.
    let out = run(&[
        "run",
        "--time-limit",
        "2",
        "-v",
        "--env",
        "A=b c",
        "./prog",
        "it's",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains(
            r"tip: here: watertight run --time-limit 2 -v --env 'A=b c' -- ./prog 'it'\''s'"
        ),
        "{}",
        stderr(&out)
    );

    // No program at all.
    let out = run(&["run", "--time-limit", "2"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains(
            "tip: name the program after `--`: watertight run [OPTIONS] -- PROGRAM [ARGS...]"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn run_tips_stay_out_of_other_errors_and_show_no_raw_control_characters() {
    // A `--` is there: an unknown option is only that.
    let out = run(&["run", "--bogus", "--", "ls"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        !stderr(&out).contains("PROGRAM [ARGS...]"),
        "{}",
        stderr(&out)
    );
    // An unknown option is likely a typo: clap's own tip, not ours.
    let out = run(&["run", "-x"]);
    assert!(
        !stderr(&out).contains("PROGRAM [ARGS...]"),
        "{}",
        stderr(&out)
    );
    // The line shown after `here:` parses: with a bad value in it there is none to show.
    let out = run(&["run", "--time-limit", "soon", "./a.out"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("PROGRAM [ARGS...]"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("tip: here:"), "{}", stderr(&out));
    // A program name with a newline and an escape: the generic tip only, nothing raw.
    let out = run(&["run", "./a\n\x1b[31m"]);
    let err = stderr(&out);
    assert!(err.contains("PROGRAM [ARGS...]"), "{err}");
    assert!(!err.contains("tip: here:"), "{err}");
    assert!(!err.contains('\x1b'), "{err:?}");
}
