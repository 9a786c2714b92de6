//! `watertight run` and `watertight batch` without root, as an unprivileged user the test makes
//! (useradd, removed with its home by a guard even on failure), started with setpriv: the
//! sandbox isolates as the root one does, refuses mount and new user namespaces inside, ends a
//! time limit and an output limit, and its verdict says it ran rootless and what it did not
//! enforce. A delegated cgroup2 directory (made and chowned as systemd's Delegate= does) shows
//! the cgroup placement path.

mod common;
use common::*;
use watertight_testkit::this_test;

use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// useradd and userdel lock /etc/passwd: one at a time across this file's tests.
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// An unprivileged user of the test's own, with a home (0700) and a copy of the binary it can
/// execute; userdel -r and the copy removed on drop.
struct TestUser {
    name: String,
    uid: u32,
    home: PathBuf,
    bin_dir: tempfile::TempDir,
}

impl TestUser {
    fn new(tag: &str) -> TestUser {
        let name = format!("wtrl-{tag}-{}", std::process::id());
        {
            let _lock = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
            let o = Command::new("useradd")
                .args(["--create-home", "--shell", "/bin/sh", "--user-group", &name])
                .output()
                .expect("useradd runs");
            assert!(o.status.success(), "useradd {name}: {}", stderr(&o));
        }
        // From here the guard owns the account.
        let bin_dir = world_readable_tempdir();
        let mut user = TestUser {
            uid: 0,
            home: PathBuf::new(),
            bin_dir,
            name,
        };
        // name:x:uid:gid:gecos:home:shell
        let entry = stdout(
            &Command::new("getent")
                .args(["passwd", &user.name])
                .output()
                .unwrap(),
        );
        let fields: Vec<&str> = entry.trim().split(':').collect();
        user.uid = fields[2].parse().unwrap();
        user.home = PathBuf::from(fields[5]);
        std::fs::set_permissions(&user.home, std::fs::Permissions::from_mode(0o700)).unwrap();
        // The build's binary may lie under a directory the user cannot reach (a checkout
        // under /root): a copy it can execute.
        let copy = user.bin_dir.path().join("watertight");
        std::fs::copy(watertight_testkit::watertight_bin(), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        user
    }

    /// `watertight ARGS` as this user (setpriv, its own groups), in `dir`.
    fn watertight(&self, dir: &Path, args: &[&str]) -> Output {
        self.command(dir, args).output().expect("setpriv runs")
    }

    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            &self.name,
            "--regid",
            &self.name,
            "--init-groups",
        ])
        .arg(self.bin_dir.path().join("watertight"))
        .args(args)
        .current_dir(dir)
        .env("HOME", &self.home)
        .env("XDG_RUNTIME_DIR", self.runtime_dir());
        c
    }

    /// Its runtime directory (systemd's /run/user/UID stands for it): 0700, its own.
    fn runtime_dir(&self) -> PathBuf {
        let dir = self.home.join("run");
        if std::fs::create_dir(&dir).is_ok() {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
            std::os::unix::fs::chown(&dir, Some(self.uid), Some(self.uid)).unwrap();
        }
        dir
    }

    /// Makes `rel` in the user's home, owned by the user.
    fn file(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.home.join(rel);
        std::fs::write(&path, contents).unwrap();
        std::os::unix::fs::chown(&path, Some(self.uid), Some(self.uid)).unwrap();
        path
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _lock = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let o = Command::new("userdel")
            .args(["--remove", &self.name])
            .output();
        if !o.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("warning: userdel --remove {} failed: {o:?}", self.name);
        }
    }
}

/// The verdict `--result -` printed on stderr (after anything else there).
fn verdict(o: &Output) -> Value {
    let err = stderr(o);
    let start = err
        .find("{\n")
        .unwrap_or_else(|| panic!("no verdict on stderr: {err}"));
    serde_json::from_str(&err[start..]).unwrap_or_else(|e| panic!("{e}: {err}"))
}

