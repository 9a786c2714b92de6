//! One VM run on the host: the initramfs (cached), a job directory, QEMU started in its own
//! cgroup (memory sized for the guest's RAM plus QEMU's own) and a private mount namespace,
//! a wall-clock deadline (the program's limit plus a boot allowance), and the guest's one
//! verdict line mapped to the namespace tier's verdict JSON with the VM's fields added.

use std::ffi::{CString, OsString};
use std::io::{BufRead, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use watertight_cgroups::{Cgroup, Limits, Needs};
use watertight_sandbox::{Profile, Status};
use watertight_sys::process::Forked;

use crate::kernel::{self, Kernel};
use crate::qemu::{self, Accelerator};
use crate::wire::{self, GuestJob, GuestReport};
use crate::Error;

const MIB: u64 = 1 << 20;
/// Guest RAM beyond the program's memory limit and twice the initramfs (the kernel holds the
/// archive and its unpacked files at once while it boots; short of that it unpacks part of
/// it, silently): the generic Debian kernel's own (~60 MiB reserved, ~40 MiB of slab and page
/// cache after boot), the in-guest watertight supervisor, 9p's cache, page tables. The
/// program's own limit is enforced by the guest's cgroup, inside this.
pub const GUEST_OVERHEAD_MIB: u64 = 192;
/// Guest RAM when the profile has no memory limit.
pub const UNLIMITED_GUEST_MIB: u64 = 1024;
/// QEMU's memory beyond the guest's RAM in its cgroup: its own heap, the 64 MiB TCG
/// translation cache, 9p buffers.
pub const QEMU_OVERHEAD_MIB: u64 = 256;
/// The first of the uids (and gids) QEMU runs as: a run's QEMU gets `QEMU_ID_BASE` plus the
/// host watertight's pid, an identity no account and no other process has. Its 9p server
/// reads the shared root with it, so the guest reaches only what any user of the host may
/// read; and a QEMU the guest took over can signal or trace no other process (as nobody it
/// could reach every daemon and every other run's QEMU that runs as nobody). The range is
/// below the namespace tier's host ids (0x70000000) and holds any pid (pid_max is at most
/// 2^22).
pub const QEMU_ID_BASE: u32 = 0x6F00_0000;

/// The uid and gid this process's QEMU runs as, refused when an account or group in
/// /etc/passwd or /etc/group has it.
pub fn qemu_id() -> Result<u32, Error> {
    let id = QEMU_ID_BASE + std::process::id();
    let taken = ["/etc/passwd", "/etc/group"]
        .iter()
        .find_map(|f| name_with_id(&std::fs::read_to_string(f).unwrap_or_default(), id));
    match taken {
        Some(name) => Err(Error::IdTaken { id, name }),
        None => Ok(id),
    }
}

/// The (name, id) of each line of a passwd or group file (`name:x:ID:...`). The files are read,
/// not asked through NSS: this binary is static, and glibc's NSS in a static binary loads
/// shared modules of whatever glibc the host has (or crashes).
fn account_entries(text: &str) -> impl Iterator<Item = (&str, u32)> {
    text.lines().filter_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        Some((name, f.nth(1)?.parse().ok()?))
    })
}

/// The name on the first line of a passwd or group file whose id is `id`.
fn name_with_id(text: &str, id: u32) -> Option<String> {
    account_entries(text)
        .find(|(_, i)| *i == id)
        .map(|(n, _)| n.to_owned())
}

/// The id of group `name` in a group file.
fn id_of_group(text: &str, name: &str) -> Option<u32> {
    account_entries(text)
        .find(|(n, _)| *n == name)
        .map(|(_, i)| i)
}
/// Tasks in QEMU's cgroup (main loop, vCPU, RCU, and the 9p worker pool of up to 64).
pub const QEMU_PIDS: u64 = 256;
/// Seconds added to the program's wall-time limit for the host's deadline: the guest boots
/// in ~3-5 s guest time under TCG on this project's 2-core CI machine, 10-17 s wall under
/// load from parallel builds, and two runs next to a workspace clippy passed 30 s (measured);
/// KVM guests boot in well under a second.
pub fn boot_allowance_s(accel: Accelerator) -> f64 {
    match accel {
        Accelerator::Kvm => 10.0,
        Accelerator::Tcg => 60.0,
    }
}
/// The guest kernel's console log may grow to this before the run is stopped (a quiet boot
/// writes a few hundred bytes).
const CONSOLE_LIMIT: u64 = MIB;
/// Program output held on the host when the profile has no output limit.
const UNLIMITED_OUTPUT: u64 = 1 << 30;
/// The most of `--stdin` copied into the job directory (on the host's temporary directory)
/// for the guest to read.
pub const STDIN_LIMIT: u64 = 1 << 30;

