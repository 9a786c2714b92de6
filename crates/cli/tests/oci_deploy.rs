//! watertight-runc's Kubernetes deployment (deploy/oci-runtime/): the installer DaemonSet is
//! clean under watertight's own Kubernetes audit, accepting exactly the findings its host access
//! produces, each with a reason; the containerd snippets are TOML naming the binary path the
//! installer writes, under the handler the RuntimeClass names; and install.sh, run against a
//! temporary root as the DaemonSet runs it against the node's, installs, changes nothing (and
//! restarts nothing) the second time, upgrades a floor it wrote, and refuses a floor changed by
//! hand or a dynamically linked binary without writing anything.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use watertight_testkit::finding_keys as keys;
use watertight_testkit::{require_tools, stderr, stdout, watertight_bin};

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/oci-runtime")
        .join(file)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// What containerd runs for the handler: the symlink install.sh makes.
const BINARY_NAME: &str = "/usr/local/bin/watertight-runc";

const ACCEPTED: [&str; 8] = [
    "critical privileged",
    "high pss/hostNamespaces",
    "high pss/hostPathVolumes",
    "high pss/privileged",
    "high sensitive-host-mount",
    "high shared-host-namespace[pid]",
    "low run-as-root",
    "low shared-host-namespace[user]",
];

#[test]
fn the_installer_accepts_exactly_its_host_access_and_nothing_else_is_found() {
    let (code, report) = watertight_testkit::audit_k8s_json(&deploy(""), &["--fail-on", "low"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(keys(&report["findings"]), set(&[]), "{report:#}");
    assert_eq!(keys(&report["accepted"]), set(&ACCEPTED), "{report:#}");
    for a in report["accepted"].as_array().unwrap() {
        assert!(
            a["justification"].as_str().unwrap_or_default().len() > 40,
            "a real justification: {a:#}"
        );
        assert_eq!(
            a["workload"],
            "watertight-system/DaemonSet/watertight-runtime-installer"
        );
    }
    assert!(report.get("errors").is_none(), "{report:#}");
    assert!(report.get("warnings").is_none(), "{report:#}");
    assert_eq!(report["workloads"], 1, "one workload: the DaemonSet");
    let pss = report["pss"].as_array().unwrap();
    assert_eq!(
        pss[0]["allowed"], false,
        "upstream's verdict, whatever is accepted"
    );

    // The acceptances are what makes it clean: ignoring them, every finding counts again.
    let (code, report) = watertight_testkit::audit_k8s_json(&deploy(""), &["--ignore-accepted"]);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(keys(&report["findings"]), set(&ACCEPTED), "{report:#}");
}

#[test]
fn only_the_init_container_is_privileged_and_the_host_paths_are_what_install_sh_writes() {
    let yaml = read(&deploy("daemonset.yaml"));
    assert_eq!(yaml.matches("privileged: true").count(), 1, "{yaml}");
    let init =
        &yaml[yaml.find("initContainers:").unwrap()..yaml.find("\n      containers:").unwrap()];
    assert!(
        init.contains("privileged: true"),
        "the init container: {init}"
    );
    let hold =
        &yaml[yaml.find("\n      containers:").unwrap()..yaml.find("\n      volumes:").unwrap()];
    for locked in [
        "runAsNonRoot: true",
        "allowPrivilegeEscalation: false",
        r#"drop: ["ALL"]"#,
        "readOnlyRootFilesystem: true",
        "type: RuntimeDefault",
    ] {
        assert!(
            hold.contains(locked),
            "the long-running container: {locked}"
        );
    }
    assert!(!hold.contains("volumeMounts"), "it mounts nothing: {hold}");
    // hostPath volumes: exactly the directories install.sh writes under ROOT=/host.
    let host_paths: BTreeSet<&str> = yaml
        .lines()
        .zip(yaml.lines().skip(1))
        .filter(|(l, _)| l.trim() == "hostPath:")
        .map(|(_, next)| next.trim().strip_prefix("path: ").unwrap())
        .collect();
    assert_eq!(
        host_paths,
        BTreeSet::from(["/usr/local/bin", "/etc/watertight", "/etc/containerd"])
    );
    for p in &host_paths {
        assert!(yaml.contains(&format!("mountPath: /host{p}\n")), "{p}");
    }
    assert!(yaml.contains("name: ROOT\n              value: /host\n"));
    assert!(!yaml.contains("hostNetwork:") && !yaml.contains("hostIPC:"));
}

#[test]
fn the_configmap_floor_is_the_shipped_runtime_toml() {
    let yaml = read(&deploy("daemonset.yaml"));
    let key = "  runtime.toml: |\n";
    let start = yaml.find(key).expect("the ConfigMap's key") + key.len();
    let block: String = yaml[start..]
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    assert_eq!(block.trim_end(), read(&deploy("runtime.toml")).trim_end());
}

/// A TOML file as JSON, read by Python's tomllib (the workspace has no TOML reader of its own
/// in the CLI's dependencies).
fn toml_json(test: &str, path: &Path) -> Option<serde_json::Value> {
    if !require_tools(test, &["python3"], "python3") {
        return None;
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], 'rb'))))",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}: {}", path.display(), stderr(&out));
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// The `watertight` handler's table of a containerd config, under the CRI plugin `plugin`.
fn handler<'a>(config: &'a serde_json::Value, plugin: &str) -> &'a serde_json::Value {
    &config["plugins"][plugin]["containerd"]["runtimes"]["watertight"]
}