fn unenforced(v: &Value) -> String {
    v["unenforced"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| l.as_str().unwrap().to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn ready(test: &str) -> bool {
    require_root(test)
        && require_tools(
            test,
            &["useradd", "userdel", "setpriv"],
            "passwd, util-linux",
        )
        && require_tools(test, &["python3"], "python3")
}

#[test]
fn rootless_run_isolates_and_says_what_it_did_not_enforce() {
    if !ready(&this_test()) {
        return;
    }
    let user = TestUser::new("run");
    let home = user.home.clone();
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--result", "-"];
        all.extend_from_slice(args);
        user.watertight(&home, &all)
    };

    // Hello world, and the verdict says how it ran.
    let o = run(&["--", "/bin/echo", "hello"]);
    assert_eq!(stdout(&o), "hello\n", "{}", stderr(&o));
    let v = verdict(&o);
    assert_eq!(v["status"], "OK", "{v}");
    assert_eq!(v["rootless"], true, "{v}");
    assert!(v["sandbox_id"]
        .as_str()
        .unwrap()
        .starts_with(&format!("wt-u{}-", user.uid)));
    let lines = unenforced(&v);
    assert!(lines.contains("devices: no device cgroup"), "{lines}");
    assert!(
        lines.contains("memory: ") || v["cgroup"].is_string(),
        "memory is either the cgroup's or named unenforced: {v}"
    );
    assert!(
        !stderr(&o).contains("warning"),
        "nothing root-only attempted: {}",
        stderr(&o)
    );
    // The compiled seccomp filter is cached in the caller's runtime directory.
    let cache = user.runtime_dir().join("watertight/seccomp-cache");
    let entries = std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0);
    assert_eq!(entries, 1, "{}", cache.display());

    // Its own pid namespace: pid 1, the shell and ls, nothing of the host's.
    let o = run(&["--", "/bin/sh", "-c", "ls /proc | grep -c '^[0-9]'"]);
    let n: u32 = stdout(&o).trim().parse().unwrap_or(999);
    assert!(n <= 4, "{n} processes visible: {}", stderr(&o));

    // The root is read-only; a file of the caller's it was not given is not there.
    let secret = user.file("secret.txt", "caller's own\n");
    let script = format!(
        "touch /usr/wt-rootless-probe 2>/dev/null && echo wrote-usr; \
         touch /etc/wt-rootless-probe 2>/dev/null && echo wrote-etc; \
         cat {} 2>/dev/null && echo read-secret; echo done",
        secret.display()
    );
    let o = run(&["--", "/bin/sh", "-c", &script]);
    assert_eq!(stdout(&o), "done\n", "{}", stderr(&o));
    assert!(!Path::new("/usr/wt-rootless-probe").exists());

    // mount and a new user namespace are refused (EPERM) inside.
    let probe = "import ctypes\n\
                 libc = ctypes.CDLL(None, use_errno=True)\n\
                 r = libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)\n\
                 print('mount', r, ctypes.get_errno())\n\
                 r = libc.unshare(0x10000000)\n\
                 print('unshare', r, ctypes.get_errno())\n";
    let o = run(&["--", "python3", "-c", probe]);
    assert_eq!(stdout(&o), "mount -1 1\nunshare -1 1\n", "{}", stderr(&o));

    // A CPU-time limit ends a busy loop: TO.
    let o = run(&[
        "--time-limit",
        "1",
        "--",
        "/bin/sh",
        "-c",
        "while :; do :; done",
    ]);
    let v = verdict(&o);
    assert_eq!(v["status"], "TO", "{v}");

    // A memory hog: ML where a delegated cgroup enforces memory, else RE with the rlimit named.
    let o = run(&[
        "--memory-limit",
        "64M",
        "--",
        "python3",
        "-c",
        "x = bytearray(400 << 20); print('allocated')",
    ]);
    let v = verdict(&o);
    assert!(!stdout(&o).contains("allocated"), "{v}");
    let lines = unenforced(&v);
    if lines.contains("memory: ") {
        assert_eq!(v["status"], "RE", "{v}");
        assert!(lines.contains("RLIMIT_AS 64M"), "{lines}");
    } else {
        assert_eq!(v["status"], "ML", "{v}");
    }

    // Output limit: OL.
    let o = run(&["--output-limit", "4K", "--", "yes"]);
    assert_eq!(verdict(&o)["status"], "OL");

    // The box is the caller's already: what the program makes there is the caller's on disk.
    let work = home.join("box");
    let o = run(&[
        "--box",
        work.to_str().unwrap(),
        "--",
        "/bin/sh",
        "-c",
        "echo made > out.txt",
    ]);
    assert_eq!(verdict(&o)["status"], "OK", "{}", stderr(&o));
    let made = work.join("out.txt");
    assert_eq!(std::fs::read_to_string(&made).unwrap(), "made\n");
    assert_eq!(std::fs::metadata(&made).unwrap().uid(), user.uid);

    // What needs root is refused up front, with the fix.
    let o = run(&[
        "--box",
        work.to_str().unwrap(),
        "--box-size",
        "1M",
        "--",
        "/bin/true",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("--box-size needs root"),
        "{}",
        stderr(&o)
    );
    // The own-kernel tiers need root: one line with the way out, exit 125.
    for tier in ["gvisor", "vm"] {
        let o = run(&["--isolation", tier, "--", "/bin/true"]);
        assert_eq!(o.status.code(), Some(125), "{tier}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{tier}: {err}");
        assert!(
            err.contains(&format!("--isolation {tier} needs root")),
            "{err}"
        );
        assert!(err.contains("--isolation namespaces"), "{err}");
    }
    if !unenforced(&verdict(&run(&["--", "/bin/true"]))).contains("no delegated cgroup") {
        return; // the forensic response has a cgroup to freeze
    }
    let o = run(&["--on-violation", "forensic", "--", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--on-violation forensic needs the sandbox in a cgroup"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn rootless_batch_grades_jobs_into_a_results_file() {
    if !ready(&this_test()) {
        return;
    }
    let user = TestUser::new("batch");
    user.file("1.in", "2 3\n");
    user.file("1.out", "5\n");
    let job = |id: &str, argv: &[&str]| {
        serde_json::json!({
            "id": id,
            "steps": [{"name": "test1", "argv": argv, "stdin": "1.in", "expected": "1.out",
                       "time_limit": 1, "memory_limit": "64M"}]
        })
        .to_string()
    };
    let jobs = [
        job("ac", &["/bin/sh", "-c", "read a b; echo $((a + b))"]),
        job("wa", &["/bin/sh", "-c", "read a b; echo $((a - b))"]),
        job("to", &["/bin/sh", "-c", "while :; do :; done"]),
        job("re", &["/bin/sh", "-c", "exit 3"]),
    ]
    .join("\n")
        + "\n";
    user.file("jobs.jsonl", &jobs);
    let o = user.watertight(
        &user.home,
        &[
            "batch",
            "--parallel",
            "2",
            "--results",
            "results.jsonl",
            "jobs.jsonl",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let results = std::fs::read_to_string(user.home.join("results.jsonl")).unwrap();
    let mut got = Vec::new();
    for line in results.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let step = &v["steps"][0];
        assert_eq!(step["rootless"], true, "{v}");
        assert!(
            step["unenforced"].as_array().is_some_and(|u| !u.is_empty()),
            "{v}"
        );
        got.push(format!(
            "{}:{}",
            v["id"].as_str().unwrap(),
            v["verdict"].as_str().unwrap()
        ));
    }
    got.sort();
    assert_eq!(got, ["ac:AC", "re:RE", "to:TO", "wa:WA"], "{results}");
    let meta = std::fs::metadata(user.home.join("results.jsonl")).unwrap();
    assert_eq!(meta.uid(), user.uid, "the results are the caller's");
}

/// A cgroup2 directory delegated to a user as systemd's `Delegate=yes` leaves one: the
/// directory and its cgroup.procs, cgroup.subtree_control and cgroup.threads chowned, with a
/// leaf (chowned too) for the user's processes. Removed on drop.
struct DelegatedCgroup {
    parent: PathBuf,
    leaf: PathBuf,
}

impl DelegatedCgroup {
    fn new(unified: &Path, user: &TestUser) -> DelegatedCgroup {
        let parent = unified.join(format!("wtrl-delegated-{}", std::process::id()));
        std::fs::create_dir(&parent).unwrap();
        let leaf = parent.join("caller");
        let guard = DelegatedCgroup {
            parent: parent.clone(),
            leaf: leaf.clone(),
        };
        // Where the host offers them (pure cgroup v2), the controllers the limits need, as a
        // user manager's slice enables them; the hybrid host's unified hierarchy offers none.
        let offered = std::fs::read_to_string(parent.join("cgroup.controllers")).unwrap();
        let wanted: Vec<String> = ["memory", "pids", "cpu"]
            .iter()
            .filter(|c| offered.split_whitespace().any(|o| o == **c))
            .map(|c| format!("+{c}"))
            .collect();
        if !wanted.is_empty() {
            std::fs::write(parent.join("cgroup.subtree_control"), wanted.join(" ")).unwrap();
        }
        std::fs::create_dir(&leaf).unwrap();
        for dir in [&parent, &leaf] {
            for f in [
                "",
                "cgroup.procs",
                "cgroup.subtree_control",
                "cgroup.threads",
            ] {
                let p = if f.is_empty() {
                    dir.clone()
                } else {
                    dir.join(f)
                };
                std::os::unix::fs::chown(&p, Some(user.uid), Some(user.uid)).unwrap();
            }
        }
        guard
    }
}

impl Drop for DelegatedCgroup {
    fn drop(&mut self) {
        // A sandbox cgroup left by a failed run, then the leaf, then the directory.
        for dir in [&self.leaf, &self.parent] {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_name().to_string_lossy().starts_with("watertight-") {
                        let _ = std::fs::remove_dir(e.path());
                    }
                }
            }
        }
        let _ = std::fs::remove_dir(&self.leaf);
        if let Err(e) = std::fs::remove_dir(&self.parent) {
            eprintln!("warning: rmdir {}: {e}", self.parent.display());
        }
    }
}

/// The unified hierarchy's mount point.
fn unified_root() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if !right.starts_with("cgroup2 ") {
            return None;
        }
        left.split(' ').nth(4).map(PathBuf::from)
    })
}