/// What to run.
pub struct VmRequest {
    /// The effective profile.
    pub profile: Profile,
    /// The program and its arguments.
    pub argv: Vec<OsString>,
    /// `--env` assignments.
    pub env: Vec<(OsString, OsString)>,
    /// `--workdir`.
    pub workdir: Option<PathBuf>,
    /// `--stdin FILE`, open: its contents (from its offset) become the program's stdin; else
    /// the program reads /dev/null.
    pub stdin: Option<std::fs::File>,
    /// Where the program's stdout and stderr go (`--stdout`/`--stderr` files, written through),
    /// in place of this process's own.
    pub output: [Option<std::fs::File>; 2],
    /// `--events FILE`, open for appending: the sandbox's event log (JSON Lines) is appended
    /// to it when the guest has ended.
    pub events: Option<std::fs::File>,
    /// `--secret`s, read: each is a file of the job share (readable by root and by this run's
    /// QEMU uid only), shown to the program at /run/secrets/NAME by the sandbox in the guest.
    pub secrets: Vec<watertight_sandbox::layers::secrets::Secret>,
}

/// What happened.
#[derive(Debug)]
pub struct VmOutcome {
    /// The verdict JSON: the guest's namespace-tier verdict plus `isolation`, `accelerator`,
    /// `boot_s`, `vm_wall_time_s`, `guest_kernel`.
    pub verdict: serde_json::Value,
    /// Its status.
    pub status: Status,
    /// The program's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
}

