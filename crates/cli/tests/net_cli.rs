//! `watertight net` end to end, inside a network namespace each test creates (and removes, also on
//! panic): exit codes, one-line errors that apply nothing, guard/check/remove, static neighbours.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_watertight");

/// Returns from the test unless it can run: root (a SKIP, or a failure with
/// WATERTIGHT_REQUIRE_ROOT=1), and ip and nft (a SKIP, or a failure in CI).
macro_rules! skip_unless_able {
    () => {
        let test = watertight_testkit::this_test();
        if !watertight_testkit::require_root(&test)
            || !watertight_testkit::require_tools(&test, &["ip", "nft"], "iproute2 nftables")
        {
            return;
        }
    };
}

/// A namespace holding bridge br0 with ports veth-a and veth-b, plus a leaf namespace on veth-b's
/// peer; a stray veth not on the bridge.
struct Lab {
    ns: String,
    leaf: String,
    dir: tempfile::TempDir,
}

static N: AtomicU32 = AtomicU32::new(0);

fn ok(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Lab {
    fn new() -> Lab {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let ns = format!("wtnetcli{}-{n}", std::process::id());
        let lab = Lab {
            leaf: format!("{ns}-leaf"),
            ns,
            dir: tempfile::tempdir().unwrap(),
        };
        ok(&["ip", "netns", "add", &lab.ns]);
        ok(&["ip", "netns", "add", &lab.leaf]);
        let s = lab.ns.as_str();
        ok(&["ip", "-n", s, "link", "add", "br0", "type", "bridge"]);
        ok(&[
            "ip", "-n", s, "link", "add", "veth-a", "type", "veth", "peer", "name", "peer-a",
        ]);
        ok(&[
            "ip", "-n", s, "link", "add", "veth-b", "type", "veth", "peer", "name", "eth0",
            "netns", &lab.leaf,
        ]);
        ok(&[
            "ip",
            "-n",
            s,
            "link",
            "add",
            "stray",
            "type",
            "veth",
            "peer",
            "name",
            "stray-peer",
        ]);
        ok(&["ip", "-n", s, "link", "set", "veth-a", "master", "br0"]);
        ok(&["ip", "-n", s, "link", "set", "veth-b", "master", "br0"]);
        ok(&["ip", "-n", &lab.leaf, "link", "set", "eth0", "up"]);
        lab
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn wt(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns, BIN, "net"])
            .args(args)
            .output()
            .unwrap()
    }

    fn tables(&self) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "nft", "list", "tables"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args([
                "netns", "exec", &self.ns, BIN, "net", "guard", "--bridge", "br0", "--remove",
            ])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.leaf])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

const GOOD: &str = r#"
[[port]]
iface = "veth-a"
mac = "02:42:ac:11:00:35"
ipv4 = ["10.0.0.53"]
ipv6 = ["fd00::53"]

