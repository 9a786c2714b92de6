//! The vetter against a real corpus: 53 BPF objects of iovisor/bcc's libbpf-tools, compiled by
//! `../shared/corpora/build-libbpf-tools.sh` once per test binary. What the vetter says about
//! each program (name, type, attach point, helper ids, kfuncs) is checked against what
//! `llvm-readelf` and `llvm-objdump -d -r` show, through a second, independent reading of the
//! call graph in this file; the default policy's verdicts are checked for tools whose attach
//! points it lists or does not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use watertight_bpf::{vet, Policy, Vetting};
use watertight_testkit::{require_shared, require_tools};

/// The corpus directory, built once; `None` when the prerequisites are missing (skipped
/// locally, a failure in CI).
fn corpus(test: &str) -> Option<&'static Path> {
    if !require_tools(
        test,
        &["clang", "bpftool", "llvm-objdump", "llvm-readelf"],
        "clang llvm bpftool libbpf-dev",
    ) {
        return None;
    }
    let script = require_shared(test, "corpora/build-libbpf-tools.sh")?;
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    Some(DIR.get_or_init(|| {
        // Under the target directory, so that nothing is left outside it.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("libbpf-tools");
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    }))
}

fn objects(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "o"))
        .collect();
    v.sort();
    v
}

fn tool(name: &str, args: &[&str], obj: &Path) -> String {
    let out = Command::new(name).args(args).arg(obj).output().unwrap();
    assert!(out.status.success(), "{name} {obj:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// What the LLVM tools show of one object.
#[derive(Default, Debug)]
struct ToolView {
    /// Section index -> name.
    sections: BTreeMap<usize, String>,
    /// Function symbols: name -> (section name, start insn, end insn, global).
    functions: BTreeMap<String, (String, usize, usize, bool)>,
    /// Undefined symbols.
    externs: BTreeSet<String>,
    /// Per function: helper ids it calls directly, functions it calls or takes the address
    /// of, kfuncs it calls.
    helpers: BTreeMap<String, BTreeSet<u32>>,
    edges: BTreeMap<String, BTreeSet<String>>,
    kfuncs: BTreeMap<String, BTreeSet<String>>,
}

impl ToolView {
    fn read(obj: &Path) -> ToolView {
        let mut v = ToolView::default();
        for line in tool("llvm-readelf", &["-S", "--wide"], obj).lines() {
            // "  [ 4] tp_btf/sched_wakeup PROGBITS ..."
            let Some(rest) = line.trim_start().strip_prefix('[') else {
                continue;
            };
            let Some((num, rest)) = rest.split_once(']') else {
                continue;
            };
            let Ok(num) = num.trim().parse::<usize>() else {
                continue;
            };
            if let Some(name) = rest.split_whitespace().next() {
                v.sections.insert(num, name.to_string());
            }
        }
        for line in tool("llvm-readelf", &["-s", "--wide"], obj).lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 || !f[0].ends_with(':') {
                continue;
            }
            let (value, size, kind, bind, ndx, name) = (f[1], f[2], f[3], f[4], f[6], f[7]);
            if ndx == "UND" && !name.is_empty() {
                v.externs.insert(name.to_string());
            }
            if kind != "FUNC" {
                continue;
            }
            let Ok(ndx) = ndx.parse::<usize>() else {
                continue;
            };
            let start = u64::from_str_radix(value, 16).unwrap() as usize / 8;
            let size: usize = size.parse().unwrap();
            v.functions.insert(
                name.to_string(),
                (
                    v.sections[&ndx].clone(),
                    start,
                    start + size / 8,
                    bind == "GLOBAL",
                ),
            );
        }
        let mut section = String::new();
        let mut function: Option<String> = None;
        let mut last_call: Option<(u8, u32)> = None;
        for line in tool("llvm-objdump", &["-d", "-r"], obj).lines() {
            if let Some(s) = line.strip_prefix("Disassembly of section ") {
                section = s.trim_end_matches(':').to_string();
                function = None;
                continue;
            }
            if let Some(label) = line.strip_suffix(">:") {
                if let Some((_, name)) = label.split_once(" <") {
                    if v.functions.contains_key(name) {
                        function = Some(name.to_string());
                    }
                }
                continue;
            }
            let Some(f) = function.clone() else { continue };
            let trimmed = line.trim_start();
            if trimmed.contains("R_BPF_") {
                // "0000000000000028:  R_BPF_64_32	sub"
                let sym = trimmed.split_whitespace().last().unwrap().to_string();
                let is_call = last_call.is_some();
                let imm = last_call.map(|(_, imm)| imm as i32);
                if v.externs.contains(&sym) {
                    if is_call {
                        v.kfuncs.entry(f.clone()).or_default().insert(sym);
                    }
                } else if v.functions.contains_key(&sym) {
                    v.edges.entry(f.clone()).or_default().insert(sym);
                } else if let Some(target) = v.sections.values().find(|s| **s == sym).cloned() {
                    // A section symbol: the target is by offset (call: imm + 1 instructions).
                    if let Some(imm) = imm {
                        let at = (imm + 1) as usize;
                        if let Some(name) = v.function_at(&target, at) {
                            v.edges.entry(f.clone()).or_default().insert(name);
                        }
                    }
                }
                last_call = None;
                continue;
            }
            // "       9:	85 00 00 00 25 00 00 00	call 37"
            let parts: Vec<&str> = line.split('\t').collect();
            if parts.len() < 3 || !parts[0].trim_end().ends_with(':') {
                continue;
            }
            let bytes: Vec<u8> = parts[1]
                .split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).unwrap())
                .collect();
            if bytes[0] == 0x85 {
                let imm = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
                let src = bytes[1] >> 4;
                // A helper call unless a relocation line follows (then it is a call to a symbol).
                if src == 0 {
                    v.helpers.entry(f.clone()).or_default().insert(imm);
                }
                last_call = Some((src, imm));
            } else {
                last_call = None;
            }
            let _ = &section;
        }
        v
    }

    fn function_at(&self, section: &str, insn: usize) -> Option<String> {
        self.functions
            .iter()
            .find(|(_, (s, start, end, _))| s == section && *start <= insn && insn < *end)
            .map(|(n, _)| n.clone())
    }

    /// Every function reachable from `f`, itself included.
    fn reachable(&self, f: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut work = vec![f.to_string()];
        while let Some(g) = work.pop() {
            if seen.insert(g.clone()) {
                work.extend(self.edges.get(&g).into_iter().flatten().cloned());
            }
        }
        seen
    }
}

