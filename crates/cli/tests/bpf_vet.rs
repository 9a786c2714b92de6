//! `watertight bpf vet|policy show|sign` end to end: the report formats (table, json, sarif)
//! through the one sink, exit codes (0 admitted, 1 refused, 2 bad input), one clear stderr line
//! per bad input (missing file, not ELF, truncated, another machine, bad policy, wrong key),
//! and signing (refused objects are not signed; the signature verifies with the library).

use std::path::{Path, PathBuf};
use std::process::Output;
use watertight_testkit::{stderr, stdout, stdout_json, watertight};

/// Compiles BPF C (after the libbpf prelude) into `dir/name.o`; `None` when clang is missing.
fn compile(dir: &Path, name: &str, body: &str) -> Option<PathBuf> {
    if !watertight_testkit::require_bpf_toolchain(&watertight_testkit::this_test()) {
        return None;
    }
    let src = dir.join(format!("{name}.c"));
    let obj = dir.join(format!("{name}.o"));
    std::fs::write(
        &src,
        format!("#include <linux/types.h>\n#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n{body}\n"),
    )
    .unwrap();
    watertight_testkit::compile_bpf(&src, &obj);
    Some(obj)
}

const OK: &str = r#"SEC("tp/syscalls/sys_enter_openat") int watch(void *ctx) { return bpf_get_current_pid_tgid() & 1; }"#;
const KILLS: &str =
    r#"SEC("tp/syscalls/sys_enter_kill") int killer(void *ctx) { bpf_send_signal(9); return 0; }"#;

fn run(args: &[&str]) -> Output {
    watertight().args(args).output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

/// One line on stderr, naming `what`.
fn one_line(o: &Output, what: &[&str]) {
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {err:?}");
    for w in what {
        assert!(lines[0].contains(w), "{w:?} in {:?}", lines[0]);
    }
}

#[test]
fn vet_exit_codes_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let Some(ok) = compile(dir.path(), "ok", OK) else {
        return;
    };
    let Some(kills) = compile(dir.path(), "kills", KILLS) else {
        return;
    };
    let (ok, kills) = (ok.to_str().unwrap(), kills.to_str().unwrap());

    let o = run(&["bpf", "vet", ok]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let table = stdout(&o);
    assert!(
        table.contains("watch")
            && table.contains("syscalls:sys_enter_openat")
            && table.contains("1 admitted"),
        "{table}"
    );

    let o = run(&["bpf", "vet", ok, kills]);
    assert_eq!(code(&o), 1);
    let table = stdout(&o);
    assert!(
        table.contains("program killer: helper send_signal (109, act) at insn")
            && table.contains("is refused by helpers.classes"),
        "{table}"
    );
    // --fail-on above high: the refusal is listed but does not fail.
    assert_eq!(
        code(&run(&["bpf", "vet", kills, "--fail-on", "critical"])),
        0
    );
    assert_eq!(code(&run(&["bpf", "vet", kills, "--fail-on", "none"])), 0);

    let o = run(&["bpf", "vet", ok, kills, "--format", "json"]);
    assert_eq!(code(&o), 1);
    let v = stdout_json(&o);
    assert_eq!(v["objects"][0]["verdict"], "admitted");
    assert_eq!(v["objects"][1]["verdict"], "refused");
    let r = &v["objects"][1]["vetting"]["refusals"][0];
    assert_eq!(r["policy_key"], "helpers.classes");
    assert_eq!(r["program"], "killer");
    assert!(r["insn"].is_u64());
    assert_eq!(
        v["objects"][1]["vetting"]["programs"][0]["helpers"][0]["name"],
        "send_signal"
    );

    let out = dir.path().join("report.sarif");
    let o = run(&[
        "bpf",
        "vet",
        ok,
        kills,
        "--format",
        "sarif",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).is_empty());
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["ruleId"], "bpf/helpers.classes");
    assert_eq!(results[0]["level"], "error");
    assert_eq!(sarif["runs"][0]["properties"]["command"], "bpf-vet");

    // A custom policy that allows the helper by name admits it.
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, "[helpers]\nallow = [\"send_signal\"]\n").unwrap();
    assert_eq!(
        code(&run(&[
            "bpf",
            "vet",
            kills,
            "--policy",
            policy.to_str().unwrap()
        ])),
        0
    );
}