[[port]]
iface = "veth-b"
mac = "02:42:ac:11:00:10"
ipv4 = ["10.0.0.10"]
"#;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn bad_input_is_one_line_exit_2_and_applies_nothing() {
    skip_unless_able!();
    let lab = Lab::new();
    let cases: Vec<(String, String, &str)> = vec![
        (
            "br0".into(),
            GOOD.replace("02:42:ac:11:00:10", "02:42:ac:11:0:10"),
            "malformed MAC",
        ),
        (
            "br0".into(),
            GOOD.replace("10.0.0.10", "10.0.0.53"),
            "bound to both",
        ),
        (
            "br0".into(),
            GOOD.replace("fd00::53", "fd00::zz"),
            "ports.toml",
        ),
        ("br7".into(), GOOD.into(), "does not exist"),
        (
            "br0".into(),
            GOOD.replace("veth-b", "stray"),
            "not on bridge",
        ),
        (
            "br0".into(),
            GOOD.replace("veth-b", "nosuch0"),
            "does not exist",
        ),
        ("veth-a".into(), GOOD.into(), "not a bridge"),
    ];
    for (bridge, text, expect) in cases {
        let path = lab.file("ports.toml", &text);
        let out = lab.wt(&["guard", "--bridge", &bridge, "--bindings", &path]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{expect}: {err}");
        assert!(
            err.starts_with("watertight: ") && err.trim_end().lines().count() == 1,
            "{err}"
        );
        assert!(err.contains(expect), "wanted {expect:?} in {err}");
        assert_eq!(lab.tables().trim(), "", "{expect}: something was applied");
    }
    let out = lab.wt(&[
        "guard",
        "--bridge",
        "br0",
        "--bindings",
        "/nonexistent/ports.toml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/ports.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn guard_check_remove_round_trip() {
    skip_unless_able!();
    let lab = Lab::new();
    let path = lab.file("ports.toml", GOOD);

    let out = lab.wt(&["guard", "--bridge", "br0", "--bindings", &path, "--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("hook prerouting"));
    assert_eq!(lab.tables().trim(), "", "dry run applied");

    let out = lab.wt(&["check", "--bridge", "br0", "--bindings", &path]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("table_missing"));

    let out = lab.wt(&["guard", "--bridge", "br0", "--bindings", &path]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(lab.tables().contains("table bridge watertight_br0"));

    let out = lab.wt(&[
        "check",
        "--bridge",
        "br0",
        "--bindings",
        &path,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["findings"], serde_json::json!([]));
    assert_eq!(report["ports"], 2);

    // A poisoned entry in the leaf's cache: 10.0.0.53 with veth-b's MAC.
    ok(&[
        "ip",
        "-n",
        &lab.leaf,
        "neigh",
        "replace",
        "10.0.0.53",
        "lladdr",
        "02:42:ac:11:00:10",
        "dev",
        "eth0",
    ]);
    let out = lab.wt(&[
        "check",
        "--bridge",
        "br0",
        "--bindings",
        &path,
        "--netns",
        &lab.leaf,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["findings"][0]["kind"], "neighbour_mismatch",
        "{report}"
    );

    let out = lab.wt(&["guard", "--bridge", "br0", "--remove"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(lab.tables().trim(), "");
}

#[test]
fn static_neighbours_are_permanent() {
    skip_unless_able!();
    let lab = Lab::new();
    let out = lab.wt(&[
        "neigh",
        "--netns",
        &lab.leaf,
        "--static",
        "10.0.0.53=02:42:ac:11:00:35",
        "--static",
        "fd00::53=02:42:ac:11:00:35",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = Command::new("ip")
        .args(["-n", &lab.leaf, "neigh", "show"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("10.0.0.53 dev eth0 lladdr 02:42:ac:11:00:35 PERMANENT"),
        "{shown}"
    );
    assert!(
        shown.contains("fd00::53 dev eth0 lladdr 02:42:ac:11:00:35 PERMANENT"),
        "{shown}"
    );

    let out = lab.wt(&["neigh", "--netns", &lab.leaf, "--static", "10.0.0.53=nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("malformed MAC"), "{}", stderr(&out));
}

#[test]
fn non_root_is_told_to_use_root() {
    skip_unless_able!();
    if !watertight_testkit::require_tools(
        "non_root_is_told_to_use_root",
        &["setpriv"],
        "util-linux",
    ) {
        return;
    }
    let lab = Lab::new();
    let path = lab.file("ports.toml", GOOD);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(lab.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns,
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "net",
            "guard",
            "--bridge",
            "br0",
            "--bindings",
            &path,
        ])
        .output()
        .unwrap();
    if stderr(&out).contains("Permission denied") && !stderr(&out).starts_with("watertight") {
        watertight_testkit::host_lacks(
            "non_root_is_told_to_use_root",
            "the watertight binary is not readable by uid 65534 (a checkout under a private directory)",
        );
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("needs root"), "{}", stderr(&out));
}
