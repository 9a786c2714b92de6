//! Reading a BPF ELF object (clang `-target bpf`, libbpf conventions) in pure Rust: programs and
//! their sections, every helper and kfunc call they can reach, maps and global data.
//!
//! Programs: each function symbol in an executable section other than `.text` (libbpf's rule;
//! `.text` holds subprograms). Calls: `BPF_JMP|BPF_CALL` (opcode 0x85) with `src_reg` 0 calls
//! helper `imm`; with a relocation to an undefined symbol it calls that kfunc (clang emits
//! `call -1` and an `R_BPF_64_32` relocation); with a relocation to a defined function, or
//! `src_reg` 1 (`BPF_PSEUDO_CALL`) and none, it calls a subprogram, which is followed, so a
//! program is charged with the helpers of every function it can reach. So is a callback whose
//! address is taken (`ld_imm64` relocated to a function: `bpf_loop`, timers, `for_each`). A
//! call into code no symbol covers charges the rest of its section (conservative).

use crate::btf::Btf;
use crate::error::{Error, Result};
use crate::helpers::{self, HelperClass};
use crate::sections::{self, SectionKind};
use object::elf::{Rel64, Rela64, SHT_CREL, SHT_REL, SHT_RELA};
use object::read::elf::{ElfFile64, SectionHeader as _};
use object::{
    LittleEndian, Object as _, ObjectSection as _, ObjectSymbol as _, RelocationFlags,
    RelocationTarget, SectionFlags, SectionIndex, SymbolKind, SymbolSection,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

const EM_BPF: u16 = 247;
const SHF_EXECINSTR: u64 = 0x4;
const CALL: u8 = 0x85;
const LD_IMM64: u8 = 0x18;
/// `BPF_JMP|BPF_CALL|BPF_X`: a call through a register (clang's `callx` for a function pointer).
const CALLX: u8 = 0x8d;
const PSEUDO_CALL: u8 = 1;
const PSEUDO_KFUNC_CALL: u8 = 2;
/// Functions followed per program at most (a program cannot have more than the object's
/// functions; this bounds a crafted object's work).
const MAX_FUNCTIONS: usize = 100_000;

/// A helper call a program can reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HelperCall {
    /// The helper id (`imm` of the call).
    pub id: u32,
    /// Its name from the helper table, or `None` when the table does not know the id.
    pub name: Option<String>,
    /// Its class, when known.
    pub class: Option<HelperClass>,
    /// The section of the call instruction.
    pub section: String,
    /// The instruction's index in its section (as `llvm-objdump -d` numbers it).
    pub insn: usize,
    /// The function the call is in (the program itself or a subprogram).
    pub function: String,
}

/// A kfunc call a program can reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KfuncCall {
    /// The kfunc's name (the extern symbol), or `btf_id:N` for a call by BTF id.
    pub name: String,
    /// The section of the call instruction.
    pub section: String,
    /// The instruction's index in its section.
    pub insn: usize,
    /// The function the call is in.
    pub function: String,
}

/// An indirect call (`callx`): its target is a register, unknown statically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndirectCall {
    /// The section of the call instruction.
    pub section: String,
    /// The instruction's index in its section.
    pub insn: usize,
    /// The function the call is in.
    pub function: String,
}

/// One program of the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Program {
    /// Its name (the function symbol).
    pub name: String,
    /// Its ELF section (`tracepoint/syscalls/sys_enter_openat`).
    pub section: String,
    /// The program type in libbpf's section spelling, aliases folded; `unknown` when libbpf
    /// would not recognise the section (always refused).
    pub prog_type: String,
    /// The attach target (`syscalls:sys_enter_openat` for tracepoints).
    pub attach: Option<String>,
    /// Its own instruction count.
    pub insns: usize,
    /// Every helper call it can reach (its own and its subprograms').
    pub helpers: Vec<HelperCall>,
    /// Every kfunc call it can reach.
    pub kfuncs: Vec<KfuncCall>,
    /// Every indirect call (`callx`) it can reach: always refused (the target is unknown; the
    /// 6.18 verifier refuses the opcode too).
    pub indirect_calls: Vec<IndirectCall>,
    /// The subprograms and callbacks it can reach, by name.
    pub subprograms: Vec<String>,
    /// True when a call went into code no symbol covers and the rest of that section was
    /// charged to the program.
    pub conservative: bool,
}

