//! The gatekeeper (`watertight bpf load`): loads only objects that verify against a signer's key
//! and pass the policy, exactly the bytes that were verified, and records what it loaded.
//!
//! [`LoadPlan::new`] does everything that needs no kernel state (Firecracker's jailer shape:
//! validate in `new`, act in `run`): each object is read once into memory, its signature file
//! checked against those bytes, the bytes vetted, and libbpf's own reading of the same bytes
//! compared with the vetter's (the same programs in the same sections, so libbpf can neither load
//! nor attach anything the vetter did not see). [`LoadPlan::run`] hands those bytes to libbpf,
//! checks the kernel's program types against the vetted ones, attaches each program the way its
//! section says (the section the policy admitted), pins when asked, and writes one
//! [`LoadedBpfProgram`] record per program under the registry directory, which `watertight audit
//! host` reads to tell these programs from any other.
//!
//! A failure at any step of `run` drops what that run made: links detach, programs unload, pins
//! and records it wrote are removed.

use crate::{verify_signature, vet, Error as VetError, Policy, Vetting};
use libbpf_rs::{Link, Object, ObjectBuilder, ProgramType};
use std::collections::BTreeSet;
use std::io::Write as _;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use watertight_integrity::VerifyingKey;
use watertight_model::LoadedBpfProgram;

/// The largest object the gatekeeper reads (the kernel's own limit on a program is 1M
/// instructions, 8 MiB; an object of several programs with BTF stays far below this).
pub const MAX_OBJECT_BYTES: u64 = 64 << 20;

/// The largest signature file read.
const MAX_SIGNATURE_BYTES: u64 = 64 << 10;

/// One object to load and the signature file that vouches for it.
#[derive(Debug, Clone)]
pub struct ObjectSource {
    /// The BPF object (`tool.bpf.o`).
    pub object: PathBuf,
    /// Its signature file (default `tool.bpf.o.sig`).
    pub signature: PathBuf,
}

impl ObjectSource {
    /// The object with its signature beside it (`OBJ.sig`).
    pub fn beside(object: PathBuf) -> Self {
        let mut sig = object.clone().into_os_string();
        sig.push(".sig");
        Self {
            object,
            signature: PathBuf::from(sig),
        }
    }
}

