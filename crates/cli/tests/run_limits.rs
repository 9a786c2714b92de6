//! Limits and verdicts: each limit is hit for real and the host is unharmed.

mod common;
use common::*;
use watertight_testkit::this_test;

fn attack_flags() -> String {
    format!("--bind-ro={}:/attack", attack_dir().display())
}

#[test]
fn fork_bomb_is_stopped_by_pids_limit() {
    if !require_root("fork_bomb_is_stopped_by_pids_limit") {
        return;
    }
    let o = attack("forkbomb", "", &["--pids-limit=32", "--wall-time-limit=20"]);
    assert_denied("forkbomb", "", &o);
    let n: u32 = stdout(&o)
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert!(n < 32, "{n} children under a limit of 32");
}

#[test]
fn endless_shell_fork_bomb_times_out() {
    if !require_root("endless_shell_fork_bomb_times_out") {
        return;
    }
    let (o, v) = run_with_result(
        &["--pids-limit=64", "--wall-time-limit=2"],
        &["/bin/sh", "-c", "b() { b | b & }; b; sleep 30"],
    );
    assert_eq!(v["status"], "TO", "{v}");
    assert_eq!(o.status.code(), Some(124));
}

#[test]
fn memory_hog_gets_ml() {
    if !require_root("memory_hog_gets_ml") {
        return;
    }
    let (o, v) = run_with_result(
        &[&attack_flags(), "--memory-limit=64M"],
        &["/attack/attack", "hog", "512"],
    );
    assert_eq!(v["status"], "ML", "{v} {}", stderr(&o));
    assert_eq!(v["oom_killed"], true);
    assert_eq!(o.status.code(), Some(137));
}

#[test]
fn sleeper_gets_to_within_wall_limit() {
    if !require_root("sleeper_gets_to_within_wall_limit") {
        return;
    }
    let (o, v) = run_with_result(&["--wall-time-limit=1"], &["/bin/sleep", "30"]);
    assert_eq!(v["status"], "TO", "{v}");
    assert_eq!(o.status.code(), Some(124));
    let wall = v["wall_time_s"].as_f64().unwrap();
    assert!((1.0..10.0).contains(&wall), "wall {wall}");
}

#[test]
fn spinner_gets_to_on_cpu_limit() {
    if !require_root("spinner_gets_to_on_cpu_limit") {
        return;
    }
    let (_, v) = run_with_result(
        &[&attack_flags(), "--time-limit=1", "--wall-time-limit=10"],
        &["/attack/attack", "spin"],
    );
    assert_eq!(v["status"], "TO", "{v}");
    assert!(v["cpu_time_s"].as_f64().unwrap() >= 0.9, "{v}");
}

#[test]
fn output_flood_gets_ol() {
    if !require_root("output_flood_gets_ol") {
        return;
    }
    let (o, v) = run_with_result(
        &["--output-limit=1M", "--wall-time-limit=20"],
        &["/usr/bin/yes"],
    );
    assert_eq!(v["status"], "OL", "{v}");
    assert_eq!(o.status.code(), Some(153));
    assert!(
        o.stdout.len() <= 1 << 20,
        "{} bytes passed the limit",
        o.stdout.len()
    );
    assert!(
        o.stdout.len() > 1000,
        "output before the limit is delivered"
    );
}

#[test]
fn exit_codes_and_signals_pass_through() {
    if !require_root("exit_codes_and_signals_pass_through") {
        return;
    }
    let (o, v) = run_with_result(&[], &["/bin/sh", "-c", "exit 3"]);
    assert_eq!(
        (v["status"].as_str(), o.status.code()),
        (Some("RE"), Some(3))
    );
    let (o, v) = run_with_result(&[], &["/bin/sh", "-c", "kill -SEGV $$"]);
    assert_eq!(
        (v["status"].as_str(), o.status.code()),
        (Some("SG"), Some(139)),
        "{v}"
    );
    assert_eq!(v["signal"], 11);
    let (o, v) = run_with_result(&[], &["/bin/true"]);
    assert_eq!(
        (v["status"].as_str(), o.status.code()),
        (Some("OK"), Some(0))
    );
    for key in [
        "exit_code",
        "signal",
        "cpu_time_s",
        "wall_time_s",
        "max_rss_kb",
        "oom_killed",
        "limits",
    ] {
        assert!(v.get(key).is_some(), "verdict lacks {key}: {v}");
    }
}

