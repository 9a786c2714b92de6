//! `watertight completions <bash|zsh|fish>` and `watertight man --out DIR`: generated from the
//! whole command tree, `run` included (the same `commands::run::Args` its fast-path parser
//! uses). The bash script is sourced in a real bash and its completion function called the way
//! bash calls it; the man pages are rendered by groff.

use std::path::Path;
use std::process::{Command, Output};
use watertight_testkit::{require_tools, stderr, stdout, watertight};

fn wt(args: &[&str]) -> Output {
    watertight().args(args).output().expect("run watertight")
}

/// What the bash completion offers for the words `line` (the last one being completed, possibly
/// empty): the script is sourced, the function that `complete -p watertight` names is called
/// with COMP_WORDS/COMP_CWORD set as bash sets them, and COMPREPLY is returned.
fn bash_offers(script: &Path, line: &[&str]) -> Vec<String> {
    let words: Vec<String> = line.iter().map(|w| format!("'{w}'")).collect();
    let prev = if line.len() >= 2 {
        line[line.len() - 2]
    } else {
        ""
    };
    let program = format!(
        r#"set -e
source "$1"
spec=$(complete -p watertight)
fn=$(printf '%s\n' "$spec" | sed -n 's/.*-F \([^ ]*\).*/\1/p')
[ -n "$fn" ] || {{ echo "no completion function in: $spec" >&2; exit 3; }}
COMP_WORDS=({words})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
COMPREPLY=()
"$fn" watertight "${{COMP_WORDS[COMP_CWORD]}}" '{prev}'
printf '%s\n' "${{COMPREPLY[@]}}"
"#,
        words = words.join(" "),
    );
    let o = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program, "bash"])
        .arg(script)
        .output()
        .expect("run bash");
    assert!(o.status.success(), "bash completion failed: {}", stderr(&o));
    stdout(&o).lines().map(str::to_string).collect()
}