/// Every step of the gatekeeper that can fail, each naming the object.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The object could not be read (or is larger than [`MAX_OBJECT_BYTES`]).
    #[error("{path}: cannot read the BPF object: {reason}")]
    ReadObject {
        /// The object.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The signature file could not be read.
    #[error("{path}: cannot read the signature file: {reason} (sign the object with `watertight bpf sign`)")]
    ReadSignature {
        /// The signature file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The signature does not hold for these bytes and this key.
    #[error("{path}: {source}")]
    Signature {
        /// The object.
        path: PathBuf,
        /// What the verification refused.
        source: VetError,
    },
    /// The object does not parse as a BPF object.
    #[error("{path}: {source}")]
    Malformed {
        /// The object.
        path: PathBuf,
        /// What the reader refused.
        source: VetError,
    },
    /// The policy refuses something in the object.
    #[error("{path}: refused by the policy ({count} refusal(s)); first: {first}")]
    Refused {
        /// The object.
        path: PathBuf,
        /// How many refusals.
        count: usize,
        /// The first one, as one line.
        first: String,
    },
    /// libbpf could not open the bytes.
    #[error("{path}: libbpf cannot open the object: {reason}")]
    Open {
        /// The object.
        path: PathBuf,
        /// libbpf's error.
        reason: String,
    },
    /// libbpf reads other programs or program types out of the bytes than the vetter did.
    #[error("{path}: libbpf and the vetter disagree on the object ({detail}); refusing to load what was not vetted")]
    Disagree {
        /// The object.
        path: PathBuf,
        /// The difference.
        detail: String,
    },
    /// The kernel refused to load the object (the verifier, or a missing permission).
    #[error("{path}: the kernel refused to load it: {reason}")]
    Load {
        /// The object.
        path: PathBuf,
        /// libbpf's error (the verifier log is on stderr).
        reason: String,
    },
    /// A program could not be attached.
    #[error("{path}: program {program}: cannot attach: {reason}")]
    Attach {
        /// The object.
        path: PathBuf,
        /// The program.
        program: String,
        /// Why.
        reason: String,
    },
    /// A link or program could not be pinned.
    #[error("{pin}: cannot pin program {program}: {reason} (is a bpffs mounted there?)")]
    Pin {
        /// Where.
        pin: PathBuf,
        /// The program.
        program: String,
        /// Why.
        reason: String,
    },
    /// The kernel's id and tag of a loaded program could not be read.
    #[error("program {program}: cannot read its id and tag: {reason}")]
    Identify {
        /// The program.
        program: String,
        /// Why.
        reason: String,
    },
    /// A tracepoint program needs tracefs to find its tracepoint, and it is not mounted.
    #[error("tracefs is not mounted (tracepoint programs need /sys/kernel/tracing/events) and a private one could not be mounted: {reason}; mount it: mount -t tracefs nodev /sys/kernel/tracing")]
    Tracefs {
        /// Why the private mount failed.
        reason: String,
    },
    /// A registry record could not be written.
    #[error("{path}: cannot write the registry record: {reason}")]
    Record {
        /// The record file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// An object that passed every check before the kernel sees it.
struct Admitted {
    path: PathBuf,
    bytes: Vec<u8>,
    vetting: Vetting,
    signer: String,
}

/// What to load, checked (`new`), and how (`run`).
pub struct LoadPlan {
    objects: Vec<Admitted>,
    pin: Option<PathBuf>,
    registry: PathBuf,
}

/// Reads at most `limit` bytes of `path`; more is an error.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("larger than {limit} bytes"));
    }
    Ok(bytes)
}

/// The program type in the vetter's spelling of a libbpf [`ProgramType`], for the comparison
/// of what the kernel was given with what was vetted (`None`: a type the vetter never admits
/// by that name, so any admitted program claiming it is a disagreement).
fn vetted_type_name(ty: ProgramType) -> Option<&'static str> {
    Some(match ty {
        ProgramType::Tracepoint => "tracepoint",
        ProgramType::RawTracepoint => "raw_tracepoint",
        ProgramType::Tracing => "tp_btf",
        ProgramType::PerfEvent => "perf_event",
        ProgramType::Kprobe => "kprobe",
        ProgramType::SocketFilter => "socket",
        ProgramType::Xdp => "xdp",
        ProgramType::SchedCls => "tc",
        ProgramType::CgroupDevice => "cgroup/dev",
        ProgramType::Lsm => "lsm",
        ProgramType::Syscall => "syscall",
        _ => return None,
    })
}

impl LoadPlan {
    /// Reads, verifies and vets every object; loads nothing. `registry` is the directory the
    /// records go to ([`watertight_model::BPF_REGISTRY_DIR`] in production).
    pub fn new(
        sources: &[ObjectSource],
        key: &VerifyingKey,
        policy: &Policy,
        pin: Option<PathBuf>,
        registry: PathBuf,
    ) -> Result<Self, LoadError> {
        let mut objects = Vec::with_capacity(sources.len());
        for source in sources {
            let path = source.object.clone();
            let bytes =
                read_bounded(&path, MAX_OBJECT_BYTES).map_err(|reason| LoadError::ReadObject {
                    path: path.clone(),
                    reason,
                })?;
            let sig = read_bounded(&source.signature, MAX_SIGNATURE_BYTES).map_err(|reason| {
                LoadError::ReadSignature {
                    path: source.signature.clone(),
                    reason,
                }
            })?;
            // The signature first: an unsigned object's bytes are not even parsed further.
            let signature =
                verify_signature(&bytes, &sig, key).map_err(|source| LoadError::Signature {
                    path: path.clone(),
                    source,
                })?;
            let vetting = vet(&bytes, policy).map_err(|source| LoadError::Malformed {
                path: path.clone(),
                source,
            })?;
            if let Some(first) = vetting.refusals.first() {
                return Err(LoadError::Refused {
                    path,
                    count: vetting.refusals.len(),
                    first: first.to_string(),
                });
            }
            compare_with_libbpf(&path, &bytes, &vetting)?;
            objects.push(Admitted {
                path,
                bytes,
                vetting,
                signer: signature.signer,
            });
        }
        Ok(Self {
            objects,
            pin,
            registry,
        })
    }

