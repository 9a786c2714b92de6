//! `watertight bpf load`, the gatekeeper, against the real kernel: a signed observe-only object
//! loads, attaches and counts what it observes; its record appears and goes with it; a byte
//! changed after signing, another signer, a missing signature and an object that the
//! gatekeeper's policy refuses (though signed under a looser one) load nothing; `--pin` keeps
//! programs after the command ends and `bpf unload` removes them.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use watertight_testkit::{require_root, require_tools, stderr, stdout, this_test, watertight};

const SOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bpf_load");

/// A signing key pair and BPF objects compiled for this test.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let o = watertight()
            .args(["key", "generate", "--out"])
            .arg(dir.path().join("team.key"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Compiles tests/bpf_load/NAME.bpf.c into the fixture as NAME.bpf.o.
    fn compile(&self, name: &str) -> PathBuf {
        let out = self.path(&format!("{name}.bpf.o"));
        watertight_testkit::compile_bpf(&Path::new(SOURCES).join(format!("{name}.bpf.c")), &out);
        out
    }

    fn sign(&self, object: &Path, extra: &[&str]) {
        let o = watertight()
            .args(["bpf", "sign"])
            .arg(object)
            .arg("--key")
            .arg(self.path("team.key"))
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "sign: {}", stderr(&o));
    }

    fn registry(&self) -> PathBuf {
        self.path("registry")
    }

    fn load(&self, objects: &[&Path], extra: &[&str]) -> Command {
        let mut c = watertight();
        c.args(["bpf", "load", "--pubkey"])
            .arg(self.path("team.key.pub"))
            .arg("--registry")
            .arg(self.registry())
            .args(extra)
            .args(objects);
        c
    }

    fn records(&self) -> Vec<serde_json::Value> {
        let Ok(entries) = std::fs::read_dir(self.registry()) else {
            return Vec::new();
        };
        let mut out: Vec<serde_json::Value> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect();
        out.sort_by_key(|r| r["id"].as_u64());
        out
    }
}

fn guard(test: &str) -> bool {
    require_root(test)
        && watertight_testkit::require_bpf_toolchain(test)
        && require_tools(test, &["bpftool"], "bpftool")
}

fn program_exists(id: u64) -> bool {
    Command::new("bpftool")
        .args(["prog", "show", "id", &id.to_string()])
        .output()
        .unwrap()
        .status
        .success()
}

