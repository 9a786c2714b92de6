//! The release artefacts end to end, from the scripts a release runs:
//!
//! - `scripts/build-deb.sh`: the .deb passes lintian without errors, installs into a throwaway
//!   dpkg root (never the machine's own), where the binary runs and the man pages, completions
//!   and docs are in place, and removes cleanly again;
//! - `scripts/release-tarball.sh --key`: `sha256sum -c` passes, the unpacked tree verifies with
//!   `watertight manifest verify` against the release key, and one flipped byte (in the tarball,
//!   in a repacked binary, in the manifest) or another key makes it fail; the same commit gives
//!   the same bytes.
//!
//! Both scripts run `cargo build --release --locked -p watertight` (slow: fat LTO), which cargo
//! does once: the second script finds it up to date. Build outputs go to temporary directories,
//! removed at the end.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use watertight_testkit::{
    have_tool, require, require_root, require_tools, stderr, stdout, watertight,
};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn run(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?} failed: {}", stderr(&o));
    o
}

/// Runs `scripts/NAME` with `args`; returns the path it prints last (the artefact).
fn script(name: &str, args: &[&std::ffi::OsStr]) -> PathBuf {
    let o = run(Command::new("bash")
        .arg(workspace().join("scripts").join(name))
        .args(args));
    let out = stdout(&o);
    PathBuf::from(out.lines().last().unwrap_or_default())
}

/// A copy of `file` at `to` with the byte at `at` (from the end when negative) inverted.
fn flipped(file: &Path, to: &Path, at: isize) -> PathBuf {
    let mut bytes = std::fs::read(file).unwrap();
    let i = if at < 0 {
        bytes.len() - at.unsigned_abs()
    } else {
        at as usize
    };
    bytes[i] ^= 0xff;
    std::fs::write(to, bytes).unwrap();
    to.to_path_buf()
}

fn dpkg_status(root: Option<&Path>) -> String {
    let mut cmd = Command::new("dpkg-query");
    if let Some(root) = root {
        cmd.arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ));
    }
    let o = cmd
        .args(["-W", "-f=${Status} ${Version}", "watertight"])
        .output()
        .unwrap();
    stdout(&o)
}

/// The lines of the machine's own dpkg log that name watertight.
fn host_log_lines() -> usize {
    std::fs::read_to_string("/var/log/dpkg.log")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("watertight"))
        .count()
}