/// `name` in a directory of PATH.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs `req` in a guest and returns its verdict; the program's stdout and stderr are written
/// to this process's own when the guest has ended.
pub fn run(req: &VmRequest) -> Result<VmOutcome, Error> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::NotRoot);
    }
    let qemu = find_in_path("qemu-system-x86_64").ok_or(Error::NoQemu)?;
    let cache = kernel::cache_dir();
    let kernel = Kernel::find(&cache)?;
    let initramfs = crate::initramfs::ensure(&cache, &kernel)?;
    let (accel, why) = Accelerator::detect();
    let qemu_uid = qemu_id()?;

    let work = tempfile::Builder::new()
        .prefix("watertight-vm.")
        .tempdir()
        .map_err(|source| Error::Write {
            path: std::env::temp_dir(),
            source,
        })?;
    let job_dir = work.path().join("job");
    let write = |path: &Path, data: &[u8]| {
        std::fs::write(path, data).map_err(|source| Error::Write {
            path: path.to_owned(),
            source,
        })
    };
    std::fs::create_dir(&job_dir).map_err(|source| Error::Write {
        path: job_dir.clone(),
        source,
    })?;
    // Inside the guest the program runs behind the namespace tier (on the guest's own kernel).
    let mut guest_profile = req.profile.clone();
    guest_profile.isolation = watertight_sandbox::profile::Isolation::Namespaces;
    let job = GuestJob {
        profile: guest_profile,
        argv: req.argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
        env: req
            .env
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
        workdir: req
            .workdir
            .as_ref()
            .map(|w| w.as_os_str().as_bytes().to_vec()),
        stdin: req.stdin.is_some(),
        events: req.events.is_some(),
        secrets: req.secrets.iter().map(|s| s.name.clone()).collect(),
    };
    write(&job_dir.join(wire::JOB_FILE), &serde_json::to_vec(&job)?)?;
    let stdin_copy = job_dir.join(wire::STDIN_FILE);
    if let Some(input) = &req.stdin {
        copy_stdin(input, &stdin_copy, STDIN_LIMIT)?;
    }
    let secret_files: Vec<PathBuf> = (0..req.secrets.len())
        .map(|i| job_dir.join(wire::secret_file(i)))
        .collect();
    for (s, path) in req.secrets.iter().zip(&secret_files) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| f.write_all(&s.contents))
            .map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
    }
    let files = [
        "verdict", "stdout", "stderr", "events", "console", "qemu.log",
    ]
    .map(|n| work.path().join(n));
    for f in &files {
        write(f, b"")?;
    }
    // QEMU runs as qemu_uid: the run directory, the job and the port files must be its.
    for path in [
        work.path(),
        job_dir.as_path(),
        &job_dir.join(wire::JOB_FILE),
    ]
    .into_iter()
    .chain(req.stdin.is_some().then_some(stdin_copy.as_path()))
    .chain(secret_files.iter().map(PathBuf::as_path))
    .chain(files.iter().map(PathBuf::as_path))
    {
        std::os::unix::fs::chown(path, Some(qemu_uid), Some(qemu_uid)).map_err(|source| {
            Error::Write {
                path: path.to_owned(),
                source,
            }
        })?;
    }
    let [verdict_file, stdout_file, stderr_file, events_file, console_file, qemu_log] = &files;

    let initramfs_mib = std::fs::metadata(&initramfs)
        .map(|m| m.len().div_ceil(MIB))
        .unwrap_or(64);
    let guest_mib = match req.profile.limits.memory {
        Some(m) => m.bytes().div_ceil(MIB) + GUEST_OVERHEAD_MIB + 2 * initramfs_mib,
        None => UNLIMITED_GUEST_MIB + 2 * initramfs_mib,
    };
    let args = qemu::args(
        &qemu::GuestFiles {
            kernel: &kernel.vmlinuz,
            initramfs: &initramfs,
            root: Path::new("/"),
            job: &job_dir,
            verdict: verdict_file,
            stdout: stdout_file,
            stderr: stderr_file,
            events: events_file,
            console: console_file,
        },
        accel,
        guest_mib,
    );

    let layout = watertight_cgroups::detect()?;
    let cgroup = Cgroup::create_with(
        &layout,
        &format!("vm-{}", std::process::id()),
        &Limits {
            memory_bytes: Some((guest_mib + QEMU_OVERHEAD_MIB) * MIB),
            pids_max: Some(QEMU_PIDS),
            ..Limits::default()
        },
        Needs {
            freeze: false,
            cpu_usage: false,
            bpf: false,
        },
    )?;

    let wall_limit = req.profile.limits.wall_time.or(req
        .profile
        .limits
        .cpu_time
        .map(|t| 2.0 * t + 1.0));
    let deadline = wall_limit.map(|w| Duration::from_secs_f64(w + boot_allowance_s(accel)));
    let output_cap = req
        .profile
        .limits
        .output
        .map(|o| o.bytes() + 64 * 1024)
        .unwrap_or(UNLIMITED_OUTPUT);

    let events_cap = req
        .profile
        .events
        .limit
        .bytes()
        .max(watertight_sandbox::events::MIN_FILE_LIMIT)
        + 64 * 1024;

    let start = Instant::now();
    // /dev/kvm is root:kvm 0660 on Debian: QEMU keeps the kvm group to open it.
    let kvm_gid = (accel == Accelerator::Kvm)
        .then(|| {
            id_of_group(
                &std::fs::read_to_string("/etc/group").unwrap_or_default(),
                "kvm",
            )
        })
        .flatten()
        .map(nix::unistd::Gid::from_raw);
    let pid = spawn_qemu(&qemu, &args, &cgroup, qemu_log, kvm_gid, qemu_uid)?;
    let mut stopped: Option<(Status, String)> = None;
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                return Err(Error::Spawn(e.into()));
            }
        }
        if stopped.is_none() {
            let elapsed = start.elapsed();
            if deadline.is_some_and(|d| elapsed > d) {
                stopped = Some((
                    Status::TO,
                    format!(
                        "the VM ran past the wall-time limit plus the {} s boot allowance (host side)",
                        boot_allowance_s(accel)
                    ),
                ));
            } else if size(stdout_file) + size(stderr_file) > output_cap {
                stopped = Some((Status::OL, "output limit (host side)".into()));
            } else if size(events_file) > events_cap {
                // The guest's supervisor stops at the profile's limit itself: more is not its.
                stopped = Some((Status::XX, "the guest's event log passed its limit".into()));
            } else if size(console_file) > CONSOLE_LIMIT {
                stopped = Some((Status::XX, "the guest kernel's console passed 1 MiB".into()));
            }
            if stopped.is_some() {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let vm_wall = start.elapsed().as_secs_f64();
    // QEMU is gone; the cgroup is empty.
    let _ = cgroup.destroy();

    let [out, err] = &req.output;
    match out {
        Some(f) => relay(stdout_file, &mut &*f, output_cap),
        None => relay(stdout_file, &mut std::io::stdout(), output_cap),
    }
    match err {
        Some(f) => relay(stderr_file, &mut &*f, output_cap),
        None => relay(stderr_file, &mut std::io::stderr(), output_cap),
    }
    if let Some(f) = &req.events {
        relay(events_file, &mut &*f, events_cap);
    }
    if qemu::debug() {
        relay(qemu_log, &mut std::io::stderr(), CONSOLE_LIMIT);
        relay(console_file, &mut std::io::stderr(), CONSOLE_LIMIT);
    }

    let report: Option<GuestReport> = std::fs::File::open(verdict_file).ok().and_then(|f| {
        let mut line = String::new();
        std::io::BufReader::new(f.take(4 * MIB))
            .read_line(&mut line)
            .ok()?;
        serde_json::from_str(&line).ok()
    });
    let mut verdict = match (&stopped, &report) {
        (
            None,
            Some(GuestReport {
                verdict: Some(v), ..
            }),
        ) => v.clone(),
        _ => {
            let (status, message) = match (&stopped, &report) {
                (Some((s, m)), _) => (*s, m.clone()),
                (None, Some(r)) => (
                    Status::XX,
                    format!(
                        "the guest could not run the program: {}",
                        r.error.as_deref().unwrap_or("no verdict")
                    ),
                ),
                (None, None) => (
                    Status::XX,
                    format!(
                        "the VM ended without a verdict: {}",
                        last_line(qemu_log)
                            .or_else(|| last_line(console_file))
                            .unwrap_or_else(|| "no message".into())
                    ),
                ),
            };
            serde_json::json!({
                "status": status,
                "exit_code": null,
                "signal": null,
                "wall_time_s": vm_wall,
                "message": message,
                "limits": watertight_sandbox::verdict::AppliedLimits::of(&req.profile.limits),
            })
        }
    };
    if let Some(obj) = verdict.as_object_mut() {
        obj.insert("isolation".into(), "vm".into());
        obj.insert("accelerator".into(), accel.name().into());
        obj.insert("accelerator_reason".into(), why.into());
        obj.insert("boot_s".into(), report.as_ref().map(|r| r.boot_s).into());
        obj.insert("vm_wall_time_s".into(), vm_wall.into());
        obj.insert("guest_kernel".into(), kernel.release.clone().into());
    }
    let status = serde_json::from_value(verdict["status"].clone()).unwrap_or(Status::XX);
    let int = |k: &str| verdict[k].as_i64().map(|v| v as i32);
    Ok(VmOutcome {
        status,
        exit_code: int("exit_code"),
        signal: int("signal"),
        verdict,
    })
}

/// Forks QEMU into `cgroup` and a private mount namespace (its mounts, none, stay its own;
/// nothing it might mount propagates back), as `id` (uid and gid) with no supplementary group but
/// kvm's (under KVM), no_new_privs, stdin /dev/null and its own messages into `log`.
fn spawn_qemu(
    qemu: &Path,
    args: &[OsString],
    cgroup: &Cgroup,
    log: &Path,
    kvm_gid: Option<nix::unistd::Gid>,
    id: u32,
) -> Result<i32, Error> {
    let cstr = |s: &std::ffi::OsStr| CString::new(s.as_bytes().to_vec());
    let prog = cstr(qemu.as_os_str()).map_err(|e| Error::Spawn(e.into()))?;
    let mut argv = vec![prog.clone()];
    for a in args {
        argv.push(CString::new(a.clone().into_vec()).map_err(|e| Error::Spawn(e.into()))?);
    }
    let devnull = std::fs::File::open("/dev/null").map_err(Error::Spawn)?;
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(log)
        .map_err(Error::Spawn)?;
    match watertight_sys::process::fork().map_err(Error::Spawn)? {
        Forked::Parent { pid, .. } => Ok(pid),
        Forked::Child => {
            let setup = || -> nix::Result<()> {
                cgroup
                    .add_process(nix::unistd::getpid().as_raw())
                    .map_err(|_| nix::errno::Errno::EIO)?;
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
                nix::mount::mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
                    None::<&str>,
                )?;
                let uid = nix::unistd::Uid::from_raw(id);
                let gid = nix::unistd::Gid::from_raw(id);
                let groups: Vec<nix::unistd::Gid> = kvm_gid.into_iter().collect();
                nix::unistd::setgroups(&groups)?;
                nix::unistd::setresgid(gid, gid, gid)?;
                nix::unistd::setresuid(uid, uid, uid)?;
                // A host watertight killed mid-run takes its guest with it (set after the uid
                // change, which clears it).
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
                nix::sys::prctl::set_no_new_privs()?;
                nix::unistd::dup2_stdin(&devnull)?;
                nix::unistd::dup2_stdout(&log)?;
                nix::unistd::dup2_stderr(&log)?;
                nix::unistd::execv(&prog, &argv)?;
                Ok(())
            };
            let code = match setup() {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("watertight: --isolation vm: starting QEMU: {e}");
                    125
                }
            };
            watertight_sys::process::exit_now(code)
        }
    }
}