/// libbpf's section prefixes, spelled out independently of the crate's table (only those the
/// corpus uses; anything else fails the test so it gets added).
fn expected_type(section: &str) -> &'static str {
    let prefix = section.split('/').next().unwrap();
    match prefix {
        "tp" | "tracepoint" => "tracepoint",
        "raw_tp" | "raw_tracepoint" => "raw_tracepoint",
        "tp_btf" => "tp_btf",
        "kprobe" => "kprobe",
        "kretprobe" => "kretprobe",
        "fentry" => "fentry",
        "fexit" => "fexit",
        "perf_event" => "perf_event",
        "uprobe" => "uprobe",
        "uretprobe" => "uretprobe",
        "iter" => "iter",
        other => panic!("section prefix {other:?} is not in this test's table"),
    }
}

fn vet_file(path: &Path, policy: &Policy) -> Vetting {
    vet(&std::fs::read(path).unwrap(), policy).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

#[test]
fn every_program_type_attach_point_and_helper_matches_the_llvm_tools() {
    let Some(dir) = corpus(&watertight_testkit::this_test()) else {
        return;
    };
    let objects = objects(dir);
    assert!(
        objects.len() >= 50,
        "the corpus has {} objects",
        objects.len()
    );
    let mut programs = 0;
    let mut calls = 0;
    for obj in &objects {
        let v = vet_file(obj, &Policy::builtin());
        let view = ToolView::read(obj);
        let expected: BTreeSet<&String> = view
            .functions
            .iter()
            .filter(|(_, (s, _, _, global))| *global && s != ".text")
            .map(|(n, _)| n)
            .collect();
        let got: BTreeSet<&String> = v.programs.iter().map(|p| &p.name).collect();
        assert_eq!(got, expected, "{obj:?}: programs");
        for p in &v.programs {
            programs += 1;
            let (section, ..) = &view.functions[&p.name];
            assert_eq!(&p.section, section, "{obj:?} {}", p.name);
            assert_eq!(p.prog_type, expected_type(section), "{obj:?} {}", p.name);
            let target = section.split_once('/').map(|(_, t)| t);
            match (p.prog_type.as_str(), target) {
                ("tracepoint", Some(t)) => {
                    assert_eq!(p.attach.as_deref(), Some(t.replacen('/', ":", 1).as_str()))
                }
                ("raw_tracepoint" | "tp_btf", Some(t)) => {
                    let attach = p.attach.as_deref().unwrap();
                    assert_eq!(attach.split_once(':').unwrap().1, t, "{obj:?} {}", p.name)
                }
                (_, t) => assert_eq!(p.attach.as_deref(), t, "{obj:?} {}", p.name),
            }
            let reach = view.reachable(&p.name);
            let want_helpers: BTreeSet<u32> = reach
                .iter()
                .flat_map(|f| view.helpers.get(f).into_iter().flatten().copied())
                .collect();
            let got_helpers: BTreeSet<u32> = p.helpers.iter().map(|h| h.id).collect();
            assert_eq!(got_helpers, want_helpers, "{obj:?} {}: helper ids", p.name);
            let want_kfuncs: BTreeSet<&String> = reach
                .iter()
                .flat_map(|f| view.kfuncs.get(f).into_iter().flatten())
                .collect();
            let got_kfuncs: BTreeSet<&String> = p.kfuncs.iter().map(|k| &k.name).collect();
            assert_eq!(got_kfuncs, want_kfuncs, "{obj:?} {}: kfuncs", p.name);
            assert!(
                !p.conservative,
                "{obj:?} {}: every call lands in a symbol",
                p.name
            );
            calls += p.helpers.len();
        }
    }
    eprintln!(
        "{} objects, {programs} programs, {calls} helper calls checked against llvm-objdump",
        objects.len()
    );
}

#[test]
fn tools_on_listed_tracepoints_pass_and_the_others_are_refused_by_name() {
    let Some(dir) = corpus(&watertight_testkit::this_test()) else {
        return;
    };
    let builtin = Policy::builtin();
    for tool in [
        "opensnoop",
        "statsnoop",
        "mountsnoop",
        "syncsnoop",
        "execsnoop",
        "exitsnoop",
        "syscount",
    ] {
        let v = vet_file(&dir.join(format!("{tool}.bpf.o")), &builtin);
        assert!(v.admitted(), "{tool}: {:#?}", v.refusals);
        assert!(v.programs.iter().all(|p| p.prog_type == "tracepoint"));
    }

    // runqlat: tp_btf and raw_tp on sched_wakeup, sched_wakeup_new, sched_switch.
    let runqlat = dir.join("runqlat.bpf.o");
    let v = vet_file(&runqlat, &builtin);
    assert!(!v.admitted());
    let refused: BTreeSet<String> = v
        .refusals
        .iter()
        .inspect(|r| assert_eq!(r.policy_key, "programs.attach", "{r}"))
        .map(|r| r.subject.clone())
        .collect();
    assert_eq!(
        refused,
        [
            "sched:sched_switch",
            "sched:sched_wakeup",
            "sched:sched_wakeup_new"
        ]
        .map(|t| format!("attach point {t}"))
        .into_iter()
        .collect()
    );
    let mut wider = Policy::builtin();
    wider.programs.attach.push("sched:sched_wakeup*".into());
    wider.programs.attach.push("sched:sched_switch".into());
    let v = vet_file(&runqlat, &wider);
    assert!(v.admitted(), "{:#?}", v.refusals);

    // Every program of a type the policy does not list (kprobe, fentry, ...) is refused
    // naming its type.
    let mut seen = BTreeSet::new();
    for obj in objects(dir) {
        let v = vet_file(&obj, &builtin);
        for p in &v.programs {
            if builtin.programs.types.contains(&p.prog_type) {
                continue;
            }
            seen.insert(p.prog_type.clone());
            assert!(
                v.refusals
                    .iter()
                    .any(|r| r.program.as_ref() == Some(&p.name)
                        && r.policy_key == "programs.types"
                        && r.subject
                            .starts_with(&format!("program type {} ", p.prog_type))),
                "{obj:?} {}: {:#?}",
                p.name,
                v.refusals
            );
        }
    }
    for t in ["kprobe", "kretprobe", "fentry", "fexit"] {
        assert!(seen.contains(t), "the corpus has {t} programs");
    }
}

#[test]
fn the_corpus_table_in_docs_matches_a_run() {
    let Some(dir) = corpus(&watertight_testkit::this_test()) else {
        return;
    };
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/bpf.md"))
            .unwrap();
    let builtin = Policy::builtin();
    let mut rows = String::new();
    for obj in objects(dir) {
        let v = vet_file(&obj, &builtin);
        rows.push_str(&corpus_row(&obj, &v));
    }
    assert!(
        docs.contains(&rows),
        "docs/bpf.md's corpus table differs from a run; the rows should read:\n{rows}"
    );
}

/// One row of docs/bpf.md's corpus table.
fn corpus_row(obj: &Path, v: &Vetting) -> String {
    let name = obj
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace(".bpf.o", "");
    let types: BTreeSet<&str> = v.programs.iter().map(|p| p.prog_type.as_str()).collect();
    let keys: BTreeSet<&str> = v.refusals.iter().map(|r| r.policy_key.as_str()).collect();
    let verdict = if v.admitted() {
        "admitted".to_string()
    } else {
        format!(
            "refused: {}",
            keys.into_iter().collect::<Vec<_>>().join(", ")
        )
    };
    format!(
        "| {name} | {} | {} | {verdict} |\n",
        v.programs.len(),
        types.into_iter().collect::<Vec<_>>().join(", ")
    )
}

/// One BTF type as `bpftool btf dump file` prints it.
#[derive(Default, Debug)]
struct BtfLine {
    kind: String,
    name: String,
    type_id: Option<u32>,
    nr_elems: Option<u32>,
    /// STRUCT members and DATASEC entries: (name, type id).
    members: Vec<(String, u32)>,
}

/// Map name -> map type of every `.maps` variable, read from bpftool's BTF dump.
fn bpftool_maps(obj: &Path) -> BTreeMap<String, u32> {
    let text = tool("bpftool", &["btf", "dump", "file"], obj);
    let mut types: BTreeMap<u32, BtfLine> = BTreeMap::new();
    let mut current = 0;
    let field = |line: &str, key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .map(|v| v.trim_end_matches(',').parse::<u32>().unwrap())
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            // "[14] ARRAY '(anon)' type_id=2 index_type_id=4 nr_elems=10240"
            let (id, rest) = rest.split_once("] ").unwrap();
            current = id.parse().unwrap();
            let mut words = rest.split_whitespace();
            let kind = words.next().unwrap().to_string();
            let name = rest.split('\'').nth(1).unwrap_or("").to_string();
            types.insert(
                current,
                BtfLine {
                    kind,
                    name,
                    type_id: field(line, "type_id="),
                    nr_elems: field(line, "nr_elems="),
                    members: Vec::new(),
                },
            );
        } else if line.starts_with('\t') {
            let t = types.get_mut(&current).unwrap();
            // "	'type' type_id=1 bits_offset=0" or "	type_id=12 offset=0 size=32 (VAR 'x')"
            // (ENUM values have no type id.)
            let name = line.split('\'').nth(1).unwrap_or("").to_string();
            if let Some(id) = field(line, "type_id=") {
                t.members.push((name, id));
            }
        }
    }
    let skip = |mut id: u32| loop {
        let t = &types[&id];
        match t.kind.as_str() {
            "TYPEDEF" | "CONST" | "VOLATILE" | "RESTRICT" | "TYPE_TAG" => id = t.type_id.unwrap(),
            _ => return id,
        }
    };
    let mut maps = BTreeMap::new();
    for t in types
        .values()
        .filter(|t| t.kind == "DATASEC" && t.name == ".maps")
    {
        for (_, var) in &t.members {
            let var = &types[var];
            let def = &types[&skip(var.type_id.unwrap())];
            let Some((_, ty)) = def.members.iter().find(|(n, _)| n == "type") else {
                continue;
            };
            let ptr = &types[&skip(*ty)];
            let array = &types[&skip(ptr.type_id.unwrap())];
            maps.insert(var.name.clone(), array.nr_elems.unwrap());
        }
    }
    maps
}

#[test]
fn every_btf_map_type_matches_bpftool() {
    let Some(dir) = corpus(&watertight_testkit::this_test()) else {
        return;
    };
    let mut maps = 0;
    for obj in objects(dir) {
        let v = vet_file(&obj, &Policy::builtin());
        let got: BTreeMap<String, u32> = v
            .maps
            .iter()
            .filter(|m| m.section == ".maps")
            .map(|m| (m.name.clone(), m.map_type.unwrap()))
            .collect();
        let want = bpftool_maps(&obj);
        assert_eq!(got, want, "{obj:?}");
        maps += got.len();
    }
    assert!(maps > 100, "{maps} maps");
}