#[test]
fn deb_passes_lintian_and_installs_runs_and_removes_in_a_throwaway_root() {
    let test = "deb_installs_in_a_throwaway_root";
    if !require_root(test)
        || !require_tools(
            test,
            &["dpkg-deb", "dpkg", "strip", "groff"],
            "dpkg binutils groff-base",
        )
    {
        return;
    }
    let host_before = (dpkg_status(None), host_log_lines());
    let out = tempfile::tempdir().unwrap();
    let deb = script("build-deb.sh", &["--out".as_ref(), out.path().as_os_str()]);
    let arch = stdout(&run(Command::new("dpkg").arg("--print-architecture")));
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        deb,
        out.path()
            .join(format!("watertight_{version}_{}.deb", arch.trim()))
    );
    let size = std::fs::metadata(&deb).unwrap().len();
    eprintln!("{}: {size} bytes", deb.display());

    let field = |name: &str| {
        let o = Command::new("dpkg-deb")
            .arg("--field")
            .arg(&deb)
            .arg(name)
            .output()
            .unwrap();
        stdout(&o).trim().to_string()
    };
    assert_eq!(field("Package"), "watertight");
    assert_eq!(field("Version"), version);
    assert_eq!(field("Architecture"), arch.trim());
    assert_eq!(field("Section"), "admin");
    assert_eq!(field("Priority"), "optional");
    assert_eq!(field("Depends"), "", "a static binary depends on nothing");
    assert!(field("Maintainer").contains('@'));
    assert!(field("Description").lines().count() > 2);

    // lintian (scripts/install-deps.sh installs it): errors fail, warnings are allowed.
    let lintian = "deb_lintian";
    if require(
        lintian,
        (!have_tool("lintian"))
            .then(|| "needs lintian (apt-get install lintian, or scripts/install-deps.sh)".into()),
    ) {
        // lintian leaves its ELF cache (mldbm-elf-*) in TMPDIR: one of its own, removed with
        // the test's output directory, so nothing stays in /tmp.
        let lintian_tmp = out.path().join("lintian-tmp");
        std::fs::create_dir(&lintian_tmp).unwrap();
        let o = Command::new("lintian")
            .env("TMPDIR", &lintian_tmp)
            .args(["--tag-display-limit", "0"])
            .arg(&deb)
            .output()
            .unwrap();
        let report = format!("{}{}", stdout(&o), stderr(&o));
        eprintln!("lintian:\n{report}");
        let errors: Vec<&str> = report.lines().filter(|l| l.starts_with("E:")).collect();
        assert!(errors.is_empty(), "lintian errors:\n{}", errors.join("\n"));
        // 0: no error tags; 1: error tags; anything else: lintian itself failed, so nothing
        // was checked.
        assert_eq!(o.status.code(), Some(0), "lintian failed: {report}");
    }

    // A throwaway dpkg root: its own database, nothing of the machine's.
    let root = tempfile::tempdir().unwrap();
    let admin = root.path().join("var/lib/dpkg");
    for dir in ["info", "updates"] {
        std::fs::create_dir_all(admin.join(dir)).unwrap();
    }
    std::fs::create_dir_all(root.path().join("var/log")).unwrap();
    std::fs::write(admin.join("status"), b"").unwrap();
    // --root: instdir and admindir inside it; --log: dpkg would log to the machine's own
    // /var/log/dpkg.log otherwise; --force-bad-path: a PATH without /sbin (ldconfig) is fine,
    // nothing is run; the package has no maintainer scripts (chrootless says: none in a chroot).
    let dpkg = |args: &[&std::ffi::OsStr]| {
        run(Command::new("dpkg")
            .arg(format!("--root={}", root.path().display()))
            .arg(format!(
                "--log={}",
                root.path().join("var/log/dpkg.log").display()
            ))
            .args(["--force-script-chrootless", "--force-bad-path"])
            .args(args))
    };
    dpkg(&["--install".as_ref(), deb.as_os_str()]);
    assert_eq!(
        dpkg_status(Some(root.path())),
        format!("install ok installed {version}")
    );
    let r = root.path();
    let o = run(Command::new(r.join("usr/bin/watertight")).arg("-V"));
    let said = stdout(&o);
    assert!(
        said.trim().starts_with(&format!("watertight {version} (")) && said.trim().ends_with(')'),
        "{said}"
    );
    for file in [
        "usr/share/man/man1/watertight.1.gz",
        "usr/share/man/man1/watertight-run.1.gz",
        "usr/share/man/man1/watertight-audit-host.1.gz",
        "usr/share/bash-completion/completions/watertight",
        "usr/share/zsh/vendor-completions/_watertight",
        "usr/share/fish/vendor_completions.d/watertight.fish",
        "usr/share/doc/watertight/copyright",
        "usr/share/doc/watertight/changelog.gz",
        "usr/share/doc/watertight/README.md",
        "usr/share/doc/watertight/examples/watertight-audit-daemonset.yaml",
        "usr/share/doc/watertight/examples/seccomp-default.json",
        "usr/share/doc/watertight/examples/profile-default.toml",
    ] {
        let meta = std::fs::metadata(r.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(meta.len() > 0, "{file} is empty");
    }
    let bash = std::fs::read_to_string(r.join("usr/share/bash-completion/completions/watertight"))
        .unwrap();
    assert!(bash.contains("complete -F"), "{bash}");
    let copyright = std::fs::read_to_string(r.join("usr/share/doc/watertight/copyright")).unwrap();
    assert!(copyright
        .starts_with("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"));
    assert!(copyright.contains("License: Apache-2.0"));
    // The installed man page, as man would show it: gzip, then groff.
    let page = run(Command::new("sh").arg("-c").arg(format!(
        "gzip -dc '{}' | groff -man -Tutf8 -P-cbou",
        r.join("usr/share/man/man1/watertight-run.1.gz").display()
    )));
    let text = stdout(&page);
    assert!(
        text.contains("NAME") && text.contains("watertight-run"),
        "{text}"
    );
    assert!(text.contains("--memory-limit"), "{text}");
    // The shipped TOML profile is one `run --profile` accepts.
    run(Command::new(r.join("usr/bin/watertight"))
        .args(["profile", "check"])
        .arg(r.join("usr/share/doc/watertight/examples/profile-default.toml")));
    systemd_units_hold(r);

    dpkg(&["--remove".as_ref(), "watertight".as_ref()]);
    assert!(!r.join("usr/bin/watertight").exists(), "removed");
    assert!(!r.join("usr/share/man/man1/watertight.1.gz").exists());
    let log = std::fs::read_to_string(root.path().join("var/log/dpkg.log")).unwrap();
    assert!(log.contains("remove watertight"), "{log}");
    assert_eq!(
        (dpkg_status(None), host_log_lines()),
        host_before,
        "the machine's own dpkg database and log are untouched"
    );
}

