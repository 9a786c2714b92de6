//! watertight-bpf: static vetting of BPF ELF objects against a policy, and signatures of vetted
//! objects (docs/bpf.md).
//!
//! [`vet`] reads an object (clang/libbpf output) in pure Rust ([`elf`], [`btf`]): every program
//! with its type and attach point ([`sections`]), every helper and kfunc call it can reach
//! (subprograms and callbacks followed), its maps and global data; then checks each against a
//! [`Policy`] and lists every [`Refusal`], naming the program, the instruction, the thing refused
//! and the policy key that refuses it. [`sign`] signs a vetted object's exact bytes with an
//! ed25519 key of `watertight key`; [`verify_signature`] checks such a signature (for
//! `bpf load`).
//!
//! Nothing here runs libbpf or the kernel: objects are untrusted input, and the parser is
//! tested on mutated real objects (tests/mutation.rs) to end in an error, never a panic.

pub mod btf;
pub mod elf;
mod error;
pub mod helpers;
pub mod load;
pub mod policy;
pub mod report;
pub mod sections;
mod sign;

pub use elf::{GlobalData, HelperCall, IndirectCall, KfuncCall, Map, Object, Program};
pub use error::{Error, Result};
pub use helpers::{Helper, HelperClass};
pub use policy::Policy;
pub use report::{VetObject, VetReport};
pub use sign::{sign, verify_signature, SignatureFile, SIGNATURE_FORMAT};

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;

/// Why a program, map or call is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The program refused (`None` for an object-level refusal: a map).
    pub program: Option<String>,
    /// The section of the instruction, when one applies.
    pub section: Option<String>,
    /// The instruction's index in that section (as `llvm-objdump -d` numbers it), when one
    /// applies.
    pub insn: Option<usize>,
    /// What is refused: `helper send_signal (109, act)`, `kfunc bpf_task_acquire`,
    /// `attach point sched:sched_wakeup`, `program type kprobe`, `map inner (array_of_maps)`.
    pub subject: String,
    /// The policy key that refuses it (`helpers.classes`, `programs.attach`, ...).
    pub policy_key: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.program {
            Some(p) => write!(f, "program {p}: ")?,
            None => f.write_str("object: ")?,
        }
        f.write_str(&self.subject)?;
        if let (Some(s), Some(i)) = (&self.section, self.insn) {
            write!(f, " at insn {i} of section {s}")?;
        }
        write!(f, " is refused by {}", self.policy_key)
    }
}

/// The result of vetting one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vetting {
    /// sha256 of the object's bytes, hex.
    pub object_sha256: String,
    /// The programs, with what each can call.
    pub programs: Vec<Program>,
    /// The maps.
    pub maps: Vec<Map>,
    /// Global data sections.
    pub globals: Vec<GlobalData>,
    /// The license string.
    pub license: Option<String>,
    /// sha256 of the policy vetted against ([`Policy::sha256`]).
    pub policy_sha256: String,
    /// Everything the policy refuses; empty when admitted.
    pub refusals: Vec<Refusal>,
}

impl Vetting {
    /// True when the policy refuses nothing (an object without programs is refused).
    pub fn admitted(&self) -> bool {
        self.refusals.is_empty()
    }
}

/// Reads `object` and checks it against `policy`.
pub fn vet(object: &[u8], policy: &Policy) -> Result<Vetting> {
    let parsed = elf::read(object)?;
    let mut refusals = Vec::new();
    if parsed.programs.is_empty() {
        refusals.push(Refusal {
            program: None,
            section: None,
            insn: None,
            subject: "an object without programs".into(),
            policy_key: "programs.types".into(),
        });
    }
    for p in &parsed.programs {
        check_program(p, policy, &mut refusals);
    }
    for m in &parsed.maps {
        let allowed = |t: &str| policy.maps.types.iter().any(|a| a == t);
        if m.map_type.is_none() || !allowed(&m.type_name) {
            refusals.push(Refusal {
                program: None,
                section: Some(m.section.clone()),
                insn: None,
                subject: format!("map {} ({})", m.name, m.type_name),
                policy_key: "maps.types".into(),
            });
        }
        if let Some(inner) = &m.inner {
            if !allowed(inner) {
                refusals.push(Refusal {
                    program: None,
                    section: Some(m.section.clone()),
                    insn: None,
                    subject: format!("inner map of {} ({inner})", m.name),
                    policy_key: "maps.types".into(),
                });
            }
        }
    }
    Ok(Vetting {
        object_sha256: hex::encode(Sha256::digest(object)),
        programs: parsed.programs,
        maps: parsed.maps,
        globals: parsed.globals,
        license: parsed.license,
        policy_sha256: policy.sha256(),
        refusals,
    })
}