/// One map the object defines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Map {
    /// Its name (the variable).
    pub name: String,
    /// Its section (`.maps`, or the legacy `maps`).
    pub section: String,
    /// `BPF_MAP_TYPE_*`'s value; `None` when the definition does not say (refused).
    pub map_type: Option<u32>,
    /// The type's name in lower case without the prefix (`hash`, `ringbuf`), or `type N`.
    pub type_name: String,
    /// `max_entries`, when the definition says.
    pub max_entries: Option<u32>,
    /// The inner map's type name of a map-in-map.
    pub inner: Option<String>,
}

/// A global data section (`.data`, `.rodata`, `.bss` and their named variants): maps libbpf
/// creates, which userspace can read and (except `.rodata` once frozen) write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GlobalData {
    /// The section's name.
    pub section: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What an object holds, before any policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Object {
    /// The programs, in section then symbol order.
    pub programs: Vec<Program>,
    /// The maps.
    pub maps: Vec<Map>,
    /// Global data sections.
    pub globals: Vec<GlobalData>,
    /// The `license` section's string, when there is one.
    pub license: Option<String>,
}

/// `enum bpf_map_type` of Linux 6.18, by value.
pub const MAP_TYPES: &[&str] = &[
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
];

/// The lower-case name of a map type value (`type N` when unknown).
pub fn map_type_name(t: u32) -> String {
    MAP_TYPES
        .get(t as usize)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("type {t}"))
}

/// One decoded instruction slot.
#[derive(Debug, Clone, Copy)]
struct Insn {
    code: u8,
    src: u8,
    imm: i32,
}

/// Where a relocation points.
#[derive(Debug, Clone)]
enum Target {
    /// An undefined (extern) symbol: a kfunc when called.
    Extern(String),
    /// A defined symbol: its section and byte value.
    Defined { section: usize, value: u64 },
}

/// An executable section: its instructions, relocations by instruction and function symbols.
struct Code {
    name: String,
    insns: Vec<Insn>,
    relocs: HashMap<usize, Target>,
    /// Function symbols: start insn -> (name, end insn).
    functions: BTreeMap<usize, (String, usize)>,
}

fn section_error(section: &str, reason: impl Into<String>) -> Error {
    Error::Section {
        section: section.to_string(),
        reason: reason.into(),
    }
}

/// Checks the ELF identification before handing the bytes to the ELF reader, so that each kind
/// of wrong file gets its own message.
fn check_header(data: &[u8]) -> Result<()> {
    if data.len() < 4 || &data[..4] != b"\x7fELF" {
        return Err(Error::Elf(format!(
            "no ELF magic ({} bytes; a BPF object starts with \\x7fELF)",
            data.len()
        )));
    }
    if data.len() < 64 {
        return Err(Error::Elf(format!(
            "truncated: {} bytes, shorter than an ELF64 header",
            data.len()
        )));
    }
    match (data[4], data[5]) {
        (2, 1) => {}
        (2, 2) => return Err(Error::Layout("big-endian (bpfeb)".into())),
        (1, _) => return Err(Error::Layout("ELF32".into())),
        (c, d) => return Err(Error::Layout(format!("ELF class {c}, data encoding {d}"))),
    }
    let machine = u16::from_le_bytes([data[18], data[19]]);
    if machine != EM_BPF {
        let name = match machine {
            3 => "EM_386".to_string(),
            40 => "EM_ARM".to_string(),
            62 => "EM_X86_64".to_string(),
            183 => "EM_AARCH64".to_string(),
            243 => "EM_RISCV".to_string(),
            m => format!("{m}"),
        };
        return Err(Error::NotBpf(name));
    }
    // e_shoff (40..48), e_shentsize (58..60), e_shnum (60..62): a cut-off file loses its
    // section headers first (they come last in clang's output).
    let shoff = u64::from_le_bytes(data[40..48].try_into().unwrap_or([0; 8]));
    let shentsize = u64::from(u16::from_le_bytes([data[58], data[59]]));
    let shnum = u64::from(u16::from_le_bytes([data[60], data[61]]));
    let end = shoff.saturating_add(shentsize.saturating_mul(shnum));
    if end > data.len() as u64 {
        return Err(Error::Elf(format!(
            "truncated: its section headers end at byte {end}, the file has {} bytes",
            data.len()
        )));
    }
    Ok(())
}

