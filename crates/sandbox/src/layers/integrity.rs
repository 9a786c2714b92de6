//! Exec-time integrity layer (`--manifest`, `--pubkey`): the root directory is verified against
//! its signed manifest before fork, then what was verified is the only thing the sandbox can
//! execute, enforced by the kernel in layers:
//! - the verified files are served read-only, as the very inodes that were verified (the mount
//!   layer binds the root directory's entries; no overlay);
//! - every writable mount is noexec (mount layer), and memfd execution is refused by
//!   `vm.memfd_noexec = 2` in the sandbox's own pid namespace;
//! - Landlock allows execute only beneath the root directory's verified top-level entries, and
//!   opening files for writing only beneath the writable mounts (so never /proc/<pid>/mem, whose
//!   writes patch code regardless of page protections);
//! - PR_SET_MDWE refuses turning writable memory executable;
//! - the seccomp filter refuses writable aliases of executable memory (shared executable
//!   mappings, mremap with old_size 0, shmat(SHM_EXEC), READ_IMPLIES_EXEC), ptrace and
//!   userfaultfd, as violations (`CompileOptions::exec_integrity`);
//! - the BPF exec gate (watertight-integrity) kills any task of the sandbox's cgroup that execs or
//!   maps as code a file whose (dev, ino, generation) was not verified, or whose inode changed
//!   (ctime) since it was verified (a rewrite in place on the host), with an event.

use std::path::{Path, PathBuf};

use watertight_integrity::{
    EnforcementReport, ExecGate, Layer, SignedManifest, VerifiedTree, VerifyingKey,
};

use nix::mount::MsFlags;
use watertight_sys::mount::ATTR_RDONLY;

use crate::error::{Error, IoContext};
use crate::layers::mount::{MountOp, MountPlan, STAGE};
use crate::syscall::{LandlockRules, Syscall};

/// The layers a verified run demands; fewer only with `allow_weaker`.
pub const REQUIRED: [Layer; 3] = [Layer::Landlock, Layer::BpfExecGate, Layer::MemfdNoexec];

/// `--manifest`, `--pubkey`, `--allow-weaker-integrity`: what exec-time integrity checks the
/// root directory against.
#[derive(Debug, Clone)]
pub struct IntegrityRequest {
    /// The root directory's signed manifest.
    pub manifest: PathBuf,
    /// The public key the manifest must be signed with.
    pub pubkey: PathBuf,
    /// Run even when this kernel lacks some of the [`REQUIRED`] layers; otherwise [`verify`]
    /// refuses, naming them.
    pub allow_weaker: bool,
    /// What this kernel offers (`watertight_integrity::probe_enforcement()`).
    pub report: EnforcementReport,
}

/// The supervisor's side, prepared before fork.
pub struct Verified {
    /// The root directory as verified against the manifest: the files the exec gate allows.
    pub tree: VerifiedTree,
    /// Paths inside the sandbox beneath which Landlock allows execute.
    pub exec_roots: Vec<PathBuf>,
    /// Paths inside the sandbox beneath which Landlock allows opening files for writing (the
    /// writable mounts; see [`write_roots`]).
    pub write_roots: Vec<PathBuf>,
    /// Landlock restricts execute and write-opens (this kernel has it).
    pub landlock: bool,
    /// The supervisor sets `vm.memfd_noexec = 2` in the sandbox's pid namespace (this kernel has
    /// it).
    pub memfd_noexec: bool,
    /// The BPF exec gate is attached to the sandbox's cgroup (this kernel has it).
    pub gate: bool,
}

/// Verifies `rootfs` against the signed manifest and decides which layers apply.
pub fn verify(rootfs: &Path, req: &IntegrityRequest) -> Result<Verified, Error> {
    let missing = req.report.missing(&REQUIRED);
    if !missing.is_empty() && !req.allow_weaker {
        let why: Vec<String> = missing
            .iter()
            .map(|l| format!("{} ({})", l.name(), req.report.get(*l).reason))
            .collect();
        return Err(Error::Config(format!(
            "this kernel cannot enforce exec-time integrity fully: missing {}; pass --allow-weaker-integrity to run anyway",
            why.join(", ")
        )));
    }
    let signed = SignedManifest::load(&req.manifest)
        .map_err(|e| Error::Config(format!("manifest {}: {e}", req.manifest.display())))?;
    let key = VerifyingKey::load(&req.pubkey)
        .map_err(|e| Error::Config(format!("public key {}: {e}", req.pubkey.display())))?;
    // Hash on a pool of our own and wait for its threads to end: the supervisor must be
    // single-threaded again when it clones the sandbox.
    let pool = rayon::ThreadPoolBuilder::new()
        .build()
        .map_err(|e| Error::Config(format!("start hashing threads: {e}")))?;
    let tree = pool.install(|| watertight_integrity::verify_tree(rootfs, &signed, &key));
    drop(pool);
    wait_single_threaded();
    let tree = tree.map_err(|e| {
        Error::Config(format!(
            "{} does not match its manifest: {e}",
            rootfs.display()
        ))
    })?;
    let mut exec_roots = Vec::new();
    for entry in std::fs::read_dir(rootfs)
        .ctx(|| format!("read {}", rootfs.display()))?
        .flatten()
    {
        let name = entry.file_name();
        let ft = entry
            .file_type()
            .ctx(|| format!("stat {}", entry.path().display()))?;
        if (ft.is_dir() || ft.is_file()) && name != "proc" && name != "dev" && name != "tmp" {
            exec_roots.push(Path::new("/").join(name));
        }
    }
    exec_roots.sort();
    Ok(Verified {
        tree,
        exec_roots,
        write_roots: Vec::new(),
        landlock: req.report.available(Layer::Landlock),
        memfd_noexec: req.report.available(Layer::MemfdNoexec),
        gate: req.report.available(Layer::BpfExecGate),
    })
}