#[test]
fn bad_inputs_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let Some(ok) = compile(dir.path(), "ok", OK) else {
        return;
    };
    let bytes = std::fs::read(&ok).unwrap();
    let truncated = dir.path().join("truncated.o");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let text = dir.path().join("text.o");
    std::fs::write(&text, "hello\n").unwrap();
    let missing = dir.path().join("missing.o");
    let native = std::env::current_exe().unwrap();
    for (path, what) in [
        (missing.as_path(), "cannot read the BPF object"),
        (text.as_path(), "no ELF magic"),
        (truncated.as_path(), "truncated"),
        (
            native.as_path(),
            "not a BPF object: ELF machine is EM_X86_64",
        ),
    ] {
        let o = run(&["bpf", "vet", path.to_str().unwrap()]);
        assert_eq!(code(&o), 2, "{path:?}: {}", stderr(&o));
        one_line(&o, &[path.to_str().unwrap(), what]);
    }

    let policy = dir.path().join("bad.toml");
    std::fs::write(
        &policy,
        "[programs]\ntypes = [\"tracepoint\"]\nattach_points = []\n",
    )
    .unwrap();
    let o = run(&[
        "bpf",
        "vet",
        ok.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2);
    one_line(&o, &[policy.to_str().unwrap(), "line 3", "attach_points"]);
}

#[test]
fn policy_show_parses_back_to_the_builtin() {
    let o = run(&["bpf", "policy", "show"]);
    assert_eq!(code(&o), 0);
    let text = stdout(&o);
    assert!(text.starts_with("# watertight bpf policy"));
    assert_eq!(
        watertight_bpf::Policy::parse(&text, Path::new("shown.toml")).unwrap(),
        watertight_bpf::Policy::builtin()
    );
}

#[test]
fn sign_signs_admitted_objects_only() {
    let dir = tempfile::tempdir().unwrap();
    let Some(ok) = compile(dir.path(), "ok", OK) else {
        return;
    };
    let Some(kills) = compile(dir.path(), "kills", KILLS) else {
        return;
    };
    let key = dir.path().join("team.key");
    assert_eq!(
        code(&run(&["key", "generate", "--out", key.to_str().unwrap()])),
        0
    );
    let key_s = key.to_str().unwrap();

    let o = run(&["bpf", "sign", ok.to_str().unwrap(), "--key", key_s]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let sig_path = PathBuf::from(format!("{}.sig", ok.display()));
    assert!(stdout(&o).contains(sig_path.to_str().unwrap()));
    let public =
        watertight_integrity::VerifyingKey::load(&dir.path().join("team.key.pub")).unwrap();
    let sig = std::fs::read(&sig_path).unwrap();
    let object = std::fs::read(&ok).unwrap();
    watertight_bpf::verify_signature(&object, &sig, &public).unwrap();
    let mut changed = object.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0x80;
    assert!(watertight_bpf::verify_signature(&changed, &sig, &public).is_err());

    // A refused object: exit 1, every refusal on stderr, no signature file.
    let out = dir.path().join("kills.sig");
    let o = run(&[
        "bpf",
        "sign",
        kills.to_str().unwrap(),
        "--key",
        key_s,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("helper send_signal (109, act)") && stderr(&o).contains("not signed"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());

    // The public key instead of the private one, a missing key: one line, exit 2.
    let o = run(&[
        "bpf",
        "sign",
        ok.to_str().unwrap(),
        "--key",
        &format!("{key_s}.pub"),
    ]);
    assert_eq!(code(&o), 2);
    one_line(&o, &["team.key.pub"]);
    let o = run(&[
        "bpf",
        "sign",
        ok.to_str().unwrap(),
        "--key",
        dir.path().join("nokey").to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2);
    one_line(&o, &["nokey"]);
}