#[test]
fn missing_command_is_127() {
    if !require_root("missing_command_is_127") {
        return;
    }
    let o = sh("", &[]);
    assert_eq!(o.status.code(), Some(0));
    let o = watertight()
        .args(["run", "--", "no-such-command-wt"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot execute"), "{}", stderr(&o));
}

#[test]
fn bad_input_is_one_line_exit_125_and_leaves_nothing() {
    if !require_root("bad_input_is_one_line_exit_125") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bad_profile = dir.path().join("bad.toml");
    std::fs::write(&bad_profile, "name = \"x\"\n[limits\n").unwrap();
    let bad_seccomp = dir.path().join("bad.json");
    std::fs::write(
        &bad_seccomp,
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["no_such_syscall_wt"],"action":"SCMP_ACT_ALLOW"}]}"#,
    )
    .unwrap();
    let profile_flag = format!("--profile={}", bad_profile.display());
    let seccomp_flag = format!("--seccomp={}", bad_seccomp.display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--memory-limit=12XB"], "12XB"),
        // Out of the kernel's range: checked before clone, named by flag and profile key.
        (
            vec!["--memory-limit=1K"],
            "limits.memory (--memory-limit) 1K",
        ),
        (vec!["--pids-limit=5000000"], "limits.pids (--pids-limit)"),
        (vec!["--cpus=0.001"], "limits.cpus (--cpus) 0.001"),
        (vec!["--rootfs=/no/such/rootfs"], "/no/such/rootfs"),
        (vec![&profile_flag], "bad.toml"),
        (vec![&seccomp_flag], "no_such_syscall_wt"),
        (vec!["--bind=/no/such/src:/x"], "/no/such/src"),
        (vec!["--time-limit=-1"], "time-limit"),
        (vec!["--secret=a"], "NAME=HOSTFILE"),
    ];
    for (flags, needle) in cases {
        let o = watertight()
            .arg("run")
            .args(&flags)
            .args(["--", "/bin/true"])
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(125), "{flags:?}: {err}");
        assert!(
            err.contains(needle),
            "{flags:?}: error does not name {needle}: {err}"
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{flags:?}: not one line: {err}"
        );
    }
}

#[test]
fn non_root_caller_runs_rootless_and_says_so() {
    if !require_root(&this_test()) || !require_tools(&this_test(), &["setpriv"], "util-linux") {
        return;
    }
    // Without root the run goes through user namespaces (docs/profile.md "Without root"):
    // nothing that needs root is attempted, and the verdict says what was not enforced.
    let o = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_watertight"),
            "run",
            "--result",
            "-",
            "--",
            "/bin/true",
        ])
        .current_dir("/")
        .output()
        .expect("setpriv runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json = &stderr(&o)[stderr(&o).find('{').expect("the verdict")..];
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["status"], "OK", "{v}");
    assert_eq!(v["rootless"], true, "{v}");
    assert!(
        v["unenforced"].as_array().is_some_and(|u| !u.is_empty()),
        "{v}"
    );
    assert!(
        !stderr(&o).contains("warning"),
        "no root-only step attempted: {}",
        stderr(&o)
    );
}

#[test]
fn working_directory_under_a_private_directory_is_shown() {
    if !require_root("working_directory_under_a_private_directory") {
        return;
    }
    // Like a checkout under /root (mode 0700): the sandbox's own uid could not look it up, so
    // the bind must be resolved as the caller.
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        private.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let work = private.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("input.txt"), "42\n").unwrap();
    let o = watertight()
        .args(["run", "--bind-cwd", "--", "/bin/cat", "input.txt"])
        .current_dir(&work)
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "42\n", "{}", stderr(&o));
}

#[test]
fn a_failed_setup_step_is_xx_with_its_stage() {
    if !require_root("a_failed_setup_step_is_xx_with_its_stage") {
        return;
    }
    // RLIMIT_NOFILE above fs.nr_open: setrlimit fails in the program's last steps before execve.
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let profile = watertight()
        .args(["profile", "show", "default"])
        .output()
        .unwrap();
    let text = String::from_utf8(profile.stdout).unwrap();
    assert!(text.contains("open_files = 1024"), "{text}");
    let text = text.replace(
        "open_files = 1024",
        &format!("open_files = {}", nr_open + 1),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nofile.toml");
    std::fs::write(&path, text).unwrap();
    let (o, v) = run_with_result(&[&format!("--profile={}", path.display())], &["/bin/true"]);
    assert_eq!(v["status"], "XX", "{v}");
    assert_eq!(v["stage"], "rlimits", "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(
        message.starts_with("sandbox setup failed at rlimits: setrlimit RLIMIT_NOFILE"),
        "{message}"
    );
    assert!(stderr(&o).contains(message), "{}", stderr(&o));
    // Other runs may be going on: only this sandbox's cgroups must be gone.
    let id = v["sandbox_id"].as_str().unwrap();
    let left: Vec<_> = watertight_cgroups()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&format!("watertight-{id}@")))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