    /// The programs that `run` will load, as (object, program, type, attach point).
    pub fn programs(&self) -> impl Iterator<Item = (&Path, &crate::Program)> {
        self.objects.iter().flat_map(|o| {
            o.vetting
                .programs
                .iter()
                .map(move |p| (o.path.as_path(), p))
        })
    }

    /// Loads, attaches, pins and records every object. On an error, everything this run made
    /// is undone before it returns.
    pub fn run(self) -> Result<Loaded, LoadError> {
        let mut loaded = Loaded {
            skipped: Vec::new(),
            objects: Vec::new(),
            links: Vec::new(),
            programs: Vec::new(),
            records: Vec::new(),
            pins: Vec::new(),
        };
        for admitted in &self.objects {
            // `loaded` is dropped on `?`: its Drop removes the records and pins made so far
            // and closes every link and object.
            load_one(admitted, self.pin.as_deref(), &self.registry, &mut loaded)?;
        }
        Ok(loaded)
    }
}

/// libbpf reads the bytes itself when it loads them: the programs it finds must be exactly the
/// vetted ones, in the same sections, or something would load unvetted.
fn compare_with_libbpf(path: &Path, bytes: &[u8], vetting: &Vetting) -> Result<(), LoadError> {
    let open = ObjectBuilder::default()
        .open_memory(bytes)
        .map_err(|e| LoadError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let seen: BTreeSet<(String, String)> = open
        .progs()
        .map(|p| {
            (
                p.name().to_string_lossy().into_owned(),
                p.section().to_string_lossy().into_owned(),
            )
        })
        .collect();
    let vetted: BTreeSet<(String, String)> = vetting
        .programs
        .iter()
        .map(|p| (p.name.clone(), p.section.clone()))
        .collect();
    if seen != vetted {
        let only_libbpf: Vec<_> = seen
            .difference(&vetted)
            .map(|(n, s)| format!("{n} in {s}"))
            .collect();
        let only_vetter: Vec<_> = vetted
            .difference(&seen)
            .map(|(n, s)| format!("{n} in {s}"))
            .collect();
        return Err(LoadError::Disagree {
            path: path.to_path_buf(),
            detail: format!(
                "programs only libbpf sees: [{}]; only the vetter sees: [{}]",
                only_libbpf.join(", "),
                only_vetter.join(", ")
            ),
        });
    }
    Ok(())
}

fn load_one(
    admitted: &Admitted,
    pin_root: Option<&Path>,
    registry: &Path,
    loaded: &mut Loaded,
) -> Result<(), LoadError> {
    let path = &admitted.path;
    let mut open = ObjectBuilder::default()
        .open_memory(&admitted.bytes)
        .map_err(|e| LoadError::Open {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    // A tracepoint this kernel lacks (an architecture's own system call, a subsystem not built
    // in) cannot be attached: its program is not loaded, as libbpf-tools' own user space does
    // (set_autoload false). That loads less than was vetted, never more; the rest of the
    // object loads. When tracefs cannot be read here, nothing is skipped and the attach
    // reports the missing tracefs.
    let has_tracepoints = admitted
        .vetting
        .programs
        .iter()
        .any(|p| p.prog_type == "tracepoint");
    if has_tracepoints && ensure_tracefs().is_ok() {
        for mut prog in open.progs_mut() {
            let name = prog.name().to_string_lossy().into_owned();
            let absent = admitted
                .vetting
                .programs
                .iter()
                .find(|p| p.name == name && p.prog_type == "tracepoint")
                .and_then(|p| p.attach.as_deref())
                .is_some_and(|tp| !tracepoint_exists(tp));
            if absent {
                prog.set_autoload(false);
                loaded.skipped.push(SkippedProgram {
                    object: path.clone(),
                    program: name,
                    reason: "its tracepoint does not exist on this kernel".into(),
                });
            }
        }
        if open.progs().all(|p| !p.autoload()) {
            return Err(LoadError::Load {
                path: path.clone(),
                reason: "none of its tracepoints exists on this kernel".into(),
            });
        }
    }
    let object = open.load().map_err(|e| LoadError::Load {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let stem = object_stem(path);
    let loaded_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for mut prog in object.progs_mut() {
        if !prog.autoload() {
            continue; // skipped above: not loaded
        }
        let name = prog.name().to_string_lossy().into_owned();
        let section = prog.section().to_string_lossy().into_owned();
        let vetted = admitted
            .vetting
            .programs
            .iter()
            .find(|p| p.name == name && p.section == section)
            .ok_or_else(|| LoadError::Disagree {
                path: path.clone(),
                detail: format!("program {name} in {section} was not vetted"),
            })?;
        let kernel_type = vetted_type_name(prog.prog_type());
        if kernel_type != Some(vetted.prog_type.as_str()) {
            return Err(LoadError::Disagree {
                path: path.clone(),
                detail: format!(
                    "program {name}: vetted as {}, libbpf loaded it as {:?}",
                    vetted.prog_type,
                    prog.prog_type()
                ),
            });
        }
        let (id, tag) =
            identify(prog.as_fd().as_raw_fd()).map_err(|reason| LoadError::Identify {
                program: name.clone(),
                reason,
            })?;
        // perf_event programs have no target in their section: their user attaches them to
        // its perf events (through the pin). Every other admitted type attaches as its
        // section says, which is the attach point the policy admitted.
        if vetted.prog_type == "tracepoint" {
            ensure_tracefs()?;
        }
        let mut link = if vetted.prog_type == "perf_event" {
            None
        } else {
            Some(prog.attach().map_err(|e| LoadError::Attach {
                path: path.clone(),
                program: name.clone(),
                reason: e.to_string(),
            })?)
        };
        let pin = match pin_root {
            Some(root) => {
                let dir = root.join(&stem);
                std::fs::create_dir_all(&dir).map_err(|e| LoadError::Pin {
                    pin: dir.clone(),
                    program: name.clone(),
                    reason: e.to_string(),
                })?;
                let at = dir.join(&name);
                let pinned = match link.as_mut() {
                    Some(l) => l.pin(&at),
                    None => prog.pin(&at),
                };
                pinned.map_err(|e| LoadError::Pin {
                    pin: at.clone(),
                    program: name.clone(),
                    reason: e.to_string(),
                })?;
                loaded.pins.push(at.clone());
                Some(at)
            }
            None => None,
        };
        let record = LoadedBpfProgram {
            id,
            tag,
            name: name.clone(),
            prog_type: vetted.prog_type.clone(),
            attach: link.as_ref().and(vetted.attach.clone()),
            object: path.display().to_string(),
            object_sha256: admitted.vetting.object_sha256.clone(),
            signer: admitted.signer.clone(),
            pin: pin.map(|p| p.display().to_string()),
            loaded_at,
        };
        let file = registry.join(format!("{id}.json"));
        write_record(&file, &record).map_err(|reason| LoadError::Record {
            path: file.clone(),
            reason,
        })?;
        loaded.records.push(file);
        loaded.programs.push(record);
        if let Some(l) = link {
            loaded.links.push(l);
        }
    }
    loaded.objects.push(object);
    Ok(())
}

/// Where libbpf looks up a tracepoint's id.
const TRACEFS_EVENTS: [&str; 2] = [
    "/sys/kernel/tracing/events",
    "/sys/kernel/debug/tracing/events",
];

/// libbpf attaches a tracepoint program through perf_event_open with the tracepoint's id, which
/// it reads from tracefs. A host that does not mount tracefs (this one; systemd mounts it at
/// boot elsewhere) gets one mounted in a mount namespace of the gatekeeper's own, so the host's
/// mounts stay as they are. The ids are the kernel's, whichever mount shows them.
fn ensure_tracefs() -> Result<(), LoadError> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    if TRACEFS_EVENTS.iter().any(|p| Path::new(p).is_dir()) {
        return Ok(());
    }
    let fail = |step: &str, e: nix::Error| LoadError::Tracefs {
        reason: format!("{step}: {e}"),
    };
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| fail("unshare(CLONE_NEWNS)", e))?;
    // Nothing mounted from here on propagates back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| fail("make / private", e))?;
    mount(
        Some("tracefs"),
        "/sys/kernel/tracing",
        Some("tracefs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| fail("mount tracefs on /sys/kernel/tracing", e))
}

/// Whether tracefs lists the tracepoint `category:event`.
fn tracepoint_exists(attach: &str) -> bool {
    let Some((category, event)) = attach.split_once(':') else {
        return false;
    };
    TRACEFS_EVENTS
        .iter()
        .any(|root| Path::new(root).join(category).join(event).is_dir())
}

/// `tool.bpf.o` -> `tool`: the pin directory of an object.
fn object_stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "object".into());
    name.strip_suffix(".bpf.o")
        .or_else(|| name.strip_suffix(".o"))
        .unwrap_or(&name)
        .to_string()
}

/// The kernel's id and tag of the program behind `fd`, from `/proc/self/fdinfo` (what the
/// kernel prints for a program descriptor; BPF_OBJ_GET_INFO_BY_FD says the same).
fn identify(fd: i32) -> Result<(u32, String), String> {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
        .map_err(|e| format!("fdinfo: {e}"))?;
    parse_fdinfo(&text)
}

fn parse_fdinfo(text: &str) -> Result<(u32, String), String> {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
    };
    let id = field("prog_id:")
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or("no prog_id in fdinfo")?;
    let tag = field("prog_tag:").ok_or("no prog_tag in fdinfo")?;
    if tag.len() != 16 || !tag.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("prog_tag {tag:?} is not 16 hex digits"));
    }
    Ok((id, tag.to_ascii_lowercase()))
}