/// Copies `input` (from its offset) to `to`, a new file, refusing more than `limit` bytes.
fn copy_stdin(input: &std::fs::File, to: &Path, limit: u64) -> Result<(), Error> {
    let write_err = |source| Error::Write {
        path: to.to_owned(),
        source,
    };
    // A regular file too large is refused before a byte is copied; a pipe or a device can
    // only be measured by reading it.
    if let Ok(m) = input.metadata() {
        use std::io::Seek;
        let offset = (&*input).stream_position().unwrap_or(0);
        if m.is_file() && m.len().saturating_sub(offset) > limit {
            return Err(Error::StdinTooLarge { limit });
        }
    }
    let mut dest = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(write_err)?;
    let mut reader = input.take(limit + 1);
    let copied = std::io::copy(&mut reader, &mut dest).map_err(|source| Error::Read {
        path: "--stdin".into(),
        source,
    })?;
    if copied > limit {
        return Err(Error::StdinTooLarge { limit });
    }
    Ok(())
}

/// Copies at most `cap` bytes of `file` to `out`.
fn relay(file: &Path, out: &mut impl std::io::Write, cap: u64) {
    if let Ok(f) = std::fs::File::open(file) {
        let _ = std::io::copy(&mut f.take(cap), out);
        let _ = out.flush();
    }
}

