//! Layered profiles from the command line: `watertight profile show --effective FILE` prints a
//! partial file's merged profile as complete TOML that loads back to the same profile;
//! `profile show default`, `check` and `explain` take partial files; a bad file or base is one
//! line naming the file and the key, exit 125; `run --profile partial.toml` runs (as root) with
//! the file's keys over the built-in ones. And every description of sizes names exactly the
//! units `Size` parses.

mod common;
use common::*;

use std::path::Path;
use std::process::Output;

use watertight_sandbox::{Profile, Size};

fn write(dir: &Path, rel: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn show(args: &[&std::ffi::OsStr]) -> Output {
    watertight()
        .args(["profile", "show"])
        .args(args)
        .output()
        .unwrap()
}

/// A refusal: exit 125 and one line on stderr holding each of `needles`.
fn assert_refused(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(125), "stderr {err:?}");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in {err:?}");
    }
}

#[test]
fn show_effective_prints_complete_toml_that_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "base/common.toml",
        "name = \"grading\"\n[limits]\nmemory = \"1G\"\nwall_time = \"none\"\n[[bind]]\nsource = \"/srv/tests\"\ntarget = \"/tests\"\n",
    );
    let top = write(
        dir.path(),
        "partial.toml",
        "extends = \"base/common.toml\"\nhostname = \"judge\"\n[limits]\npids = 32\n",
    );
    let o = show(&["--effective".as_ref(), top.as_os_str()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    // Says where it came from, then every key.
    assert!(text.starts_with("# The effective profile of \""), "{text}");
    assert!(text.contains("partial.toml\" extends \""), "{text}");
    for line in [
        "name = \"grading\"",
        "hostname = \"judge\"",
        "memory = \"1G\"",
        "pids = 32",
        "wall_time = \"none\"",
        "cpus = \"none\"",
        "target = \"/tests\"",
        "[namespaces]",
        "max_ptys = 64",
        "[events]",
    ] {
        assert!(text.contains(line), "{line:?} not in\n{text}");
    }
    // The round trip: the printed profile is the file's effective profile, and loads back to it
    // (with or without the CLI in between).
    let effective = Profile::load(&top).unwrap();
    let out = write(dir.path(), "elsewhere/effective.toml", &text);
    assert_eq!(Profile::load(&out).unwrap(), effective);
    let again = show(&["--effective".as_ref(), out.as_os_str()]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let body = |t: &str| t.split_once('\n').unwrap().1.to_string();
    assert_eq!(body(&stdout(&again)), body(&text));
    // Without the flag a file is shown the same way.
    assert_eq!(stdout(&show(&[top.as_os_str()])), text);
}

#[test]
fn show_default_keeps_working() {
    let plain = watertight().args(["profile", "show"]).output().unwrap();
    let named = show(&["default".as_ref()]);
    let effective = show(&["--effective".as_ref(), "default".as_ref()]);
    for o in [&plain, &named, &effective] {
        assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    }
    assert_eq!(stdout(&plain), stdout(&named));
    assert_eq!(stdout(&plain), stdout(&effective));
    let text = stdout(&plain);
    assert!(text.starts_with("# watertight sandbox profile"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "default.toml", &text);
    assert_eq!(
        Profile::load(&file).unwrap(),
        watertight_sandbox::default_profile()
    );
}

#[test]
fn check_and_explain_take_partial_files() {
    let dir = tempfile::tempdir().unwrap();
    let partial = write(
        dir.path(),
        "partial.toml",
        "[limits]\nmemory = \"256M\"\n[seccomp]\non_violation = \"kill\"\n",
    );
    let o = watertight()
        .args(["profile", "check"])
        .arg(&partial)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let o = watertight()
        .current_dir(dir.path())
        .args(["profile", "explain", "--format=json"])
        .arg(&partial)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(doc["plan_digest"].as_str().unwrap().starts_with("sha256:"));
    let o = watertight()
        .current_dir(dir.path())
        .args(["profile", "explain"])
        .arg(&partial)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("profile      partial\n"),
        "named after its file: {}",
        stdout(&o)
    );
}

#[test]
fn bad_files_and_bases_are_one_line_exit_125() {
    let dir = tempfile::tempdir().unwrap();
    let typo = write(dir.path(), "typo.toml", "[limits]\nmemroy = \"1G\"\n");
    let missing = write(dir.path(), "missing.toml", "extends = \"gone.toml\"\n");
    let bad_base = write(dir.path(), "top.toml", "extends = \"base.toml\"\n");
    write(dir.path(), "base.toml", "[limits]\nmemory = \"12X\"\n");
    let cycle = write(dir.path(), "cycle.toml", "extends = \"cycle.toml\"\n");
    for sub in [&["show", "--effective"][..], &["check"], &["explain"]] {
        let run = |file: &Path| {
            watertight()
                .current_dir(dir.path())
                .arg("profile")
                .args(sub)
                .arg(file)
                .output()
                .unwrap()
        };
        assert_refused(&run(&typo), &["typo.toml", "limits.memroy", "line 2"]);
        assert_refused(
            &run(&missing),
            &["missing.toml", "gone.toml", "cannot read"],
        );
        assert_refused(
            &run(&bad_base),
            &[
                "base.toml (extended by",
                "limits.memory (--memory-limit)",
                "K/M/G/T",
            ],
        );
        assert_refused(&run(&cycle), &["cycle.toml", "cycle"]);
    }
    // `run` refuses them the same way, before it needs root or starts anything.
    let o = watertight()
        .arg("run")
        .arg("--profile")
        .arg(&bad_base)
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    assert_refused(&o, &["base.toml (extended by", "limits.memory"]);
}

#[test]
fn run_takes_a_partial_profile() {
    if !require_root("run_takes_a_partial_profile") {
        return;
    }
    let dir = world_readable_tempdir();
    let partial = write(
        dir.path(),
        "partial.toml",
        "hostname = \"layered\"\n[env.set]\nGREETING = \"hi\"\n",
    );
    let o = watertight()
        .current_dir(dir.path())
        .arg("run")
        .arg("--profile")
        .arg(&partial)
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The file's keys, and the built-in profile's for the rest (PATH, the pids limit).
    let o = watertight()
        .current_dir(dir.path())
        .arg("run")
        .arg("--profile")
        .arg(&partial)
        .args(["--result", "-", "--"])
        .args(["/bin/sh", "-c", "echo \"$(hostname) $GREETING $PATH\""])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "layered hi /usr/local/bin:/usr/bin:/bin\n",
        "{}",
        stderr(&o)
    );
    let verdict: serde_json::Value = serde_json::from_str(&stderr(&o)).unwrap();
    assert_eq!(verdict["limits"]["pids"], 128);
}

/// The `/`-separated word right before ` suffix` in `text`.
fn units_named_in(text: &str) -> Vec<String> {
    let before = &text[..text
        .find(" suffix")
        .expect("a text naming the size suffixes")];
    let word = before.rsplit([' ', '\n', '#']).next().unwrap();
    word.split('/').map(str::to_string).collect()
}

#[test]
fn every_description_of_sizes_names_exactly_the_units_size_parses() {
    // The letters `Size` takes as multiples, smallest first.
    let mut parsed: Vec<(u64, String)> = ('A'..='Z')
        .map(String::from)
        .filter_map(|u| Some((format!("1{u}").parse::<Size>().ok()?.bytes(), u)))
        .filter(|(bytes, _)| *bytes > 1)
        .collect();
    parsed.sort();
    let parsed: Vec<String> = parsed.into_iter().map(|(_, u)| u).collect();
    assert_eq!(parsed, ["K", "M", "G", "T"]);
    let help = watertight().args(["run", "--help"]).output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    let profile = watertight().args(["profile", "show"]).output().unwrap();
    let bad = watertight()
        .args(["run", "--memory-limit", "5Q", "--", "/bin/true"])
        .output()
        .unwrap();
    for (what, text) in [
        ("run --help", stdout(&help)),
        ("profile show", stdout(&profile)),
        ("a bad size", stderr(&bad)),
        (
            "README",
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .unwrap(),
        ),
        (
            "docs/profile.md",
            std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../docs/profile.md"
            ))
            .unwrap(),
        ),
    ] {
        assert_eq!(units_named_in(&text), parsed, "{what}:\n{text}");
    }
}