/// Writes a record whole or not at all (a reader never sees half of one): a temporary file in
/// the registry directory, then a rename. The directory is watertight's own, so replacing is
/// right here, unlike a user's output path.
fn write_record(file: &Path, record: &LoadedBpfProgram) -> Result<(), String> {
    let dir = file.parent().ok_or("no directory")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        file.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let json = serde_json::to_string_pretty(record).map_err(|e| e.to_string())?;
    let mut f = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
    f.write_all(json.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .and_then(|()| f.sync_all())
        .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, file).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        e.to_string()
    })
}

/// The most records [`unload_pinned`] reads (a registry holds one per loaded program).
const MAX_RECORDS: usize = 4096;

/// Undoes `bpf load --pin ROOT`: removes every pin under `pin_root` that a record in `registry`
/// names (the programs detach and unload when their last reference goes) and those records.
/// Pins that no record names are left alone: they are not the gatekeeper's.
pub fn unload_pinned(pin_root: &Path, registry: &Path) -> Result<Vec<LoadedBpfProgram>, LoadError> {
    let record_error = |path: &Path, reason: String| LoadError::Record {
        path: path.to_path_buf(),
        reason,
    };
    let entries = match std::fs::read_dir(registry) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(record_error(registry, e.to_string())),
    };
    let mut removed = Vec::new();
    for entry in entries.take(MAX_RECORDS) {
        let path = entry
            .map_err(|e| record_error(registry, e.to_string()))?
            .path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let Ok(bytes) = read_bounded(&path, MAX_SIGNATURE_BYTES) else {
            continue;
        };
        let Ok(record) = serde_json::from_slice::<LoadedBpfProgram>(&bytes) else {
            continue;
        };
        let Some(pin) = record.pin.as_deref().map(Path::new) else {
            continue;
        };
        if !pin.starts_with(pin_root) {
            continue;
        }
        match std::fs::remove_file(pin) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(LoadError::Pin {
                    pin: pin.to_path_buf(),
                    program: record.name,
                    reason: format!("cannot remove the pin: {e}"),
                })
            }
        }
        if let Some(dir) = pin.parent() {
            // The object's directory, once empty; a non-empty one stays.
            let _ = std::fs::remove_dir(dir);
        }
        std::fs::remove_file(&path).map_err(|e| record_error(&path, e.to_string()))?;
        removed.push(record);
    }
    removed.sort_by_key(|r| r.id);
    Ok(removed)
}