#[test]
fn rootless_run_in_a_delegated_cgroup_makes_its_cgroup_there() {
    if !ready(&this_test()) {
        return;
    }
    let Some(unified) = unified_root() else {
        watertight_testkit::host_lacks(&this_test(), "no cgroup2 hierarchy is mounted");
        return;
    };
    let user = TestUser::new("cg");
    let delegated = DelegatedCgroup::new(&unified, &user);
    let run = |args: &[&str]| {
        // Root puts the shell in the user's leaf, then it becomes the user (exec setpriv).
        let mut c = user.command(&user.home, args);
        let setpriv = format!("{:?}", c.get_program());
        let argv: Vec<String> = c
            .get_args()
            .map(|a| format!("'{}'", a.to_string_lossy()))
            .collect();
        let script = format!(
            "echo $$ > {}/cgroup.procs && exec {} {}",
            delegated.leaf.display(),
            setpriv.trim_matches('"'),
            argv.join(" ")
        );
        c = Command::new("/bin/sh");
        c.args(["-c", &script]).current_dir(&user.home);
        c.output().unwrap()
    };
    let enforced = std::fs::read_to_string(delegated.parent.join("cgroup.subtree_control"))
        .unwrap()
        .contains("memory");

    let o = run(&[
        "run",
        "--result",
        "-",
        "--",
        "/bin/cat",
        "/proc/self/cgroup",
    ]);
    let v = verdict(&o);
    assert_eq!(v["status"], "OK", "{v}");
    assert_eq!(v["rootless"], true, "{v}");
    // In the delegated subtree: in the directory that enables the controllers where one does,
    // else in the closest one the user may write (its own leaf).
    let made = Path::new(v["cgroup"].as_str().expect("a cgroup of its own"));
    let expected_parent = if enforced {
        &delegated.parent
    } else {
        &delegated.leaf
    };
    assert_eq!(made.parent(), Some(expected_parent.as_path()), "{v}");
    // Its own cgroup namespace: its cgroup is its root.
    assert!(stdout(&o).lines().any(|l| l == "0::/"), "{}", stdout(&o));
    let lines = unenforced(&v);
    assert!(
        !lines.contains("cpu_time"),
        "cpu.stat counts CPU time live: {lines}"
    );
    if enforced {
        assert!(!lines.contains("memory: "), "{lines}");
    } else {
        assert!(
            lines.contains("memory: the delegated cgroup") && lines.contains("RLIMIT_AS"),
            "{lines}"
        );
    }
    // Removed after the run.
    let left: Vec<_> = std::fs::read_dir(&delegated.parent)
        .unwrap()
        .chain(std::fs::read_dir(&delegated.leaf).unwrap())
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("watertight-"))
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // The CPU-time limit is measured from the cgroup, whole sandbox: TO with its message.
    let o = run(&[
        "run",
        "--result",
        "-",
        "--time-limit",
        "0.5",
        "--",
        "/bin/sh",
        "-c",
        "while :; do :; done",
    ]);
    let v = verdict(&o);
    assert_eq!(v["status"], "TO", "{v}");
    assert_eq!(v["message"], "CPU-time limit exceeded", "{v}");
}