/// The installed audit timer and service and the BPF gatekeeper's unit: systemd reads them
/// (`systemd-analyze verify`; the gatekeeper's own checks: tests/bpf_gatekeeper_deploy.rs), and the
/// service's own command line, run with the confinement it declares (its capability bounding
/// set, no_new_privs), writes a Prometheus report in which the auditor is not a workload of its
/// own (it keeps the host's namespaces, see the unit's comments). This VM's PID 1 cannot be read,
/// so the run adds `--reference-pid` of this test process, as tests/image.rs does.
fn systemd_units_hold(r: &Path) {
    let units = r.join("lib/systemd/system");
    let service = std::fs::read_to_string(units.join("watertight-audit.service")).unwrap();
    let timer = std::fs::read_to_string(units.join("watertight-audit.timer")).unwrap();
    let gatekeeper =
        std::fs::read_to_string(units.join("watertight-bpf-gatekeeper.service")).unwrap();
    assert!(
        gatekeeper.contains("CapabilityBoundingSet=CAP_BPF CAP_PERFMON\n"),
        "{gatekeeper}"
    );
    assert!(timer.contains("WantedBy=timers.target"), "{timer}");
    let value = |key: &str| -> String {
        service
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key}= in the service"))
            .to_string()
    };
    let exec = value("ExecStart");
    let bounding = value("CapabilityBoundingSet");
    assert_eq!(bounding, "CAP_SYS_PTRACE");
    assert_eq!(value("NoNewPrivileges"), "yes");
    let installed = r.join("usr/bin/watertight");
    let scratch = tempfile::tempdir().unwrap();
    if require(
        "deb_systemd_verify",
        (!have_tool("systemd-analyze"))
            .then(|| "needs systemd-analyze (the systemd package)".into()),
    ) {
        // verify checks ExecStart's binary exists: point it at the installed one.
        let here = scratch.path().join("units");
        std::fs::create_dir(&here).unwrap();
        std::fs::write(
            here.join("watertight-audit.service"),
            service.replace("/usr/bin/watertight", &installed.display().to_string()),
        )
        .unwrap();
        std::fs::write(here.join("watertight-audit.timer"), &timer).unwrap();
        std::fs::write(
            here.join("watertight-bpf-gatekeeper.service"),
            gatekeeper.replace("/usr/bin/watertight", &installed.display().to_string()),
        )
        .unwrap();
        run(Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(here.join("watertight-audit.service"))
            .arg(here.join("watertight-audit.timer"))
            .arg(here.join("watertight-bpf-gatekeeper.service")));
    }
    if !require_tools("deb_systemd_exec", &["setpriv", "unshare"], "util-linux") {
        return;
    }
    let mut words: Vec<String> = exec.split_whitespace().map(str::to_string).collect();
    assert_eq!(words[0], "/usr/bin/watertight");
    words[0] = installed.display().to_string();
    words.push(format!("--reference-pid={}", std::process::id()));
    let cap = bounding.trim_start_matches("CAP_").to_lowercase();
    // The unit's command line in `wrapper`, its report as (workloads, findings).
    let audit = |name: &str, wrapper: &[&str]| -> (f64, f64) {
        let report = scratch.path().join(name).join("watertight.prom");
        std::fs::create_dir(report.parent().unwrap()).unwrap();
        let args: Vec<String> = words
            .iter()
            .map(|w| match w.strip_prefix("--output=") {
                Some(path) => {
                    assert!(path.ends_with("/watertight.prom"), "{path}");
                    format!("--output={}", report.display())
                }
                None => w.replace("%H", "test-node"),
            })
            .collect();
        let out = run(Command::new(wrapper[0]).args(&wrapper[1..]).args(&args));
        assert!(out.stdout.is_empty(), "{}", stdout(&out));
        let text = std::fs::read_to_string(&report).unwrap();
        let samples = watertight_report::prometheus::read(&text).expect("Prometheus text");
        let sum = |metric: &str| -> f64 {
            samples
                .iter()
                .filter(|s| s.name == metric)
                .map(|s| s.value)
                .sum()
        };
        // The BPF inventory needs CAP_SYS_ADMIN, which the unit does not grant by design: its
        // rules (bpf-*) differ between the two runs and are left out (docs/audit.md).
        let bpf: f64 = samples
            .iter()
            .filter(|s| {
                s.name == "watertight_audit_rule_findings"
                    && s.labels
                        .iter()
                        .any(|(k, v)| k == "rule" && v.starts_with("bpf-"))
            })
            .map(|s| s.value)
            .sum();
        (
            sum("watertight_audit_workloads"),
            sum("watertight_audit_findings_total") - bpf,
        )
    };
    let bounding_set = format!("--bounding-set=-all,+{cap}");
    // As systemd runs it: mount, UTS and IPC namespaces of its own (ProtectSystem=,
    // ProtectHostname=, PrivateIPC=), only the bounding set's capability.
    let confined = audit(
        "confined",
        &[
            "unshare",
            "--mount",
            "--uts",
            "--ipc",
            "--propagation=private",
            "setpriv",
            &bounding_set,
            "--inh-caps=-all",
            "--no-new-privs",
            "--",
        ],
    );
    let plain = audit("plain", &["env"]);
    assert_eq!(confined, plain, "the unit's confinement changes the report");
    // The check can fail: a process beside the auditor in its UTS namespace is a sandbox of
    // the host and reported. (The auditor itself is never reported: it is not a workload.)
    let own_uts = audit(
        "own-uts",
        &[
            "unshare",
            "--uts",
            "sh",
            "-c",
            "sleep 60 & s=$!; \"$@\"; rc=$?; kill $s; exit $rc",
            "sh",
        ],
    );
    assert!(own_uts.1 > plain.1, "{own_uts:?} vs {plain:?}");
}