/// What a run loaded. Dropping it detaches and unloads everything that is not pinned and
/// removes the records of what goes away; [`Loaded::keep_pinned`] leaves pinned programs (and
/// their records) in place instead.
pub struct Loaded {
    skipped: Vec<SkippedProgram>,
    objects: Vec<Object>,
    links: Vec<Link>,
    programs: Vec<LoadedBpfProgram>,
    records: Vec<PathBuf>,
    pins: Vec<PathBuf>,
}

/// A vetted program that was not loaded, and why.
#[derive(Debug, Clone)]
pub struct SkippedProgram {
    /// Its object.
    pub object: PathBuf,
    /// The program.
    pub program: String,
    /// Why it was not loaded.
    pub reason: String,
}

impl Loaded {
    /// The vetted programs that were not loaded (their tracepoint is absent), and why.
    pub fn skipped(&self) -> &[SkippedProgram] {
        &self.skipped
    }

    /// Every program loaded, as recorded.
    pub fn programs(&self) -> &[LoadedBpfProgram] {
        &self.programs
    }

    /// Ends this process's hold: the pins keep the programs attached, their records stay for
    /// `audit host`, and the descriptors are closed. The records of programs that were not
    /// pinned (none, when the run had a pin directory) go with them.
    pub fn keep_pinned(mut self) {
        let pinned: Vec<u32> = self
            .programs
            .iter()
            .filter(|p| p.pin.is_some())
            .map(|p| p.id)
            .collect();
        self.records
            .retain(|r| !pinned.iter().any(|id| r.ends_with(format!("{id}.json"))));
        self.pins.clear();
        // Drop closes the links and objects; pinned ones stay in the kernel.
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        for pin in self.pins.drain(..) {
            let _ = std::fs::remove_file(&pin);
        }
        for record in self.records.drain(..) {
            let _ = std::fs::remove_file(&record);
        }
        // Links before objects: a link holds its program.
        self.links.clear();
        self.objects.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_of_a_program_gives_id_and_tag() {
        let text = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t2055\nprog_type:\t5\nprog_jited:\t1\nprog_tag:\tA04F5EEF06A7F555\nmemlock:\t4096\nprog_id:\t321\nrun_time_ns:\t0\n";
        assert_eq!(
            parse_fdinfo(text).unwrap(),
            (321, "a04f5eef06a7f555".to_string())
        );
    }

    #[test]
    fn fdinfo_without_a_program_is_refused() {
        assert!(parse_fdinfo("pos:\t0\nflags:\t02\n").is_err());
        assert!(parse_fdinfo("prog_id:\t1\nprog_tag:\txyz\n").is_err());
    }

    #[test]
    fn pin_directory_is_the_object_stem() {
        assert_eq!(object_stem(Path::new("/x/execsnoop.bpf.o")), "execsnoop");
        assert_eq!(object_stem(Path::new("tool.o")), "tool");
        assert_eq!(object_stem(Path::new("tool")), "tool");
    }

    #[test]
    fn signature_beside_the_object() {
        let s = ObjectSource::beside(PathBuf::from("/etc/watertight/bpf.d/opensnoop.bpf.o"));
        assert_eq!(
            s.signature,
            PathBuf::from("/etc/watertight/bpf.d/opensnoop.bpf.o.sig")
        );
    }
}