/// Waits until the kernel has freed program `id` (after an RCU grace period once the last
/// reference went).
fn wait_until_unloaded(id: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while program_exists(id) {
        assert!(
            Instant::now() < deadline,
            "program {id} still loaded after 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of key 0 of the program's first map, through bpftool.
fn first_map_counter(prog_id: u64) -> u64 {
    let o = Command::new("bpftool")
        .args(["-j", "prog", "show", "id", &prog_id.to_string()])
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let map = info["map_ids"][0].as_u64().expect("the program has a map");
    let o = Command::new("bpftool")
        .args([
            "-j",
            "map",
            "lookup",
            "id",
            &map.to_string(),
            "key",
            "0",
            "0",
            "0",
            "0",
        ])
        .output()
        .unwrap();
    let entry: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    entry["value"]
        .as_array()
        .expect("an array map value as bytes")
        .iter()
        .enumerate()
        .map(|(i, b)| {
            u64::from_str_radix(b.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
                << (8 * i)
        })
        .sum()
}

/// Ends a `--hold` gatekeeper left running by a failed assertion.
struct Holding(Child);

impl Holding {
    /// Waits until the gatekeeper has recorded what it loaded (it records only after loading
    /// and attaching everything); fails with its stderr when it ends first.
    fn wait_for_records(&mut self, f: &Fixture) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while f.records().is_empty() {
            if let Ok(Some(status)) = self.0.try_wait() {
                let mut err = String::new();
                let _ = self.0.stderr.take().map(|mut e| e.read_to_string(&mut err));
                panic!("bpf load --hold ended ({status}) before recording: {err}");
            }
            assert!(Instant::now() < deadline, "no record after 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then its exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        self.0.wait().unwrap()
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn a_signed_observer_loads_attaches_counts_and_is_gone_after_the_hold() {
    if !guard(&this_test()) {
        return;
    }
    let f = Fixture::new();
    let object = f.compile("count_getppid");
    f.sign(&object, &[]);
    let child = f
        .load(&[&object], &["--hold", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut holding = Holding(child);
    holding.wait_for_records(&f);
    let records = f.records();
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r["name"], "count_getppid");
    assert_eq!(r["prog_type"], "tracepoint");
    assert_eq!(r["attach"], "syscalls:sys_enter_getppid");
    let id = r["id"].as_u64().unwrap();
    // The record names the program the kernel holds: same id, same tag.
    let o = Command::new("bpftool")
        .args(["-j", "prog", "show", "id", &id.to_string()])
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["tag"], r["tag"], "{info}");
    // Attached: it sees this process's getppid calls.
    let before = first_map_counter(id);
    for _ in 0..100 {
        let _ = std::hint::black_box(std::os::unix::process::parent_id());
    }
    let after = first_map_counter(id);
    assert!(after >= before + 100, "counter {before} -> {after}");

    let status = holding.stop();
    assert!(status.success(), "{status}");
    let mut out = String::new();
    holding
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let printed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed[0]["id"].as_u64(), Some(id));
    assert!(f.records().is_empty(), "records left: {:?}", f.records());
    assert!(!program_exists(id), "program {id} still loaded");
}

#[test]
fn tampered_foreign_unsigned_and_refused_objects_load_nothing() {
    if !guard(&this_test()) {
        return;
    }
    let f = Fixture::new();
    let object = f.compile("count_getppid");
    f.sign(&object, &[]);

    // One byte changed after signing (inside the license string: still a valid object).
    let tampered = f.path("tampered.bpf.o");
    let mut bytes = std::fs::read(&object).unwrap();
    let at = bytes.windows(3).position(|w| w == b"GPL").unwrap();
    bytes[at + 2] = b'X';
    std::fs::write(&tampered, &bytes).unwrap();
    std::fs::copy(
        f.path("count_getppid.bpf.o.sig"),
        f.path("tampered.bpf.o.sig"),
    )
    .unwrap();
    let o = f.load(&[&tampered], &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("changed after signing"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));

    // Signed by another key.
    let other = Fixture::new();
    let o = other.load(&[&object], &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not by the key given"),
        "{}",
        stderr(&o)
    );

    // No signature at all.
    let unsigned = f.path("unsigned.bpf.o");
    std::fs::copy(&object, &unsigned).unwrap();
    let o = f.load(&[&unsigned], &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("unsigned.bpf.o.sig"), "{}", stderr(&o));

    // Signed after vetting under a policy that admits kprobes; the gatekeeper's policy (the
    // built-in one) refuses it, naming the program type.
    let kprobe = f.compile("kprobe_openat");
    let loose = f.path("loose.toml");
    std::fs::write(&loose, "[programs]\ntypes = [\"kprobe\"]\n").unwrap();
    f.sign(&kprobe, &["--policy", loose.to_str().unwrap()]);
    let o = f.load(&[&kprobe], &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("program type kprobe"), "{}", stderr(&o));

    // A missing object is bad input.
    let o = f.load(&[&f.path("absent.bpf.o")], &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("absent.bpf.o"), "{}", stderr(&o));

    assert!(f.records().is_empty(), "{:?}", f.records());
    assert!(stdout(&o).is_empty());
}

/// A bpffs mounted for the test, unmounted (which drops every pin in it) on drop.
struct Bpffs(PathBuf);

impl Drop for Bpffs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn pinned_programs_outlive_the_command_until_unloaded() {
    if !guard(&this_test()) {
        return;
    }
    let f = Fixture::new();
    let object = f.compile("count_getppid");
    f.sign(&object, &[]);
    let mount = f.path("bpffs");
    std::fs::create_dir(&mount).unwrap();
    let o = Command::new("mount")
        .args(["-t", "bpf", "bpf"])
        .arg(&mount)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _bpffs = Bpffs(mount.clone());
    let pin_root = mount.join("watertight");

    let o = f
        .load(&[f.dir.path()], &["--pin", pin_root.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let records = f.records();
    assert_eq!(records.len(), 1, "{records:?}");
    let id = records[0]["id"].as_u64().unwrap();
    let pin = pin_root.join("count_getppid/count_getppid");
    assert_eq!(records[0]["pin"], pin.to_str().unwrap());
    assert!(pin.exists());
    assert!(
        program_exists(id),
        "a pinned program stays after bpf load ends"
    );

    let o = watertight()
        .args(["bpf", "unload", "--pin"])
        .arg(&pin_root)
        .arg("--registry")
        .arg(f.registry())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("count_getppid"), "{}", stdout(&o));
    assert!(!pin.exists());
    assert!(f.records().is_empty());
    wait_until_unloaded(id);
}

#[test]
fn without_privileges_the_kernel_refusal_is_named_with_the_fix() {
    if !guard(&this_test()) || !require_tools(&this_test(), &["setpriv"], "util-linux") {
        return;
    }
    let f = Fixture::new();
    let object = f.compile("count_getppid");
    f.sign(&object, &[]);
    // Readable by an unprivileged uid.
    for p in [
        f.dir.path().to_path_buf(),
        object.clone(),
        f.path("count_getppid.bpf.o.sig"),
        f.path("team.key.pub"),
    ] {
        let mode = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }
    let load = f.load(&[&object], &[]);
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(load.get_program())
        .args(load.get_args())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("needs CAP_BPF and CAP_PERFMON"),
        "{}",
        stderr(&o)
    );
    assert!(f.records().is_empty());
}

/// The gatekeeper as its systemd unit runs it (root with only CAP_BPF and CAP_PERFMON, nothing
/// inheritable) and `audit host` on the same host: the programs it loaded are vouched for by
/// their records, not reported as unvetted; the gatekeeper holding CAP_BPF is not a finding;
/// once it is stopped, the programs and records are gone and nothing is reported either.
#[test]
fn audit_host_vouches_for_what_the_gatekeeper_loaded_under_its_units_capabilities() {
    if !guard(&this_test()) || !require_tools(&this_test(), &["setpriv"], "util-linux") {
        return;
    }
    let f = Fixture::new();
    let object = f.compile("rawtp_sys_enter");
    f.sign(&object, &[]);
    let load = f.load(&[&object], &["--hold"]);
    let child = Command::new("setpriv")
        .args([
            "--bounding-set=-all,+bpf,+perfmon",
            "--inh-caps=-all",
            "--securebits=+noroot_locked",
        ])
        .arg(load.get_program())
        .args(load.get_args())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut holding = Holding(child);
    holding.wait_for_records(&f);
    let id = f.records()[0]["id"].as_u64().unwrap();
    let gatekeeper = holding.0.id();
    let status = std::fs::read_to_string(format!("/proc/{gatekeeper}/status")).unwrap();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    // CAP_PERFMON (38) and CAP_BPF (39), nothing else: the unit's set.
    assert_eq!(cap_eff, (1 << 38) | (1 << 39), "CapEff {cap_eff:#x}");

    let audit = |registry: &Path| {
        let o = watertight()
            .args(["audit", "host", "--format", "json", "--fail-on", "none"])
            .arg(format!("--reference-pid={}", std::process::id()))
            .arg("--bpf-registry")
            .arg(registry)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        watertight_testkit::stdout_json(&o)
    };
    let about_gatekeeper = |report: &serde_json::Value| -> Vec<serde_json::Value> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| {
                x["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&format!("BPF program {id} (")))
                    || x["pids"]
                        .as_array()
                        .is_some_and(|p| p.contains(&gatekeeper.into()))
            })
            .cloned()
            .collect()
    };
    let report = audit(&f.registry());
    let listed = report["bpf"]["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("program {id} not in the inventory: {report:#}"))
        .clone();
    assert_eq!(listed["holders"][0]["pid"], gatekeeper, "{listed:#}");
    assert_eq!(about_gatekeeper(&report), Vec::<serde_json::Value>::new());

    // Control: the same audit without the gatekeeper's registry reports its program as
    // unvetted, held by the gatekeeper.
    let elsewhere = tempfile::tempdir().unwrap();
    let report = audit(elsewhere.path());
    let found = about_gatekeeper(&report);
    assert!(
        found
            .iter()
            .any(|x| x["rule"] == "bpf-program-unvetted" && x["severity"] == "high"),
        "{report:#}"
    );

    assert!(holding.stop().success());
    assert!(f.records().is_empty());
    wait_until_unloaded(id);
}

/// The libbpf-tools corpus (../shared/corpora, built once here) through the gatekeeper: every
/// object the default policy admits is signed and loaded as it is (attached, then detached).
/// The tracepoint and perf_event tools load (syncsnoop without its two programs on tracepoints
/// x86 lacks, each named on stderr); the two whose user space sizes a stack map before load are
/// refused by the kernel as a whole object, with exit 3 and nothing left behind. runqlat, on
/// sched tracepoints the default policy does not list, loads under a policy that adds them.
#[test]
fn admitted_corpus_tools_load_as_they_are_or_are_refused_whole() {
    let test = this_test();
    if !guard(&test) {
        return;
    }
    let Some(script) = watertight_testkit::require_shared(&test, "corpora/build-libbpf-tools.sh")
    else {
        return;
    };
    let f = Fixture::new();
    let dir = f.path("corpus");
    let o = Command::new("bash")
        .arg(&script)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut objects: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    objects.sort();
    assert!(objects.len() >= 50, "{} objects", objects.len());

    let mut loaded = Vec::new();
    let mut refused_by_kernel = Vec::new();
    for object in &objects {
        let name = object
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".bpf.o", "");
        let sign = watertight()
            .args(["bpf", "sign"])
            .arg(object)
            .arg("--key")
            .arg(f.path("team.key"))
            .output()
            .unwrap();
        match sign.status.code() {
            Some(1) => continue, // refused by the default policy: bpf_vet and corpus.rs cover why
            Some(0) => {}
            other => panic!("{name}: sign exit {other:?}: {}", stderr(&sign)),
        }
        let o = f.load(&[object], &["--json"]).output().unwrap();
        match o.status.code() {
            Some(0) => {
                let programs: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
                assert!(!programs.as_array().unwrap().is_empty(), "{name}");
                if name == "syncsnoop" {
                    // sync_file_range2 and arm_sync_file_range are other architectures' calls.
                    assert!(
                        stderr(&o).contains(
                            "sys_enter_sync_file_range2 not loaded: its tracepoint does not exist"
                        ),
                        "{}",
                        stderr(&o)
                    );
                    assert!(!stdout(&o).contains("sync_file_range2"), "{}", stdout(&o));
                }
                loaded.push(name.clone());
            }
            Some(3) => {
                let err = stderr(&o);
                assert!(
                    err.contains("the kernel refused to load it") || err.contains("cannot attach"),
                    "{name}: {err}"
                );
                refused_by_kernel.push(name.clone());
            }
            other => panic!("{name}: load exit {other:?}: {}", stderr(&o)),
        }
        assert!(f.records().is_empty(), "{name}: records left");
    }
    for tool in [
        "execsnoop",
        "exitsnoop",
        "mountsnoop",
        "opensnoop",
        "statsnoop",
        "syscount",
    ] {
        assert!(
            loaded.contains(&tool.to_string()),
            "{tool}: loaded {loaded:?}"
        );
    }
    assert_eq!(
        refused_by_kernel,
        ["futexctn", "profile"],
        "loaded: {loaded:?}"
    );

    let wider = f.path("wider.toml");
    let shown = watertight()
        .args(["bpf", "policy", "show"])
        .output()
        .unwrap();
    let policy = stdout(&shown).replacen(
        "  \"syscalls:*\",\n",
        "  \"syscalls:*\",\n  \"sched:sched_wakeup*\",\n  \"sched:sched_switch\",\n",
        1,
    );
    assert_ne!(
        policy,
        stdout(&shown),
        "the built-in policy lists syscalls:*"
    );
    std::fs::write(&wider, policy).unwrap();
    let runqlat = dir.join("runqlat.bpf.o");
    let o = f.load(&[&runqlat], &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "unsigned: {}", stderr(&o));
    f.sign(&runqlat, &["--policy", wider.to_str().unwrap()]);
    let o = f.load(&[&runqlat], &[]).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "the node's built-in policy decides: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("sched:sched_wakeup"), "{}", stderr(&o));
    let o = f
        .load(&[&runqlat], &["--policy", wider.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("sched:sched_switch"), "{}", stdout(&o));
}