/// Reads the object.
pub fn read(data: &[u8]) -> Result<Object> {
    check_header(data)?;
    let elf = ElfFile64::<LittleEndian>::parse(data).map_err(|e| Error::Elf(e.to_string()))?;

    // Executable sections and global data.
    let mut code: BTreeMap<usize, Code> = BTreeMap::new();
    let mut globals = Vec::new();
    let mut license = None;
    let mut btf = None;
    let mut legacy_maps = BTreeSet::new();
    for section in elf.sections() {
        let name = section
            .name()
            .map_err(|e| section_error(&format!("#{}", section.index().0), e.to_string()))?
            .to_string();
        let flags = match section.flags() {
            SectionFlags::Elf { sh_flags } => sh_flags,
            _ => 0,
        };
        if flags & SHF_EXECINSTR != 0 {
            let bytes = section
                .data()
                .map_err(|e| section_error(&name, format!("contents: {e}")))?;
            if bytes.len() % 8 != 0 {
                return Err(section_error(
                    &name,
                    format!(
                        "{} bytes is not a whole number of 8-byte instructions",
                        bytes.len()
                    ),
                ));
            }
            let insns = bytes
                .chunks_exact(8)
                .map(|c| Insn {
                    code: c[0],
                    src: c[1] >> 4,
                    imm: i32::from_le_bytes([c[4], c[5], c[6], c[7]]),
                })
                .collect();
            code.insert(
                section.index().0,
                Code {
                    name,
                    insns,
                    relocs: HashMap::new(),
                    functions: BTreeMap::new(),
                },
            );
        } else if is_global_data(&name) {
            globals.push(GlobalData {
                section: name,
                size: section.size(),
            });
        } else if name == "license" {
            let bytes = section
                .data()
                .map_err(|e| section_error(&name, format!("contents: {e}")))?;
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            license = Some(String::from_utf8_lossy(&bytes[..end]).into_owned());
        } else if name == ".BTF" {
            let bytes = section
                .data()
                .map_err(|e| section_error(&name, format!("contents: {e}")))?;
            btf = Some(Btf::parse(bytes)?);
        } else if name == "maps" || name.starts_with("maps/") {
            legacy_maps.insert(section.index().0);
        }
    }

    // Relocation sections are read strictly first: the ELF reader's iterator skips a relocation
    // section it cannot parse, and a dropped relocation would hide a kfunc call.
    let mut expected: HashMap<usize, usize> = HashMap::new();
    for (i, header) in elf.elf_section_table().iter().enumerate() {
        let sh_type = header.sh_type(LittleEndian);
        if !matches!(sh_type, SHT_REL | SHT_RELA | SHT_CREL) {
            continue;
        }
        let target = header.sh_info(LittleEndian) as usize;
        let Some(c) = code.get(&target) else { continue };
        let count = match sh_type {
            SHT_REL => header
                .data_as_array::<Rel64<LittleEndian>, _>(LittleEndian, data)
                .map(<[_]>::len),
            SHT_RELA => header
                .data_as_array::<Rela64<LittleEndian>, _>(LittleEndian, data)
                .map(<[_]>::len),
            _ => {
                return Err(section_error(
                    &c.name,
                    "compressed relocations (SHT_CREL) are not read; compile without --crel",
                ))
            }
        }
        .map_err(|e| section_error(&c.name, format!("relocation section #{i}: {e}")))?;
        *expected.entry(target).or_default() += count;
    }

    // Relocations of executable sections, by instruction.
    for (index, c) in code.iter_mut() {
        let section = elf
            .section_by_index(SectionIndex(*index))
            .map_err(|e| section_error(&c.name, e.to_string()))?;
        let mut read = 0usize;
        for (offset, reloc) in section.relocations() {
            let RelocationTarget::Symbol(sym_index) = reloc.target() else {
                read += 1;
                continue;
            };
            if let RelocationFlags::Elf { r_type } = reloc.flags() {
                // R_BPF_64_64 (1), R_BPF_64_ABS64 (2), R_BPF_64_ABS32 (3), R_BPF_64_NODYLD32
                // (4), R_BPF_64_32 (10): all name a symbol; which one is used does not matter.
                if r_type == 0 {
                    read += 1;
                    continue;
                }
            }
            let symbol = elf
                .symbol_by_index(sym_index)
                .map_err(|e| section_error(&c.name, format!("relocation symbol: {e}")))?;
            let target = match symbol.section() {
                SymbolSection::Section(s) => Target::Defined {
                    section: s.0,
                    value: symbol.address(),
                },
                _ => Target::Extern(symbol.name().unwrap_or("?").to_string()),
            };
            if offset % 8 != 0 {
                return Err(section_error(
                    &c.name,
                    format!("relocation at byte {offset} is not on an instruction"),
                ));
            }
            c.relocs.insert((offset / 8) as usize, target);
            read += 1;
        }
        let want = expected.get(index).copied().unwrap_or(0);
        if read != want {
            return Err(section_error(
                &c.name,
                format!("{want} relocations in its relocation sections, {read} readable"),
            ));
        }
    }

    // Function symbols; legacy map symbols.
    let mut legacy = Vec::new();
    for symbol in elf.symbols() {
        let SymbolSection::Section(SectionIndex(s)) = symbol.section() else {
            continue;
        };
        if let Some(c) = code.get_mut(&s) {
            if symbol.kind() == SymbolKind::Text && symbol.size() > 0 {
                let name = symbol.name().unwrap_or("?").to_string();
                let start = symbol.address() / 8;
                let end = (symbol.address().saturating_add(symbol.size())) / 8;
                if symbol.address() % 8 != 0 || end as usize > c.insns.len() {
                    return Err(section_error(
                        &c.name,
                        format!(
                            "function {name} (bytes {}..{}) lies outside the section's {} instructions",
                            symbol.address(),
                            symbol.address().saturating_add(symbol.size()),
                            c.insns.len()
                        ),
                    ));
                }
                c.functions.insert(start as usize, (name, end as usize));
            }
        } else if legacy_maps.contains(&s) && symbol.kind() == SymbolKind::Data {
            legacy.push((
                s,
                symbol.name().unwrap_or("?").to_string(),
                symbol.address(),
            ));
        }
    }

    let text = code
        .iter()
        .find(|(_, c)| c.name == ".text")
        .map(|(i, _)| *i);
    let mut programs = Vec::new();
    let mut scans = Scans::new();
    for (index, c) in &code {
        if Some(*index) == text {
            continue;
        }
        for (&start, (name, end)) in &c.functions {
            let kind = sections::classify(&c.name).unwrap_or(SectionKind {
                prog_type: "unknown".into(),
                attach: None,
            });
            let mut program = Program {
                name: name.clone(),
                section: c.name.clone(),
                prog_type: kind.prog_type,
                attach: kind.attach,
                insns: end - start,
                helpers: Vec::new(),
                kfuncs: Vec::new(),
                indirect_calls: Vec::new(),
                subprograms: Vec::new(),
                conservative: false,
            };
            walk(&code, &mut scans, *index, start, &mut program);
            programs.push(program);
        }
    }

    let mut maps = Vec::new();
    if let Some(btf) = &btf {
        for (name, ty) in btf.datasec_vars(".maps") {
            let def = btf.map_def(ty).unwrap_or_default();
            maps.push(Map {
                name,
                section: ".maps".into(),
                map_type: def.map_type,
                type_name: def
                    .map_type
                    .map(map_type_name)
                    .unwrap_or_else(|| "unspecified".into()),
                max_entries: def.max_entries,
                inner: def
                    .inner
                    .and_then(|i| i.map_type)
                    .map(map_type_name)
                    .or_else(|| def.has_values.then(|| "unspecified".into())),
            });
        }
    }
    for (s, name, value) in legacy {
        // struct bpf_map_def { type, key_size, value_size, max_entries, map_flags }.
        let section = elf
            .section_by_index(SectionIndex(s))
            .map_err(|e| section_error("maps", e.to_string()))?;
        let sname = section.name().unwrap_or("maps").to_string();
        let bytes = section
            .data()
            .map_err(|e| section_error(&sname, e.to_string()))?;
        let word = |i: u64| {
            value
                .checked_add(4 * i)
                .and_then(|o| bytes.get(o as usize..(o as usize).checked_add(4)?))
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let map_type = word(0);
        maps.push(Map {
            name,
            section: sname,
            map_type,
            type_name: map_type
                .map(map_type_name)
                .unwrap_or_else(|| "unspecified".into()),
            max_entries: word(3),
            inner: None,
        });
    }

    Ok(Object {
        programs,
        maps,
        globals,
        license,
    })
}

fn is_global_data(name: &str) -> bool {
    [".data", ".rodata", ".bss"]
        .iter()
        .any(|p| name == *p || name.starts_with(&format!("{p}.")))
}

/// What one function calls, read once per object ([`Scans`]).
#[derive(Debug, Default)]
struct Scan {
    name: String,
    helpers: Vec<HelperCall>,
    kfuncs: Vec<KfuncCall>,
    indirect: Vec<IndirectCall>,
    /// Call and callback targets, as (section, instruction).
    callees: Vec<(usize, usize)>,
    /// No function symbol covers this code: the rest of the section was read.
    uncovered: bool,
}

/// Each function's [`Scan`], by (section, first instruction): a function many programs reach
/// is read once, so vetting stays linear in the object's size plus its call edges.
type Scans = HashMap<(usize, usize), Scan>;

/// The function covering instruction `at` of section `s`: (start, end, name), or the rest of
/// the section when no function symbol covers it.
fn function_at(c: &Code, at: usize) -> (usize, usize, Option<&str>) {
    match c.functions.range(..=at).next_back() {
        // The whole function, also when a call lands inside it: libbpf appends whole
        // subprograms.
        Some((&start, (name, end))) if at < *end => (start, *end, Some(name.as_str())),
        _ => (at, c.insns.len(), None),
    }
}

fn scan(c: &Code, s: usize, from: usize, to: usize, name: Option<&str>) -> Scan {
    let fname = name
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}+{from}", c.name));
    let mut out = Scan {
        name: fname.clone(),
        uncovered: name.is_none(),
        ..Scan::default()
    };
    let mut i = from;
    while i < to {
        let insn = c.insns[i];
        match (insn.code, c.relocs.get(&i)) {
            (CALL, Some(Target::Extern(name))) => out.kfuncs.push(KfuncCall {
                name: name.clone(),
                section: c.name.clone(),
                insn: i,
                function: fname.clone(),
            }),
            (CALL, Some(Target::Defined { section: ts, value })) => {
                let target = (*value / 8) as i64 + i64::from(insn.imm) + 1;
                if let Ok(t) = usize::try_from(target) {
                    out.callees.push((*ts, t));
                }
            }
            (CALL, None) if insn.src == PSEUDO_CALL => {
                let target = i as i64 + i64::from(insn.imm) + 1;
                if let Ok(t) = usize::try_from(target) {
                    out.callees.push((s, t));
                }
            }
            (CALL, None) if insn.src == PSEUDO_KFUNC_CALL => out.kfuncs.push(KfuncCall {
                name: format!("btf_id:{}", insn.imm),
                section: c.name.clone(),
                insn: i,
                function: fname.clone(),
            }),
            (CALL, None) => {
                let id = insn.imm as u32;
                let known = helpers::by_id(id);
                out.helpers.push(HelperCall {
                    id,
                    name: known.map(|h| h.name.clone()),
                    class: known.map(|h| h.class),
                    section: c.name.clone(),
                    insn: i,
                    function: fname.clone(),
                });
            }
            (CALLX, _) => out.indirect.push(IndirectCall {
                section: c.name.clone(),
                insn: i,
                function: fname.clone(),
            }),
            (LD_IMM64, Some(Target::Defined { section: ts, value })) => {
                // The address of a function (a callback of bpf_loop, timers, for_each), when
                // the symbol is in an executable section; a map or global data otherwise.
                let target = (*value as i64 + i64::from(insn.imm)) / 8;
                if let Ok(t) = usize::try_from(target) {
                    out.callees.push((*ts, t));
                }
            }
            _ => {}
        }
        // ld_imm64 takes two slots.
        i += if insn.code == LD_IMM64 { 2 } else { 1 };
    }
    out
}

