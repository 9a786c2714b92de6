//! The Landlock layer against the real kernel: execute only beneath the given roots.

mod common;

use std::path::Path;
use watertight_integrity::{landlock_exec_ruleset, probe_enforcement, Layer};

#[test]
fn restricted_child_executes_only_beneath_the_roots() {
    if !probe_enforcement().available(Layer::Landlock) {
        watertight_testkit::host_lacks(
            "restricted_child_executes_only_beneath_the_roots",
            &probe_enforcement().get(Layer::Landlock).reason,
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    common::exec_tree(&tree);
    let outside = dir.path().join("outside/true");
    common::copy_exec(Path::new("/usr/bin/true"), &outside);
    // Built before "fork" (here: in the test thread), applied in a thread that then spawns: a
    // Landlock domain binds the thread that restricts itself and everything it starts.
    // The host loader is the PT_INTERP of the copied binaries, so it is an exec root too.
    let loader = common::host_loader();
    let ruleset = landlock_exec_ruleset(&[&tree, &loader]).unwrap();
    let lib = tree.join("lib");
    let (inside, outside_result) = std::thread::spawn(move || {
        ruleset.restrict_self().unwrap();
        let inside = std::process::Command::new(tree.join("bin/true"))
            .env("LD_LIBRARY_PATH", &lib)
            .status();
        let out = std::process::Command::new(&outside).status();
        (inside, out)
    })
    .join()
    .unwrap();
    assert!(inside.unwrap().success(), "a binary beneath the roots runs");
    let err = outside_result.expect_err("a binary outside the roots must not execute");
    assert_eq!(err.raw_os_error(), Some(13), "EACCES: {err}");
    // This thread was never restricted.
    assert!(std::process::Command::new("/usr/bin/true")
        .status()
        .unwrap()
        .success());
}

#[test]
fn missing_root_is_a_clear_error() {
    let Err(err) = landlock_exec_ruleset(&[Path::new("/nonexistent/wt-root")]) else {
        panic!("a missing root must be refused");
    };
    assert!(err.to_string().contains("/nonexistent/wt-root"), "{err}");
    let Err(err) = landlock_exec_ruleset(&[]) else {
        panic!("no roots must be refused")
    };
    assert!(err.to_string().contains("no exec root"), "{err}");
}