fn assert_is_the_handler(h: &serde_json::Value) {
    assert_eq!(h["runtime_type"], "io.containerd.runc.v2", "{h:#}");
    assert_eq!(h["options"]["BinaryName"], BINARY_NAME, "{h:#}");
}

#[test]
fn containerd_snippets_are_toml_naming_the_installed_binary_under_the_runtimeclass_handler() {
    let test = "containerd_snippets_are_toml_naming_the_installed_binary";
    let Some(v2) = toml_json(test, &deploy("containerd-v2.toml")) else {
        return;
    };
    assert_is_the_handler(handler(&v2, "io.containerd.grpc.v1.cri"));
    let v3 = toml_json(test, &deploy("containerd-v3-dropin.toml")).unwrap();
    assert_eq!(v3["version"], 3);
    assert_is_the_handler(handler(&v3, "io.containerd.cri.v1.runtime"));
    let floor = toml_json(test, &deploy("runtime.toml")).unwrap();
    assert!(floor["version"].as_str().is_some_and(|v| !v.is_empty()));

    let class = read(&deploy("runtimeclass.yaml"));
    assert!(class.contains("kind: RuntimeClass\n"));
    assert!(
        class.contains("\n  name: watertight\nhandler: watertight\n"),
        "{class}"
    );
}