#[test]
fn release_tarball_checks_and_its_signature_fails_on_one_flipped_byte() {
    let test = "release_tarball_checks_and_its_signature";
    if !require_tools(
        test,
        &["tar", "gzip", "sha256sum", "strip", "diff"],
        "tar gzip coreutils binutils diffutils",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = d.join("release.key");
    let pubkey = d.join("release.key.pub");
    let o = watertight()
        .args(["key", "generate", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    let out = d.join("out");
    let tarball = script(
        "release-tarball.sh",
        &[
            "--out".as_ref(),
            out.as_os_str(),
            "--key".as_ref(),
            key.as_os_str(),
        ],
    );
    let file_name = tarball.file_name().unwrap().to_str().unwrap().to_string();
    let name = file_name.trim_end_matches(".tar.gz").to_string();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        name.starts_with(&format!("watertight-{version}-")),
        "{name}"
    );
    let manifest = out.join(format!("{name}.manifest"));
    let sha = out.join(format!("{file_name}.sha256"));
    eprintln!(
        "{}: {} bytes",
        tarball.display(),
        std::fs::metadata(&tarball).unwrap().len()
    );

    // sha256sum -c passes, and fails on a flipped byte.
    run(Command::new("sha256sum")
        .arg("-c")
        .arg(&sha)
        .current_dir(&out));
    let sum_line = std::fs::read_to_string(&sha).unwrap();
    assert!(
        sum_line.ends_with(&format!("  {file_name}\n")),
        "{sum_line}"
    );

    // Contents.
    let listing = stdout(&run(Command::new("tar").arg("-tzf").arg(&tarball)));
    for entry in [
        "watertight",
        "LICENSE",
        "README.md",
        "man/watertight.1",
        "man/watertight-run.1",
        "man/watertight-audit-host.1",
        "completions/watertight.bash",
        "completions/_watertight",
        "completions/watertight.fish",
    ] {
        assert!(
            listing.lines().any(|l| l == format!("{name}/{entry}")),
            "{entry} not in the tarball:\n{listing}"
        );
    }

    let unpack = |tarball: &Path, into: &str| -> Option<PathBuf> {
        let to = d.join(into);
        std::fs::create_dir(&to).unwrap();
        let ok = Command::new("tar")
            .arg("-C")
            .arg(&to)
            .arg("-xpzf")
            .arg(tarball)
            .output()
            .unwrap()
            .status
            .success();
        ok.then(|| to.join(&name))
    };
    let verify = |tree: &Path, manifest: &Path, pubkey: &Path| -> Output {
        watertight()
            .args(["manifest", "verify"])
            .arg(tree)
            .arg("--manifest")
            .arg(manifest)
            .arg("--pubkey")
            .arg(pubkey)
            .output()
            .unwrap()
    };

    let tree = unpack(&tarball, "good").expect("the tarball unpacks");
    let o = run(Command::new(tree.join("watertight")).arg("-V"));
    let said = stdout(&o);
    assert!(
        said.trim().starts_with(&format!("watertight {version} (")) && said.trim().ends_with(')'),
        "{said}"
    );
    let o = verify(&tree, &manifest, &pubkey);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("verified"), "{}", stdout(&o));

    // One flipped byte of the tarball (written in its place, as a download would be): its
    // checksum fails, and it either does not unpack or does not verify.
    let pristine = d.join("pristine.tar.gz");
    std::fs::copy(&tarball, &pristine).unwrap();
    for at in [100, 5000, -9] {
        let bad = flipped(&pristine, &tarball, at);
        let o = Command::new("sha256sum")
            .arg("-c")
            .arg(&sha)
            .current_dir(&out)
            .output()
            .unwrap();
        assert!(
            !o.status.success(),
            "sha256sum -c passed a flipped byte at {at}"
        );
        if let Some(flipped_tree) = unpack(&bad, &format!("flipped{at}")) {
            // A flip that lands in what gzip and tar never look at (the deflate stream's
            // padding bits, or the zero blocks after tar's end marker once tar stops reading)
            // unpacks to the same files: the signature holding then is right. Any tree that
            // differs must fail verification.
            let same = Command::new("diff")
                .arg("-r")
                .arg("-q")
                .arg(&tree)
                .arg(&flipped_tree)
                .output()
                .unwrap()
                .status
                .success();
            let o = verify(&flipped_tree, &manifest, &pubkey);
            if same {
                eprintln!("a flipped byte at {at} unpacks to the same files");
                assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            } else {
                assert_ne!(o.status.code(), Some(0), "a flipped byte at {at} verified");
            }
        }
    }
    std::fs::copy(&pristine, &tarball).unwrap();
    // A tarball repacked with one byte of the binary flipped: the signature no longer holds.
    let repacked = d.join("good").join(&name).join("watertight");
    flipped(&repacked, &repacked, 4096);
    let o = verify(&d.join("good").join(&name), &manifest, &pubkey);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("watertight"), "{}", stderr(&o));

    // The manifest with one flipped byte (in its body; in its signature) fails on the good tree.
    let tree = unpack(&tarball, "good2").unwrap();
    let body_len = std::fs::read(&manifest)
        .unwrap()
        .iter()
        .position(|&b| b == b'\n')
        .unwrap() as isize;
    for at in [body_len / 2, body_len - 3, -10] {
        let bad = flipped(&manifest, &d.join("flipped.manifest"), at);
        let o = verify(&tree, &bad, &pubkey);
        assert!(
            matches!(o.status.code(), Some(1 | 2)),
            "a manifest flipped at {at} verified: {}",
            stderr(&o)
        );
    }
    // Another key does not verify it.
    let other = d.join("other.key");
    let o = watertight()
        .args(["key", "generate", "--out"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = verify(&tree, &manifest, &d.join("other.key.pub"));
    assert_ne!(o.status.code(), Some(0), "verified with another key");

    // The same commit gives the same bytes (the build is reused: this takes seconds).
    let again = d.join("again");
    let second = script("release-tarball.sh", &["--out".as_ref(), again.as_os_str()]);
    assert_eq!(
        std::fs::read(&second).unwrap(),
        std::fs::read(&tarball).unwrap(),
        "two builds of one commit differ"
    );
    assert!(
        !again.join(format!("{name}.manifest")).exists(),
        "no manifest without --key"
    );
}

#[test]
fn the_scripts_refuse_bad_arguments_with_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("k.pub");
    std::fs::write(&public, "-----BEGIN PUBLIC KEY-----\n").unwrap();
    let public = public.to_str().unwrap();
    let loose = dir.path().join("k");
    std::fs::write(&loose, "-----BEGIN PRIVATE KEY-----\n").unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loose = loose.to_str().unwrap();
    for (script, args, says) in [
        (
            "build-deb.sh",
            &["--bogus"][..],
            "unknown argument \"--bogus\"",
        ),
        ("build-deb.sh", &["--out"][..], "--out needs a directory"),
        (
            "release-tarball.sh",
            &["--key"][..],
            "--key needs a key file",
        ),
        (
            "release-tarball.sh",
            &["--key", "/nonexistent/k"][..],
            "no readable key file",
        ),
        (
            "release-tarball.sh",
            &["--key", public][..],
            "not a private key",
        ),
        ("release-tarball.sh", &["--key", loose][..], "chmod 600"),
        (
            "release-tarball.sh",
            &["extra"][..],
            "unknown argument \"extra\"",
        ),
    ] {
        let o = Command::new("bash")
            .arg(workspace().join("scripts").join(script))
            .args(args)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{script} {args:?}: {err}");
        assert_eq!(
            err.lines().count(),
            1,
            "{script} {args:?}: not one line: {err}"
        );
        assert!(err.contains(says), "{script} {args:?}: {err}");
        assert!(o.stdout.is_empty());
    }
}
