//! Layered profiles (docs/profile.md): a profile file sets only the keys it changes, over the
//! built-in profile or the file its `extends` names. Tables merge key by key, everything else
//! (arrays included) replaces; chains, cycles, depth, missing and invalid bases; errors that
//! name the file, the key and its line; the effective profile's TOML loads back to itself.

use std::path::{Path, PathBuf};

use watertight_sandbox::profile::layered::{self, MAX_CHAIN};
use watertight_sandbox::profile::{default_profile, Bind, Profile};
use watertight_sandbox::Size;

/// Writes each `(relative path, text)` under a new temp dir.
fn files(list: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in list {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn load(dir: &Path, rel: &str) -> Profile {
    Profile::load(&dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn error(dir: &Path, rel: &str) -> String {
    let e = Profile::load(&dir.join(rel))
        .map(|p| panic!("{rel} loaded: {p:?}"))
        .unwrap_err()
        .to_string();
    assert!(!e.contains('\n'), "one line: {e}");
    eprintln!("{rel}: {e}");
    e
}

/// The built-in profile with the name a file called `stem.toml` gets when it sets none.
fn default_named(stem: &str) -> Profile {
    Profile {
        name: stem.into(),
        ..default_profile()
    }
}

#[test]
fn a_file_with_one_key_is_the_default_with_that_key() {
    let d = files(&[("grader.toml", "hostname = \"grader\"\n")]);
    let want = Profile {
        hostname: "grader".into(),
        ..default_named("grader")
    };
    assert_eq!(load(d.path(), "grader.toml"), want);
    // An empty file is the built-in profile (under the file's name).
    let d = files(&[("empty.toml", "")]);
    assert_eq!(load(d.path(), "empty.toml"), default_named("empty"));
}

#[test]
fn extends_default_is_what_no_extends_means() {
    let d = files(&[
        ("a.toml", "[limits]\npids = 7\n"),
        ("b.toml", "extends = \"default\"\n[limits]\npids = 7\n"),
    ]);
    let a = load(d.path(), "a.toml");
    assert_eq!(a.limits.pids, Some(7));
    assert_eq!(
        Profile {
            name: "b".into(),
            ..a
        },
        load(d.path(), "b.toml")
    );
}

#[test]
fn nested_tables_merge_key_by_key() {
    let d = files(&[(
        "p.toml",
        "[limits]\nmemory = \"1G\"\n[env.set]\nFOO = \"bar\"\n[root]\nwritable = false\nhide = []\n",
    )]);
    let p = load(d.path(), "p.toml");
    let base = default_profile();
    assert_eq!(p.limits.memory, Some(Size::mib(1024)));
    // The rest of [limits] is the default's.
    assert_eq!(p.limits.pids, base.limits.pids);
    assert_eq!(p.limits.wall_time, base.limits.wall_time);
    assert_eq!(p.limits.open_files, base.limits.open_files);
    // [env.set] is a table: FOO joins PATH, HOME, LANG.
    assert_eq!(p.env.set.get("FOO").map(String::as_str), Some("bar"));
    assert_eq!(p.env.set.get("PATH"), base.env.set.get("PATH"));
    assert_eq!(p.env.set.len(), base.env.set.len() + 1);
    assert_eq!(p.env.pass, base.env.pass);
    // [root]: hide replaced (an array), host_dirs and the rest kept.
    assert!(p.root.hide.is_empty());
    assert_eq!(p.root.host_dirs, base.root.host_dirs);
    assert_eq!(p.root.source, base.root.source);
}

#[test]
fn arrays_replace_the_base_list() {
    let d = files(&[
        (
            "base.toml",
            "[[bind]]\nsource = \"/srv/a\"\ntarget = \"/a\"\n\n[[bind]]\nsource = \"/srv/b\"\ntarget = \"/b\"\n\n[dev]\ndevices = [\"null\", \"zero\", \"urandom\"]\n",
        ),
        (
            "top.toml",
            "extends = \"base.toml\"\n\n[[bind]]\nsource = \"/srv/c\"\ntarget = \"/c\"\nread_only = false\n\n[dev]\ndevices = [\"null\"]\n",
        ),
        ("none.toml", "extends = \"base.toml\"\nbind = []\n"),
    ]);
    let base = load(d.path(), "base.toml");
    assert_eq!(base.binds.len(), 2);
    let top = load(d.path(), "top.toml");
    assert_eq!(
        top.binds,
        vec![Bind {
            source: "/srv/c".into(),
            target: "/c".into(),
            read_only: false,
        }]
    );
    assert_eq!(top.dev.devices, vec!["null".to_string()]);
    // [dev] is a table: its other keys are still the default's.
    assert_eq!(top.dev.shm_size, default_profile().dev.shm_size);
    // An empty array empties the list.
    let none = load(d.path(), "none.toml");
    assert!(none.binds.is_empty());
    assert_eq!(none.dev.devices, base.dev.devices);
}

#[test]
fn a_chain_of_three_applies_nearest_first_and_paths_are_relative_to_the_naming_file() {
    let d = files(&[
        (
            "a.toml",
            "extends = \"bases/b.toml\"\nhostname = \"from-a\"\n[limits]\ncpus = 2\n",
        ),
        (
            "bases/b.toml",
            "extends = \"c.toml\"\nname = \"b-name\"\n[limits]\npids = 20\nmemory = \"256M\"\n",
        ),
        (
            "bases/c.toml",
            "hostname = \"from-c\"\n[limits]\nmemory = \"2G\"\nwall_time = \"none\"\n[namespaces]\nipc = false\n",
        ),
    ]);
    let l = Profile::load_layered(&d.path().join("a.toml")).unwrap();
    let p = &l.profile;
    assert_eq!(p.hostname, "from-a");
    assert_eq!(p.limits.cpus, Some(2.0));
    assert_eq!(p.limits.pids, Some(20));
    assert_eq!(p.limits.memory, Some(Size::mib(256)), "b over c");
    assert_eq!(p.limits.wall_time, None, "\"none\" from c");
    assert!(!p.namespaces.ipc);
    assert!(p.namespaces.net);
    assert_eq!(p.name, "b-name", "the nearest file that sets name");
    assert_eq!(
        l.files,
        vec![
            d.path().join("a.toml"),
            d.path().join("bases/b.toml"),
            d.path().join("bases/c.toml"),
        ]
    );
}

#[test]
fn a_cycle_is_refused_naming_its_files() {
    let d = files(&[
        ("a.toml", "extends = \"b.toml\"\n"),
        ("b.toml", "extends = \"sub/../c.toml\"\n"),
        ("c.toml", "extends = \"b.toml\"\n"),
        ("sub/keep", ""),
        ("self.toml", "extends = \"self.toml\"\n"),
    ]);
    let e = error(d.path(), "a.toml");
    // b -> c -> b, each as named (a leads into it but is not part of it); the error is the
    // file whose extends closes it.
    let (b, c) = (d.path().join("b.toml"), d.path().join("sub/../c.toml"));
    let again = d.path().join("sub/../b.toml");
    let cycle = format!("{} -> {} -> {}", b.display(), c.display(), again.display());
    assert!(
        e.starts_with(&format!(
            "profile {} (extended by {}): ",
            c.display(),
            b.display()
        )),
        "{e}"
    );
    assert!(e.contains(&format!("makes a cycle: {cycle};")), "{e}");
    let e = error(d.path(), "self.toml");
    let me = d.path().join("self.toml");
    assert!(
        e.contains(&format!(
            "makes a cycle: {} -> {};",
            me.display(),
            me.display()
        )),
        "{e}"
    );
}

#[test]
fn a_chain_is_at_most_max_chain_files() {
    let mut list: Vec<(String, String)> = (0..MAX_CHAIN)
        .map(|i| {
            let text = if i + 1 < MAX_CHAIN {
                format!("extends = \"{}.toml\"\n", i + 1)
            } else {
                "hostname = \"deepest\"\n".to_string()
            };
            (format!("{i}.toml"), text)
        })
        .collect();
    let as_refs = |l: &[(String, String)]| {
        files(
            &l.iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect::<Vec<_>>(),
        )
    };
    let d = as_refs(&list);
    let l = Profile::load_layered(&d.path().join("0.toml")).unwrap();
    assert_eq!(l.files.len(), MAX_CHAIN);
    assert_eq!(l.profile.hostname, "deepest");
    // One more file is refused, with the fix.
    list.last_mut().unwrap().1 = format!("extends = \"{MAX_CHAIN}.toml\"\n");
    list.push((format!("{MAX_CHAIN}.toml"), String::new()));
    let d = as_refs(&list);
    let e = error(d.path(), "0.toml");
    assert!(
        e.contains(&format!("longer than {MAX_CHAIN} files")) && e.contains("--effective"),
        "{e}"
    );
}

#[test]
fn a_missing_base_is_one_line_naming_it() {
    let d = files(&[("a.toml", "extends = \"nowhere/base.toml\"\n")]);
    let e = error(d.path(), "a.toml");
    let missing = d.path().join("nowhere/base.toml");
    assert!(
        e.starts_with(&format!("profile {}: ", d.path().join("a.toml").display())),
        "{e}"
    );
    assert!(
        e.contains(&format!("cannot read {}", missing.display())),
        "{e}"
    );
    assert!(e.contains("No such file"), "{e}");
}

#[test]
fn an_unknown_key_in_a_partial_file_is_named_with_its_line() {
    let d = files(&[
        (
            "typo.toml",
            "hostname = \"x\"\n\n[limits]\nmemroy = \"1G\"\n",
        ),
        ("top.toml", "hostnam = \"x\"\n"),
        ("bind.toml", "[[bind]]\nsource = \"/a\"\ntraget = \"/b\"\n"),
        ("nested.toml", "[limits]\nextends = \"x.toml\"\n"),
    ]);
    let e = error(d.path(), "typo.toml");
    assert!(e.contains("typo.toml"), "{e}");
    assert!(e.contains("limits.memroy, line 4"), "{e}");
    assert!(e.contains("unknown field `memroy`, expected one of"), "{e}");
    let e = error(d.path(), "top.toml");
    assert!(
        e.contains("hostnam, line 1") && e.contains("unknown field"),
        "{e}"
    );
    let e = error(d.path(), "bind.toml");
    assert!(
        e.contains("bind[0].traget (--bind/--bind-ro), line 3"),
        "{e}"
    );
    // `extends` is a top-level key only.
    let e = error(d.path(), "nested.toml");
    assert!(e.contains("limits.extends"), "{e}");
}

#[test]
fn a_bad_value_names_the_key_the_flag_and_the_units() {
    let d = files(&[
        ("size.toml", "[limits]\nmemory = \"lots\"\n"),
        ("type.toml", "[limits]\npids = \"many\"\n"),
        ("cpus.toml", "[limits]\ncpus = -1\n"),
        ("syntax.toml", "[limits]\nmemory = \n"),
    ]);
    let e = error(d.path(), "size.toml");
    assert!(
        e.contains("limits.memory (--memory-limit), line 2") && e.contains("K/M/G/T"),
        "{e}"
    );
    assert!(e.contains("or \"none\" for no limit"), "{e}");
    let e = error(d.path(), "type.toml");
    assert!(e.contains("limits.pids (--pids-limit), line 2"), "{e}");
    let e = error(d.path(), "cpus.toml");
    assert!(e.contains("limits.cpus (--cpus) -1"), "{e}");
    let e = error(d.path(), "syntax.toml");
    assert!(e.contains("syntax.toml: line 2, column"), "{e}");
}

#[test]
fn an_invalid_base_is_named_not_the_file_that_extends_it() {
    let d = files(&[
        ("unknown.toml", "extends = \"bad/unknown-key.toml\"\n"),
        ("bad/unknown-key.toml", "[tmp]\nsize = \"1G\"\nsiz = 3\n"),
        ("syntax.toml", "extends = \"bad/syntax.toml\"\n"),
        ("bad/syntax.toml", "hostname = \"unterminated\n"),
        (
            "invalid.toml",
            "extends = \"bad/invalid.toml\"\n[identity]\nslots = 4\n",
        ),
        ("bad/invalid.toml", "[identity]\nslots = 0\n"),
        ("kind.toml", "extends = 3\n"),
        ("empty.toml", "extends = \"\"\n"),
    ]);
    let e = error(d.path(), "unknown.toml");
    let by = d.path().join("unknown.toml");
    let base = d.path().join("bad/unknown-key.toml");
    assert!(
        e.starts_with(&format!(
            "profile {} (extended by {}): tmp.siz, line 3",
            base.display(),
            by.display()
        )),
        "{e}"
    );
    let e = error(d.path(), "syntax.toml");
    assert!(
        e.contains("bad/syntax.toml (extended by") && e.contains("line 1"),
        "{e}"
    );
    // Every file of a chain is a valid profile itself, even when the top would fix it.
    let e = error(d.path(), "invalid.toml");
    assert!(
        e.contains("bad/invalid.toml (extended by") && e.contains("identity.slots"),
        "{e}"
    );
    let e = error(d.path(), "kind.toml");
    assert!(e.contains("extends must be a string"), "{e}");
    let e = error(d.path(), "empty.toml");
    assert!(e.contains("extends is empty"), "{e}");
}

#[test]
fn a_limit_of_none_removes_an_inherited_limit() {
    let d = files(&[(
        "p.toml",
        "[limits]\nwall_time = \"none\"\nmemory = \"none\"\nstack = \"8M\"\n",
    )]);
    let p = load(d.path(), "p.toml");
    assert_eq!(p.limits.wall_time, None);
    assert_eq!(p.limits.memory, None);
    assert_eq!(p.limits.stack, Some(Size::mib(8)));
    assert_eq!(p.limits.pids, default_profile().limits.pids);
    let text = p.to_toml();
    assert!(text.contains("wall_time = \"none\""), "{text}");
}

#[test]
fn the_effective_toml_loads_back_to_the_same_profile() {
    let d = files(&[
        ("one.toml", "hostname = \"one\"\n"),
        (
            "many.toml",
            "extends = \"base.toml\"\n[limits]\ncpus = 0.5\noutput = \"1M\"\n[terminal]\nescapes = \"pass\"\n[events]\nlimit = \"4K\"\n",
        ),
        (
            "base.toml",
            "name = \"base\"\n[[bind]]\nsource = \"/srv\"\ntarget = \"/srv\"\n[limits]\nwall_time = \"none\"\nfile_size = 0\n[seccomp]\non_violation = \"kill\"\nmax_violations = 0\n[root]\nhost_sockets = \"allow\"\n",
        ),
    ]);
    for rel in ["one.toml", "many.toml", "base.toml"] {
        let p = load(d.path(), rel);
        let text = p.to_toml();
        // Written under another name: the name comes from the text, not the file.
        let out = d.path().join("effective.toml");
        std::fs::write(&out, &text).unwrap();
        assert_eq!(Profile::load(&out).unwrap(), p, "{rel}:\n{text}");
        // Complete: no key left for a base to fill in (it loads the same over any base).
        let over = d.path().join("over.toml");
        std::fs::write(&over, format!("extends = \"many.toml\"\n{text}")).unwrap();
        assert_eq!(Profile::load(&over).unwrap(), p, "{rel} over many.toml");
    }
    let p = load(d.path(), "many.toml");
    assert_eq!(p.name, "base");
    assert_eq!(p.limits.file_size, Some(Size::bytes_exact(0)));
    assert_eq!(p.limits.wall_time, None);
    assert_eq!(p.binds.len(), 1);
}

#[test]
fn from_toml_layers_relative_to_its_origin() {
    let d = files(&[("base.toml", "hostname = \"based\"\n")]);
    let origin: PathBuf = d.path().join("virtual.toml");
    let p = Profile::from_toml(
        "extends = \"base.toml\"\n[limits]\npids = 3\n",
        origin.to_str().unwrap(),
    )
    .unwrap();
    assert_eq!((p.hostname.as_str(), p.limits.pids), ("based", Some(3)));
    assert_eq!(p.name, "virtual");
}

#[test]
fn merge_replaces_everything_but_tables() {
    let mut base: toml::Table = toml::from_str(
        "a = [1, 2]\nb = \"x\"\n[t]\nk = 1\nl = [3]\n[t.u]\nm = 1\n[[arr]]\nq = 1\n",
    )
    .unwrap();
    let top: toml::Table =
        toml::from_str("a = [9]\n[t]\nl = []\n[t.u]\nn = 2\n[[arr]]\nr = 2\n").unwrap();
    layered::merge(&mut base, top);
    let want: toml::Table = toml::from_str(
        "a = [9]\nb = \"x\"\n[t]\nk = 1\nl = []\n[t.u]\nm = 1\nn = 2\n[[arr]]\nr = 2\n",
    )
    .unwrap();
    assert_eq!(base, want);
}

#[test]
fn the_examples_in_docs_profile_md_load_as_described() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/profile.md"
    ))
    .unwrap();
    // Each ```toml block whose first line is `# FILE` is that file.
    let examples: Vec<(String, String)> = doc
        .split("```toml\n")
        .skip(1)
        .filter_map(|block| {
            let block = block.split("```").next().unwrap();
            let (first, _) = block.split_once('\n')?;
            Some((first.strip_prefix("# ")?.to_string(), block.to_string()))
        })
        .collect();
    assert_eq!(examples.len(), 2, "{examples:?}");
    let d = files(
        &examples
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect::<Vec<_>>(),
    );
    let p = load(d.path(), "grader.toml");
    let base = default_profile();
    assert_eq!((p.name.as_str(), p.hostname.as_str()), ("course", "grader"));
    assert_eq!(p.binds.len(), 1);
    assert!(p.binds[0].read_only);
    assert_eq!(p.limits.cpu_time, Some(2.0));
    assert_eq!(p.limits.memory, Some(Size::mib(256)));
    assert_eq!(p.limits.pids, Some(64));
    assert_eq!(p.limits.wall_time, None);
    assert_eq!(p.env.set["LANG"], "C");
    assert_eq!(p.env.set["PATH"], base.env.set["PATH"]);
    assert_eq!(p.env.set["HOME"], base.env.set["HOME"]);
    assert_eq!(
        Profile {
            name: base.name.clone(),
            hostname: base.hostname.clone(),
            binds: Vec::new(),
            limits: base.limits.clone(),
            env: base.env.clone(),
            ..p
        },
        base,
        "every other key is the built-in profile's"
    );
}