/// Follows every function `program` can reach from (`section`, `start`), collecting its calls.
fn walk(
    code: &BTreeMap<usize, Code>,
    scans: &mut Scans,
    section: usize,
    start: usize,
    program: &mut Program,
) {
    let mut seen: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut work = vec![(section, start)];
    while let Some((s, at)) = work.pop() {
        // Callback addresses may name data in a non-executable section: not code.
        let Some(c) = code.get(&s) else { continue };
        if at >= c.insns.len() {
            continue;
        }
        let (from, to, name) = function_at(c, at);
        if !seen.insert((s, from)) || seen.len() > MAX_FUNCTIONS {
            continue;
        }
        let f = scans
            .entry((s, from))
            .or_insert_with(|| scan(c, s, from, to, name));
        program.conservative |= f.uncovered;
        if (s, from) != (section, start) && !program.subprograms.contains(&f.name) {
            program.subprograms.push(f.name.clone());
        }
        program.helpers.extend(f.helpers.iter().cloned());
        program.kfuncs.extend(f.kfuncs.iter().cloned());
        program.indirect_calls.extend(f.indirect.iter().cloned());
        work.extend(f.callees.iter().copied());
    }
    program
        .helpers
        .sort_by(|a, b| (&a.section, a.insn).cmp(&(&b.section, b.insn)));
    program
        .kfuncs
        .sort_by(|a, b| (&a.section, a.insn).cmp(&(&b.section, b.insn)));
}
