//! The documentation holds: every repository path README.md, ARCHITECTURE.md and docs/*.md name
//! exists, and every `watertight ...` command they show names real subcommands and flags (checked
//! against the binary's own `--help`). Claims about behaviour are tested where the behaviour is;
//! this catches the drift of names, the commonest way docs stop holding.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use watertight_testkit::{stdout, watertight};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// README.md, ARCHITECTURE.md and docs/*.md, with their text.
fn documents() -> Vec<(PathBuf, String)> {
    let mut files = vec![repo().join("README.md"), repo().join("ARCHITECTURE.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

/// The top-level folders and files a path in the docs starts with.
const ROOTS: &[&str] = &[
    "crates/", "scripts/", "docs/", "benches/", "deploy/", ".ci/", ".cargo/",
];

/// Repository paths in code spans (`crates/x/y.rs`) and link targets (`(docs/net.md)`), without
/// templates (`<rule>`, `{a,b}`, `*`) and trailing punctuation.
fn paths_in(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (open, close) in [('`', '`'), ('(', ')')] {
        for piece in text.split(open).skip(1) {
            let candidate: String = piece
                .chars()
                .take_while(|c| *c != close && !c.is_whitespace())
                .collect();
            let candidate = candidate.trim_start_matches("../");
            if !ROOTS.iter().any(|r| candidate.starts_with(r)) {
                continue;
            }
            if candidate.contains(['<', '{', '*', '[']) {
                continue;
            }
            let candidate = candidate
                .split(['#', ':'])
                .next()
                .unwrap()
                .trim_end_matches(['.', ',', ';']);
            found.insert(candidate.to_string());
        }
    }
    found
}

#[test]
fn every_path_the_docs_name_exists() {
    let mut missing = Vec::new();
    let mut checked = 0;
    for (doc, text) in documents() {
        for path in paths_in(&text) {
            checked += 1;
            if !repo().join(&path).exists() {
                missing.push(format!(
                    "{}: {path}",
                    doc.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    assert!(checked > 50, "the docs name paths: found only {checked}");
    assert!(
        missing.is_empty(),
        "the docs name paths that do not exist:\n{}",
        missing.join("\n")
    );
}

/// `watertight ...` invocations in code spans and in fenced shell blocks.
fn commands_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    // Inside a fence: None outside, Some(true) in a shell block, Some(false) in any other
    // (diagrams, TOML, YAML: their "watertight" is not a command).
    let mut fence: Option<bool> = None;
    for line in text.lines() {
        if let Some(lang) = line.trim_start().strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(matches!(lang.trim(), "sh" | "bash" | "console" | "shell")),
            };
            continue;
        }
        let spans: Vec<&str> = if let Some(shell) = fence {
            if !shell {
                continue;
            }
            vec![line]
        } else {
            line.split('`').skip(1).step_by(2).collect()
        };
        for span in spans {
            // From each "watertight " on (a span may start with a path: ./target/.../watertight).
            for (i, _) in span.match_indices("watertight ") {
                let before = span[..i].chars().last();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_') {
                    continue; // part of another word: watertight-runc, watertight_sys
                }
                let previous_word = span[..i].split_whitespace().last();
                if matches!(
                    previous_word,
                    Some("-p" | "--package" | "--bin" | "install")
                ) {
                    continue; // the package, not the command: cargo test -p watertight
                }
                let rest = &span[i + "watertight ".len()..];
                let end = rest
                    .find(['|', ';', '&', '>', '<', '(', ')'])
                    .unwrap_or(rest.len());
                // `a\|b` in a table is an alternative: keep it whole (split below).
                let end = if rest[..end].ends_with('\\') {
                    rest.find(" |").unwrap_or(rest.len())
                } else {
                    end
                };
                found.push(rest[..end].trim().to_string());
            }
        }
    }
    found
}

/// A command's subcommand path (as many leading words as are subcommands) and its flags.
fn subcommand_help(words: &[String]) -> (Vec<String>, String) {
    let mut path: Vec<String> = Vec::new();
    let mut help = stdout(&watertight().arg("--help").output().unwrap());
    for w in words {
        if w.starts_with('-')
            || !w
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            break;
        }
        let mut candidate = path.clone();
        candidate.push(w.clone());
        let out = watertight()
            .args(&candidate)
            .arg("--help")
            .output()
            .unwrap();
        if !out.status.success() || !help.contains(&format!("  {w}")) {
            break;
        }
        path = candidate;
        help = stdout(&out);
    }
    (path, help)
}

#[test]
fn every_command_the_docs_show_exists_with_its_flags() {
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (doc, text) in documents() {
        let name = doc.file_name().unwrap().to_string_lossy().into_owned();
        for command in commands_in(&text) {
            // `audit host\|k8s` is several commands; [--x] is an optional flag, still a flag.
            let command = command.replace(['[', ']'], " ");
            let mut words: Vec<String> = command
                .split_whitespace()
                .map(|w| w.replace("\\|", "|"))
                .collect();
            if words.is_empty() {
                continue;
            }
            let alternatives: Vec<String> = words
                .iter()
                .position(|w| w.contains('|') && !w.starts_with('-'))
                .map(|i| words[i].split('|').map(str::to_string).collect())
                .unwrap_or_default();
            let variants: Vec<Vec<String>> = if alternatives.is_empty() {
                vec![words.clone()]
            } else {
                let i = words.iter().position(|w| w.contains('|')).unwrap();
                alternatives
                    .iter()
                    .map(|a| {
                        words[i] = a.clone();
                        words.clone()
                    })
                    .collect()
            };
            for words in variants {
                // `watertight 0.1.0 (1a2b3c4d5e6f)` is what -V prints, not a command.
                if words[0].starts_with(|c: char| c.is_ascii_digit()) {
                    continue;
                }
                checked += 1;
                // A top-level flag (`watertight -V`): the top-level help lists it.
                if words[0].starts_with('-') {
                    let top = stdout(&watertight().arg("--help").output().unwrap());
                    let listed = top.split(|c: char| c.is_whitespace() || c == ',');
                    if !listed.clone().any(|w| w == words[0]) {
                        wrong.push(format!("{name}: `watertight {}`: no such flag", words[0]));
                    }
                    continue;
                }
                let (path, help) = subcommand_help(&words);
                if path.is_empty() {
                    wrong.push(format!(
                        "{name}: `watertight {}`: no such subcommand",
                        words.join(" ")
                    ));
                    continue;
                }
                for w in &words[path.len()..] {
                    if w == "--" {
                        break; // the program's own arguments follow
                    }
                    let Some(flag) = w.strip_prefix("--") else {
                        continue;
                    };
                    let flag = flag.split('=').next().unwrap();
                    if flag.is_empty() || !flag.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                    {
                        continue;
                    }
                    if !help.contains(&format!("--{flag}")) {
                        wrong.push(format!(
                            "{name}: `watertight {}`: `watertight {}` has no --{flag}",
                            words.join(" "),
                            path.join(" ")
                        ));
                    }
                }
            }
        }
    }
    assert!(checked > 30, "the docs show commands: found only {checked}");
    assert!(
        wrong.is_empty(),
        "the docs show commands that do not exist:\n{}",
        wrong.join("\n")
    );
}

/// The README's first command, as a new user runs it (its `watertight run` part, with this
/// build's binary): it prints what the README says it prints.
#[test]
fn the_readme_first_command_prints_what_the_readme_says() {
    if !watertight_testkit::require_root("the_readme_first_command_prints_what_the_readme_says") {
        return;
    }
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let first = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|block| block.lines().next())
        .expect("README starts with a sh block");
    let (_, run) = first
        .split_once("/release/watertight ")
        .expect("the first command runs the release binary");
    let script = format!(
        "exec {} {run}",
        watertight_testkit::watertight_bin().display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    // "It prints the sandbox's host name, an empty capability set, NoNewPrivs: 1, Seccomp: 2
    // and the number of processes it can see (4 ...)".
    assert!(lines[0].starts_with("hello from "), "{text}");
    assert!(
        !lines[0].contains(&hostname()),
        "the sandbox's own host name: {text}"
    );
    let field = |name: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    assert_eq!(field("CapEff:"), "0000000000000000");
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("Seccomp:"), "2");
    assert_eq!(lines.last().unwrap().trim(), "4", "four processes: {text}");
    assert!(
        readme.contains("`NoNewPrivs: 1`, `Seccomp: 2`") && readme.contains("(4: its reaper"),
        "the README still says what this test checks"
    );
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

/// The minimum Rust the README states is the workspace's `rust-version`.
#[test]
fn the_stated_minimum_rust_is_the_workspaces() {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim().trim_matches('"').to_string())
        .expect("Cargo.toml sets rust-version");
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("Rust {version} or newer")),
        "README must say `Rust {version} or newer`"
    );
    let deps = std::fs::read_to_string(repo().join("scripts/install-deps.sh")).unwrap();
    assert!(
        deps.contains(&format!("stable >= {version}")),
        "install-deps.sh names {version}"
    );
}