/// The last non-empty line of a small log file.
fn last_line(path: &Path) -> Option<String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(64 * 1024)
        .read_to_string(&mut text)
        .ok()?;
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    #[test]
    fn qemu_gets_an_id_of_its_own_per_run() {
        let id = qemu_id().unwrap();
        assert_eq!(id, QEMU_ID_BASE + std::process::id());
        // Below the namespace tier's host ids, above any account's, never nobody's.
        assert!((0x6F00_0000..0x7000_0000).contains(&id));
    }

    #[test]
    fn ids_and_names_are_read_from_the_account_files() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/:/bin/false\n";
        assert_eq!(name_with_id(passwd, 65534).as_deref(), Some("nobody"));
        assert_eq!(name_with_id(passwd, 0x6F00_0001), None);
        let group = "root:x:0:\nkvm:x:104:alice\nbroken\n";
        assert_eq!(id_of_group(group, "kvm"), Some(104));
        assert_eq!(name_with_id(group, 104).as_deref(), Some("kvm"));
        assert_eq!(id_of_group(group, "broken"), None);
        assert_eq!(id_of_group(group, "nope"), None);
    }

    #[test]
    fn stdin_is_copied_from_its_offset_and_refused_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut input = tempfile::tempfile().unwrap();
        input.write_all(b"skip:12345").unwrap();
        input.seek(SeekFrom::Start(5)).unwrap();
        let to = dir.path().join("a");
        copy_stdin(&input, &to, 5).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"12345");

        input.seek(SeekFrom::Start(4)).unwrap();
        let err = copy_stdin(&input, &dir.path().join("b"), 5).unwrap_err();
        assert!(matches!(err, Error::StdinTooLarge { limit: 5 }), "{err}");
        // A large input is not copied whole before it is refused.
        let mut large = tempfile::tempfile().unwrap();
        large.write_all(&[b'x'; 100_000]).unwrap();
        large.seek(SeekFrom::Start(0)).unwrap();
        let c = dir.path().join("c");
        assert!(copy_stdin(&large, &c, 10).is_err());
        assert!(
            !c.exists(),
            "a regular file too large is refused before copying"
        );
        // A pipe is measured by reading it, never more than the limit and one byte.
        let (r, mut w) = std::io::pipe().unwrap();
        std::thread::spawn(move || {
            let _ = w.write_all(&[b'y'; 100_000]);
        });
        let r = std::fs::File::from(std::os::fd::OwnedFd::from(r));
        let p = dir.path().join("p");
        assert!(copy_stdin(&r, &p, 10).is_err());
        assert!(std::fs::metadata(&p).unwrap().len() <= 11);
        // An existing file is never written over.
        input.seek(SeekFrom::Start(0)).unwrap();
        assert!(copy_stdin(&input, &to, 100).is_err());
        assert_eq!(std::fs::read(&to).unwrap(), b"12345");
    }
}