/// One run of install.sh as the DaemonSet runs it, against `root`; containerd's restart is a
/// line appended to `root`/../restarts.
fn install(root: &Path, env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg(deploy("install.sh"))
        .env("ROOT", root)
        .env("WATERTIGHT_BIN", watertight_bin())
        .env(
            "CONTAINERD_RESTART",
            format!("echo restarted >>'{}'", restarts(root).display()),
        );
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn restarts(root: &Path) -> PathBuf {
    root.parent().unwrap().join("restarts")
}

fn restart_count(root: &Path) -> usize {
    std::fs::read_to_string(restarts(root))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Every file under `root` with its inode and content: "nothing changed" is this being equal.
fn snapshot(root: &Path) -> Vec<(PathBuf, u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                dirs.push(p);
            } else if m.file_type().is_symlink() {
                let target = std::fs::read_link(&p).unwrap();
                out.push((p, m.ino(), target.into_os_string().into_encoded_bytes()));
            } else {
                out.push((p.clone(), m.ino(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn assert_ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(out), stderr(out));
}

/// One line on stderr naming `what`, exit `code`.
fn assert_refused(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}{}",
        stdout(out),
        stderr(out)
    );
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("install: ") && err.contains(what), "{err}");
}

#[test]
fn install_sh_installs_into_a_root_once_and_keeps_a_floor_changed_by_hand() {
    let test = "install_sh_installs_into_a_root_once";
    if !require_tools(test, &["python3"], "python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("node");
    std::fs::create_dir(&root).unwrap();

    // A node without config.toml (containerd's defaults): version 2 with the handler's tables.
    assert_ok(&install(&root, &[]));
    let bin = root.join("usr/local/bin/watertight");
    assert_eq!(
        std::fs::read(&bin).unwrap(),
        std::fs::read(watertight_bin()).unwrap()
    );
    assert_eq!(std::fs::metadata(&bin).unwrap().mode() & 0o7777, 0o755);
    let link = root.join(BINARY_NAME.trim_start_matches('/'));
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("watertight"));
    let floor = root.join("etc/watertight/runtime.toml");
    assert_eq!(read(&floor), read(&deploy("runtime.toml")));
    let config = root.join("etc/containerd/config.toml");
    let parsed = toml_json(test, &config).unwrap();
    assert_eq!(parsed["version"], 2);
    assert_is_the_handler(handler(&parsed, "io.containerd.grpc.v1.cri"));
    // The handler's BinaryName is the installed binary, reached through the symlink, whose
    // name selects runc's command line (runc's `--version` shape, with the OCI spec version).
    let version = Command::new(&link).arg("--version").output().unwrap();
    assert!(
        stdout(&version).starts_with("watertight-runc ") && stdout(&version).contains("spec: "),
        "{}",
        stdout(&version)
    );
    assert_eq!(restart_count(&root), 1);

    // Again: nothing rewritten (same inodes, same bytes), no restart.
    let before = snapshot(&root);
    let again = install(&root, &[]);
    assert_ok(&again);
    assert!(
        stdout(&again)
            .lines()
            .all(|l| l.starts_with("install: unchanged ")),
        "{}",
        stdout(&again)
    );
    assert_eq!(snapshot(&root), before);
    assert_eq!(restart_count(&root), 1);

    // A new floor replaces the one the installer wrote (a stricter floor rolled out); containerd
    // does not need a restart for it.
    let stricter = tmp.path().join("stricter.toml");
    std::fs::write(
        &stricter,
        read(&deploy("runtime.toml")).replace("on_violation = \"deny\"", "on_violation = \"kill\""),
    )
    .unwrap();
    assert_ok(&install(&root, &[("FLOOR", &stricter)]));
    assert_eq!(read(&floor), read(&stricter));
    assert_eq!(restart_count(&root), 1);

    // Changed by hand on the node: refused, exit 3, one line, nothing written at all.
    std::fs::write(&floor, read(&stricter) + "\n[paths]\nmasked = [\"/srv\"]\n").unwrap();
    let before = snapshot(&root);
    assert_refused(
        &install(&root, &[]),
        3,
        "etc/watertight/runtime.toml was changed on this node",
    );
    assert_eq!(snapshot(&root), before);
    // Removing it lets the installer write its floor again.
    std::fs::remove_file(&floor).unwrap();
    assert_ok(&install(&root, &[]));
    assert_eq!(read(&floor), read(&deploy("runtime.toml")));
}

#[test]
fn install_sh_adds_a_drop_in_to_a_containerd_2_config_and_keeps_its_settings() {
    let test = "install_sh_adds_a_drop_in_to_a_containerd_2_config";
    if !require_tools(test, &["python3"], "python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("node");
    let config = root.join("etc/containerd/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    let original = "version = 3\nimports = [\n  \"/etc/containerd/site.toml\",\n]\nroot = \"/srv/containerd\"\n\n[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n";
    std::fs::write(&config, original).unwrap();

    assert_ok(&install(&root, &[]));
    let dropin = root.join("etc/containerd/conf.d/watertight.toml");
    assert_eq!(read(&dropin), read(&deploy("containerd-v3-dropin.toml")));
    let parsed = toml_json(test, &config).unwrap();
    assert_eq!(
        parsed["imports"],
        serde_json::json!([
            "/etc/containerd/conf.d/watertight.toml",
            "/etc/containerd/site.toml"
        ])
    );
    assert_eq!(parsed["root"], "/srv/containerd");
    assert_eq!(
        handler(&parsed, "io.containerd.cri.v1.runtime"),
        &serde_json::Value::Null,
        "the handler is in the drop-in, not config.toml"
    );
    assert_eq!(
        read(&root.join("etc/containerd/config.toml.before-watertight")),
        original
    );
    assert_eq!(restart_count(&root), 1);
    let before = snapshot(&root);
    assert_ok(&install(&root, &[]));
    assert_eq!(snapshot(&root), before);
    assert_eq!(restart_count(&root), 1);
}

#[test]
fn a_failed_containerd_restart_is_retried_by_the_next_run_and_only_then() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("node");
    std::fs::create_dir(&root).unwrap();
    let failing = install(&root, &[("CONTAINERD_RESTART", Path::new("false"))]);
    assert_refused(&failing, 4, "failed: restart containerd on this node");
    assert!(
        root.join("etc/containerd/config.toml").is_file(),
        "installed before the restart"
    );
    // The configuration is in place now, but containerd has not read it: the next run restarts.
    assert_ok(&install(&root, &[]));
    assert_eq!(restart_count(&root), 1);
    assert!(!root
        .join("etc/watertight/.containerd-restart-pending")
        .exists());
    assert_ok(&install(&root, &[]));
    assert_eq!(restart_count(&root), 1);
}

#[test]
fn install_sh_refuses_a_dynamic_binary_and_a_foreign_handler_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("node");
    std::fs::create_dir(&root).unwrap();
    // Debian's /bin/sh (dash) is dynamically linked: it names the loader in PT_INTERP.
    let dynamic = std::fs::canonicalize("/bin/sh").unwrap();
    assert_refused(
        &install(&root, &[("WATERTIGHT_BIN", &dynamic)]),
        1,
        "is dynamically linked",
    );
    assert_refused(
        &install(&root, &[("WATERTIGHT_BIN", &deploy("install.sh"))]),
        1,
        "is not a 64-bit little-endian ELF",
    );
    assert!(snapshot(&root).is_empty(), "{:?}", snapshot(&root));

    // A config.toml that defines the handler itself: the installer does not add a second one.
    let config = root.join("etc/containerd/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.watertight]\n  runtime_type = \"io.containerd.runc.v2\"\n",
    )
    .unwrap();
    let before = snapshot(&root);
    assert_refused(
        &install(&root, &[]),
        1,
        "defines the runtime handler \"watertight\" itself",
    );
    assert_eq!(snapshot(&root), before);
    assert_eq!(restart_count(&root), 0);
}