/// Whether `attach` is `category:event` with both parts identifiers, as tracefs names them.
fn is_tracepoint_name(attach: &str) -> bool {
    let ident =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    attach
        .split_once(':')
        .is_some_and(|(c, e)| ident(c) && ident(e))
}

/// [`vet`] of a file: its bytes (returned with the vetting, so that a loader hands the kernel
/// exactly what was vetted) and errors that name the file.
pub fn vet_file(path: &std::path::Path, policy: &Policy) -> Result<(Vec<u8>, Vetting)> {
    let bytes = std::fs::read(path).map_err(|source| Error::ObjectRead {
        path: path.to_path_buf(),
        source,
    })?;
    let vetting = vet(&bytes, policy).map_err(|e| Error::Object {
        path: path.to_path_buf(),
        source: Box::new(e),
    })?;
    Ok((bytes, vetting))
}

fn check_program(p: &Program, policy: &Policy, refusals: &mut Vec<Refusal>) {
    let refuse = |section: Option<&str>, insn: Option<usize>, subject: String, key: &str| Refusal {
        program: Some(p.name.clone()),
        section: section.map(str::to_string),
        insn,
        subject,
        policy_key: key.to_string(),
    };
    if p.prog_type == "unknown" {
        refusals.push(refuse(
            None,
            None,
            format!(
                "unknown section {:?} (libbpf would not know its program type)",
                p.section
            ),
            "programs.types",
        ));
    } else if !policy.programs.types.contains(&p.prog_type) {
        refusals.push(refuse(
            None,
            None,
            format!("program type {} (section {})", p.prog_type, p.section),
            "programs.types",
        ));
    }
    if sections::is_tracepoint_family(&p.prog_type) {
        match &p.attach {
            None => refusals.push(refuse(
                None,
                None,
                format!(
                    "a {} without an attach point in its section name",
                    p.prog_type
                ),
                "programs.attach",
            )),
            // libbpf joins the category and event into a tracefs path
            // (events/<category>/<event>/id): anything but an identifier could walk out of
            // the category a pattern like `syscalls:*` names (`tp/syscalls/../sched/x`).
            Some(a) if !is_tracepoint_name(a) => refusals.push(refuse(
                None,
                None,
                format!("attach point {a:?} (not category:event of letters, digits and _)"),
                "programs.attach",
            )),
            Some(a) if !policy.allows_attach(a) => refusals.push(refuse(
                None,
                None,
                format!("attach point {a}"),
                "programs.attach",
            )),
            Some(_) => {}
        }
    }
    for h in &p.helpers {
        let at = (Some(h.section.as_str()), Some(h.insn));
        match (&h.name, h.class) {
            (Some(name), Some(class)) => {
                let subject = format!("helper {name} ({}, {class})", h.id);
                if policy.helpers.deny.contains(name) {
                    refusals.push(refuse(at.0, at.1, subject, "helpers.deny"));
                } else if !policy.helpers.allow.contains(name)
                    && !policy.helpers.classes.contains(&class)
                {
                    refusals.push(refuse(at.0, at.1, subject, "helpers.classes"));
                }
            }
            _ => refusals.push(refuse(
                at.0,
                at.1,
                format!("unknown helper id {} (not in the helper table)", h.id),
                "helpers.allow",
            )),
        }
    }
    for c in &p.indirect_calls {
        refusals.push(refuse(
            Some(&c.section),
            Some(c.insn),
            "indirect call (callx: a call through a function pointer, target unknown)".into(),
            "helpers.allow",
        ));
    }
    for k in &p.kfuncs {
        if !policy.kfuncs.allow.contains(&k.name) {
            refusals.push(refuse(
                Some(&k.section),
                Some(k.insn),
                format!("kfunc {}", k.name),
                "kfuncs.allow",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_as_one_line_naming_program_insn_subject_and_key() {
        let r = Refusal {
            program: Some("handle".into()),
            section: Some("tp/syscalls/sys_enter_kill".into()),
            insn: Some(7),
            subject: "helper send_signal (109, act)".into(),
            policy_key: "helpers.classes".into(),
        };
        assert_eq!(
            r.to_string(),
            "program handle: helper send_signal (109, act) at insn 7 of section \
             tp/syscalls/sys_enter_kill is refused by helpers.classes"
        );
    }

    #[test]
    fn vet_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.o");
        let e = vet_file(&missing, &Policy::builtin())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("{}: cannot read", missing.display())),
            "{e}"
        );
        let text = dir.path().join("text.o");
        std::fs::write(&text, "hello").unwrap();
        let e = vet_file(&text, &Policy::builtin()).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: not a readable ELF object", text.display())),
            "{e}"
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\x7fELF",
            b"not an elf at all, just text........................................................",
        ] {
            assert!(vet(bytes, &Policy::builtin()).is_err());
        }
    }
}
