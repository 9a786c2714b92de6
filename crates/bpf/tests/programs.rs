//! Small BPF programs compiled by clang in the test, one per thing the policy refuses (each act
//! helper, a kfunc, a kprobe, an unlisted tracepoint, a map-in-map, a tail call through a
//! prog_array, an unknown section, a legacy map), and an allowed tracepoint program. Each
//! refusal must name the program, the policy key and the subject; helper refusals name the
//! instruction `llvm-objdump -d` shows the call at.

use std::path::Path;
use std::process::Command;
use watertight_bpf::{vet, Policy, Vetting};
use watertight_testkit::{require_tools, this_test};

const PRELUDE: &str = r#"
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
"#;

/// Compiles `body` (after the prelude) into `dir/name.o`; `None` when clang or the libbpf
/// headers are missing (skip locally, fail in CI).
fn compile(dir: &Path, name: &str, body: &str) -> Option<Vec<u8>> {
    if !watertight_testkit::require_bpf_toolchain(&this_test())
        || !require_tools(&this_test(), &["llvm-objdump"], "llvm")
    {
        return None;
    }
    let src = dir.join(format!("{name}.c"));
    let obj = dir.join(format!("{name}.o"));
    std::fs::write(&src, format!("{PRELUDE}\n{body}\n")).unwrap();
    watertight_testkit::compile_bpf(&src, &obj);
    Some(std::fs::read(&obj).unwrap())
}

/// The instruction indexes of `call ID` in `section` as `llvm-objdump -d` numbers them.
fn objdump_calls(obj: &Path, section: &str, id: u32) -> Vec<usize> {
    let out = Command::new("llvm-objdump")
        .arg("-d")
        .arg(obj)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut in_section = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if let Some(s) = line.strip_prefix("Disassembly of section ") {
            in_section = s.trim_end_matches(':') == section;
            continue;
        }
        if !in_section {
            continue;
        }
        let parts: Vec<&str> = line.split('\t').collect();
        if parts.len() >= 3 && parts[2].trim() == format!("call {id}") {
            found.push(parts[0].trim().trim_end_matches(':').parse().unwrap());
        }
    }
    found
}

fn vetted(bytes: &[u8], policy: &Policy) -> Vetting {
    vet(bytes, policy).unwrap()
}

#[test]
fn each_act_helper_is_refused_at_its_instruction() {
    let dir = tempfile::tempdir().unwrap();
    let section = "tp/syscalls/sys_enter_openat";
    for (helper, id, call) in [
        (
            "probe_write_user",
            36,
            "int x = 0; bpf_probe_write_user((void *)0x1000, &x, sizeof(x));",
        ),
        ("send_signal", 109, "bpf_send_signal(9);"),
        ("send_signal_thread", 117, "bpf_send_signal_thread(9);"),
        ("override_return", 58, "bpf_override_return(ctx, -1);"),
        ("sys_bpf", 166, "bpf_sys_bpf(0, (void *)0, 0);"),
        ("sys_close", 168, "bpf_sys_close(3);"),
        ("set_retval", 187, "bpf_set_retval(-1);"),
        ("redirect", 23, "bpf_redirect(1, 0);"),
    ] {
        let body = format!("SEC(\"{section}\") int prog(void *ctx) {{ {call} return 0; }}");
        let Some(bytes) = compile(dir.path(), helper, &body) else {
            return;
        };
        let v = vetted(&bytes, &Policy::builtin());
        let want = objdump_calls(&dir.path().join(format!("{helper}.o")), section, id);
        assert_eq!(want.len(), 1, "{helper}: objdump shows one call {id}");
        assert_eq!(v.refusals.len(), 1, "{helper}: {:#?}", v.refusals);
        let r = &v.refusals[0];
        assert_eq!(r.program.as_deref(), Some("prog"));
        assert_eq!(r.policy_key, "helpers.classes");
        assert_eq!(r.subject, format!("helper {helper} ({id}, act)"));
        assert_eq!(
            (r.section.as_deref(), r.insn),
            (Some(section), Some(want[0]))
        );
        // Allowed by name, it passes; denied by name, the deny wins.
        let mut p = Policy::builtin();
        p.helpers.allow.push(helper.into());
        assert!(vetted(&bytes, &p).admitted(), "{helper}");
        p.helpers.deny.push(helper.into());
        assert_eq!(vetted(&bytes, &p).refusals[0].policy_key, "helpers.deny");
    }
}