#[test]
fn bash_completion_offers_subcommands_and_their_arguments() {
    if !require_tools("bash_completion_offers_subcommands", &["bash"], "bash") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("watertight.bash");
    let o = wt(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::write(&script, &o.stdout).unwrap();

    let top = bash_offers(&script, &["watertight", ""]);
    for sub in [
        "run",
        "profile",
        "audit",
        "net",
        "key",
        "manifest",
        "evidence",
        "completions",
        "man",
    ] {
        assert!(top.iter().any(|w| w == sub), "{sub} not offered: {top:?}");
    }
    let audit = bash_offers(&script, &["watertight", "audit", ""]);
    for sub in ["host", "k8s", "docker", "oci", "fleet", "kernel"] {
        assert!(
            audit.iter().any(|w| w == sub),
            "audit {sub} not offered: {audit:?}"
        );
    }
    assert!(
        !audit.iter().any(|w| w == "run"),
        "audit's offers are its own: {audit:?}"
    );
    // `run` completes from the same Args as its fast-path parser.
    let run = bash_offers(&script, &["watertight", "run", "--memory-l"]);
    assert_eq!(run, ["--memory-limit"], "{run:?}");
    let shells = bash_offers(&script, &["watertight", "completions", ""]);
    for shell in ["bash", "zsh", "fish"] {
        assert!(shells.iter().any(|w| w == shell), "{shells:?}");
    }
}

#[test]
fn zsh_and_fish_scripts_name_the_subcommands() {
    for shell in ["zsh", "fish"] {
        let o = wt(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let text = stdout(&o);
        assert!(!text.trim().is_empty(), "{shell}: empty script");
        for needle in ["run", "audit", "memory-limit", "watertight"] {
            assert!(
                text.contains(needle),
                "{shell}: no {needle:?} in the script"
            );
        }
    }
}

#[test]
fn an_unknown_shell_is_one_line_and_exit_2() {
    for bad in ["tcsh", "Bash", "bash\x1b[31m"] {
        let o = wt(&["completions", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
        assert!(err.contains("bash, zsh or fish"), "{err}");
        assert!(
            !err.contains('\x1b'),
            "control characters must be escaped: {err:?}"
        );
        assert!(o.stdout.is_empty());
    }
    let o = wt(&["completions", "tcsh"]);
    assert!(stderr(&o).contains("\"tcsh\""), "{}", stderr(&o));
}

#[test]
fn man_writes_one_page_per_command_that_groff_renders() {
    if !require_tools("man_writes_one_page_per_command", &["groff"], "groff-base") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = watertight()
        .args(["man", "--out", dir.path().to_str().unwrap()])
        .env("SOURCE_DATE_EPOCH", "1764720000")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Dated by SOURCE_DATE_EPOCH, so one commit gives the same pages; .TH has all five fields.
    let top = std::fs::read_to_string(dir.path().join("watertight.1")).unwrap();
    let th = top.lines().find(|l| l.starts_with(".TH ")).unwrap();
    assert_eq!(
        th,
        format!(
            ".TH watertight 1 2025-12-03 \"watertight {}\" \"watertight manual\"",
            env!("CARGO_PKG_VERSION")
        )
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for page in [
        "watertight.1",
        "watertight-run.1",
        "watertight-audit.1",
        "watertight-audit-host.1",
        "watertight-audit-kernel.1",
        "watertight-profile-show.1",
        "watertight-net.1",
        "watertight-key-generate.1",
        "watertight-manifest-verify.1",
        "watertight-evidence.1",
        "watertight-completions.1",
        "watertight-man.1",
    ] {
        assert!(names.iter().any(|n| n == page), "no {page}: {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.contains("help")),
        "clap's help subcommand has no page: {names:?}"
    );
    assert!(stdout(&o).contains(&format!("{} manual pages", names.len())));

    let render = |page: &str| {
        let o = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww"])
            .arg(dir.path().join(page))
            .env("GROFF_NO_SGR", "1")
            .output()
            .expect("run groff");
        assert!(o.status.success(), "groff {page}: {}", stderr(&o));
        assert!(
            stderr(&o).trim().is_empty(),
            "groff warns on {page}: {}",
            stderr(&o)
        );
        // Drop overstrike bold/underline (`X\bX`) so the text can be searched.
        let mut text = String::new();
        for c in stdout(&o).chars() {
            if c == '\u{8}' {
                text.pop();
            } else {
                text.push(c);
            }
        }
        text
    };
    for page in &names {
        let text = render(page);
        let stem = page.trim_end_matches(".1");
        assert!(text.contains("NAME"), "{page}: no NAME section:\n{text}");
        let name_line = text
            .lines()
            .skip_while(|l| l.trim() != "NAME")
            .nth(1)
            .unwrap_or_default();
        assert!(
            name_line.trim_start().starts_with(stem),
            "{page}: NAME says {name_line:?}"
        );
    }
    // The run page documents every flag `watertight run --help` (the fast-path parser) shows.
    let run_page = render("watertight-run.1");
    let help = wt(&["run", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    let help = stdout(&help);
    let flags: Vec<&str> = help
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        .collect::<Vec<_>>();
    assert!(flags.len() > 30, "{flags:?}");
    for flag in flags {
        assert!(run_page.contains(flag), "watertight-run.1 lacks {flag}");
    }
    let top = render("watertight.1");
    for sub in [
        "watertight-run(1)",
        "watertight-audit(1)",
        "watertight-man(1)",
    ] {
        assert!(
            top.contains(sub),
            "watertight.1 does not refer to {sub}:\n{top}"
        );
    }
}

#[test]
fn man_refuses_a_missing_or_non_directory_out() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir");
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    for (out, says) in [
        (&missing, "no such directory: create it first"),
        (&file, "not a directory"),
    ] {
        let o = wt(&["man", "--out", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
        assert!(err.contains(out.to_str().unwrap()), "{err}");
        assert!(err.contains(says), "{err}");
    }
    assert!(!missing.exists(), "nothing is created");
    let o = watertight()
        .args(["man", "--out", dir.path().to_str().unwrap()])
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.contains("SOURCE_DATE_EPOCH=\"yesterday\""), "{err}");
}