/// Waits (up to a second) for worker threads that were told to exit.
fn wait_single_threaded() {
    for _ in 0..1000 {
        if watertight_sys::process::thread_count().unwrap_or(1) <= 1 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// In the supervisor, after clone and before pid 1 is released: sets `vm.memfd_noexec = 2` in
/// the sandbox's pid namespace. The sysctl is per pid namespace (the writer's own), and its
/// file lets only the global root write, which pid 1 (the slot's host uid) is not: a helper the
/// supervisor starts in that pid namespace writes it. Nothing of the sandbox runs yet (pid 1
/// waits for its go), so nothing there can reach the helper.
pub fn refuse_memfd_exec(sandbox_pid: i32) -> Result<(), Error> {
    use nix::sched::{setns, CloneFlags};
    let what = || "write vm.memfd_noexec = 2 in the sandbox's pid namespace".to_string();
    let ours = std::fs::File::open("/proc/self/ns/pid").ctx(what)?;
    let theirs = std::fs::File::open(format!("/proc/{sandbox_pid}/ns/pid")).ctx(what)?;
    // Our children's pid namespace only (our own never changes); put back before returning.
    setns(&theirs, CloneFlags::CLONE_NEWPID).ctx(what)?;
    let mut written: std::io::Result<()> = Ok(());
    let spawned = watertight_sys::process::spawn_shared_vm(&mut || {
        written = std::fs::write("/proc/sys/vm/memfd_noexec", "2");
        watertight_sys::process::exit_now(0)
    });
    let back = setns(&ours, CloneFlags::CLONE_NEWPID);
    let helper = spawned.ctx(what)?;
    let _ = watertight_sys::process::wait4(helper, false);
    back.ctx(|| "return to our own pid namespace".into())?;
    written.ctx(what)
}

/// Where the sandbox may open files for writing, as paths inside it: the targets of the planned
/// writable mounts (tmpfs, devpts, binds without ATTR_RDONLY: /tmp, /dev and what is below it,
/// writable caller binds). Never the root itself nor anything beneath /proc. Call it on the plan
/// before its binds become detached trees (which no longer say whether they are writable).
pub fn write_roots(plan: &MountPlan) -> Vec<PathBuf> {
    let stage = Path::new(STAGE);
    let mut roots: Vec<PathBuf> = plan
        .ops
        .iter()
        .filter_map(|op| match op {
            MountOp::Tmpfs { target, flags, .. } if !flags.contains(MsFlags::MS_RDONLY) => {
                Some(target)
            }
            MountOp::Bind { target, attrs, .. } if attrs & ATTR_RDONLY == 0 => Some(target),
            MountOp::Devpts { target, .. } => Some(target),
            _ => None,
        })
        .filter_map(|target| target.strip_prefix(stage).ok())
        .filter(|inside| !inside.as_os_str().is_empty() && !inside.starts_with("proc"))
        .map(|inside| Path::new("/").join(inside))
        .collect();
    roots.sort();
    roots.dedup();
    roots
}

/// In the sandbox's pid 1 (so in the program, which inherits it), after no_new_privs and before
/// seccomp: execute only beneath the verified entries, open files for writing only beneath the
/// writable mounts, and no writable memory turned executable.
pub fn restrict_exec(
    exec_roots: &[PathBuf],
    write_roots: &[PathBuf],
    landlock: bool,
    sys: &impl Syscall,
) -> Result<(), Error> {
    if landlock {
        sys.landlock_restrict_self(&LandlockRules {
            exec_roots,
            write_roots,
        })
        .map_err(|e| Error::Setup {
            stage: crate::error::Stage::Integrity,
            message: format!("landlock: {e}"),
        })?;
    }
    sys.refuse_exec_gain().ctx(|| "prctl(PR_SET_MDWE)".into())
}

/// Syscalls the integrity-only seccomp rules refuse (and `ptrace`/`userfaultfd`, which the
/// default profile refuses as well): each is an attempt to make code that is in no verified
/// file runnable.
pub const CODE_INJECTION_SYSCALLS: &[&str] = &[
    "mmap",
    "mremap",
    "shmat",
    "personality",
    "ptrace",
    "userfaultfd",
];

/// The first of the refused syscalls (`EventLog::denied_syscalls`) that was such an attempt: in
/// an integrity-mode run it makes the verdict SV whatever `on_violation` says, as the exec
/// gate's kills do.
pub fn code_injection_attempt<'a>(mut denied: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    denied.find(|name| CODE_INJECTION_SYSCALLS.contains(name))
}

/// In the supervisor, before the sandbox is released.
pub fn attach_gate(
    cgroup: &watertight_cgroups::Cgroup,
    v: &Verified,
) -> Result<Option<ExecGate>, Error> {
    if !v.gate {
        return Ok(None);
    }
    let id = cgroup.unified_id().ok_or_else(|| {
        Error::Config(
            "the BPF exec gate needs the sandbox in a cgroup v2 hierarchy, and none is mounted"
                .into(),
        )
    })?;
    ExecGate::attach(id, &v.tree)
        .map(Some)
        .map_err(|e| Error::Config(format!("BPF exec gate: {e}")))
}