#[test]
fn helpers_of_subprograms_and_callbacks_are_charged_to_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let body = r#"
static __attribute__((noinline)) int kill_it(int sig) { return bpf_send_signal(sig); }
static long cb(__u32 i, void *ctx) { bpf_send_signal_thread(9); return 0; }
SEC("tp/syscalls/sys_enter_kill") int prog(void *ctx) {
    bpf_loop(1, cb, (void *)0, 0);
    return kill_it(9);
}
"#;
    let Some(bytes) = compile(dir.path(), "sub", body) else {
        return;
    };
    let v = vetted(&bytes, &Policy::builtin());
    let p = &v.programs[0];
    let names: Vec<&str> = p.helpers.iter().filter_map(|h| h.name.as_deref()).collect();
    for h in ["loop", "send_signal", "send_signal_thread"] {
        assert!(names.contains(&h), "{names:?}");
    }
    let send = p.helpers.iter().find(|h| h.id == 109).unwrap();
    assert_eq!(send.function, "kill_it");
    assert_eq!(send.section, ".text");
    assert_eq!(
        vec![send.insn],
        objdump_calls(&dir.path().join("sub.o"), ".text", 109)
    );
    let keys: Vec<(&str, &str)> = v
        .refusals
        .iter()
        .map(|r| (r.subject.as_str(), r.policy_key.as_str()))
        .collect();
    assert!(
        keys.contains(&("helper send_signal (109, act)", "helpers.classes")),
        "{keys:?}"
    );
    assert!(
        keys.contains(&("helper send_signal_thread (117, act)", "helpers.classes")),
        "{keys:?}"
    );
    assert!(
        keys.contains(&("helper loop (181, control)", "helpers.classes")),
        "{keys:?}"
    );
}

#[test]
fn kfuncs_kprobes_unlisted_tracepoints_and_unknown_sections_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str, &str); 9] = [
        (
            "indirect",
            r#"int (*volatile fp)(int);
SEC("tp/syscalls/sys_enter_openat") int prog(void *ctx) { return fp(1); }"#,
            "indirect call (callx: a call through a function pointer, target unknown)",
            "helpers.allow",
        ),
        (
            "traversal",
            r#"SEC("tp/syscalls/../sched/sched_switch") int prog(void *ctx) { return 0; }"#,
            "attach point \"syscalls:../sched/sched_switch\" (not category:event of letters, digits and _)",
            "programs.attach",
        ),
        (
            "unknown_helper",
            r#"SEC("tp/syscalls/sys_enter_openat") int prog(void *ctx) { return ((long (*)(void))999)(); }"#,
            "unknown helper id 999 (not in the helper table)",
            "helpers.allow",
        ),
        (
            "uprobe",
            r#"SEC("uprobe//bin/bash:readline") int prog(void *ctx) { return 0; }"#,
            "program type uprobe (section uprobe//bin/bash:readline)",
            "programs.types",
        ),
        (
            "fentry",
            r#"SEC("fentry/do_unlinkat") int prog(void *ctx) { return 0; }"#,
            "program type fentry (section fentry/do_unlinkat)",
            "programs.types",
        ),
        (
            "kfunc",
            r#"struct task_struct;
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
SEC("tp_btf/sched_process_exec") int prog(__u64 *ctx) {
    struct task_struct *t = bpf_task_acquire((struct task_struct *)ctx[0]);
    if (t) bpf_task_release(t);
    return 0;
}"#,
            "kfunc bpf_task_acquire",
            "kfuncs.allow",
        ),
        (
            "kprobe",
            r#"SEC("kprobe/do_nanosleep") int prog(void *ctx) { return 0; }"#,
            "program type kprobe (section kprobe/do_nanosleep)",
            "programs.types",
        ),
        (
            "unlisted",
            r#"SEC("tp/sched/sched_switch") int prog(void *ctx) { return 0; }"#,
            "attach point sched:sched_switch",
            "programs.attach",
        ),
        (
            "unknown",
            r#"SEC("weird/thing") int prog(void *ctx) { return 0; }"#,
            "unknown section \"weird/thing\" (libbpf would not know its program type)",
            "programs.types",
        ),
    ];
    for (name, body, subject, key) in cases {
        let Some(bytes) = compile(dir.path(), name, body) else {
            return;
        };
        let v = vetted(&bytes, &Policy::builtin());
        assert!(
            v.refusals.iter().any(|r| r.subject == subject
                && r.policy_key == key
                && r.program.as_deref() == Some("prog")),
            "{name}: {:#?}",
            v.refusals
        );
    }
    // The kfuncs pass once allowed by name.
    let bytes = std::fs::read(dir.path().join("kfunc.o")).unwrap();
    let mut p = Policy::builtin();
    p.kfuncs.allow = vec!["bpf_task_acquire".into(), "bpf_task_release".into()];
    assert!(
        vetted(&bytes, &p).admitted(),
        "{:#?}",
        vetted(&bytes, &p).refusals
    );
}

#[test]
fn map_in_map_and_prog_array_tail_calls_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let body = r#"
struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, int); __type(value, int); };
struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __uint(max_entries, 1); __type(key, int); __array(values, struct inner); } outer SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 4); __type(key, int); __type(value, int); } jmp SEC(".maps");
SEC("tp/syscalls/sys_enter_openat") int prog(void *ctx) {
    int k = 0;
    if (bpf_map_lookup_elem(&outer, &k)) bpf_tail_call(ctx, &jmp, 0);
    return 0;
}
"#;
    let Some(bytes) = compile(dir.path(), "mim", body) else {
        return;
    };
    let v = vetted(&bytes, &Policy::builtin());
    let outer = v.maps.iter().find(|m| m.name == "outer").unwrap();
    assert_eq!(
        (outer.type_name.as_str(), outer.inner.as_deref()),
        ("array_of_maps", Some("array"))
    );
    let subjects: Vec<(&str, &str)> = v
        .refusals
        .iter()
        .map(|r| (r.subject.as_str(), r.policy_key.as_str()))
        .collect();
    for want in [
        ("map outer (array_of_maps)", "maps.types"),
        ("map jmp (prog_array)", "maps.types"),
        ("helper tail_call (12, control)", "helpers.classes"),
    ] {
        assert!(subjects.contains(&want), "{want:?} in {subjects:?}");
    }
}

#[test]
fn a_legacy_maps_section_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let body = r#"
struct legacy_def { unsigned int type, key_size, value_size, max_entries, map_flags; };
struct legacy_def old SEC("maps") = { .type = BPF_MAP_TYPE_PROG_ARRAY, .key_size = 4, .value_size = 4, .max_entries = 8 };
SEC("tp/syscalls/sys_enter_openat") int prog(void *ctx) { return 0; }
"#;
    let Some(bytes) = compile(dir.path(), "legacy", body) else {
        return;
    };
    let v = vetted(&bytes, &Policy::builtin());
    let m = v.maps.iter().find(|m| m.name == "old").unwrap();
    assert_eq!(
        (m.section.as_str(), m.type_name.as_str(), m.max_entries),
        ("maps", "prog_array", Some(8))
    );
    assert!(v
        .refusals
        .iter()
        .any(|r| r.subject == "map old (prog_array)"));
}

#[test]
fn an_observing_tracepoint_program_is_admitted() {
    let dir = tempfile::tempdir().unwrap();
    let body = r#"
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } events SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, __u32); __type(value, __u64); } seen SEC(".maps");
const volatile __u32 target_pid = 0;
__u64 counter = 0;
SEC("tp/sched/sched_process_exec") int on_exec(void *ctx) {
    __u64 id = bpf_get_current_pid_tgid();
    __u32 pid = id >> 32;
    __u64 now = bpf_ktime_get_ns();
    if (target_pid && pid != target_pid) return 0;
    bpf_map_update_elem(&seen, &pid, &now, BPF_ANY);
    counter++;
    bpf_ringbuf_output(&events, &id, sizeof(id), 0);
    return 0;
}
SEC("raw_tp/sys_enter") int on_enter(void *ctx) { counter++; return 0; }
"#;
    let Some(bytes) = compile(dir.path(), "ok", body) else {
        return;
    };
    let v = vetted(&bytes, &Policy::builtin());
    assert!(v.admitted(), "{:#?}", v.refusals);
    assert_eq!(v.programs.len(), 2);
    let exec = v.programs.iter().find(|p| p.name == "on_exec").unwrap();
    assert_eq!(exec.attach.as_deref(), Some("sched:sched_process_exec"));
    let enter = v.programs.iter().find(|p| p.name == "on_enter").unwrap();
    assert_eq!(
        (enter.prog_type.as_str(), enter.attach.as_deref()),
        ("raw_tracepoint", Some("raw_syscalls:sys_enter"))
    );
    let mut globals: Vec<&str> = v.globals.iter().map(|g| g.section.as_str()).collect();
    globals.sort();
    assert_eq!(globals, [".bss", ".rodata"]);
    assert_eq!(v.license.as_deref(), Some("GPL"));
}
