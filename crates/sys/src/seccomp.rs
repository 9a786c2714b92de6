//! seccomp: install a compiled BPF filter with one raw `seccomp(2)` call, the user-notification
//! ioctls a supervisor needs, and a forked self-test ([`probe_filter`]) that installs a filter in
//! a throw-away child and reports what the kernel answers to a fixed set of dangerous syscalls.
//!
//! Everything a freshly forked child calls ([`install_filter`] and the probes) is allocation-free
//! and lock-free, so it is safe between `fork` and `execve` in a multi-threaded parent.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// `SECCOMP_FILTER_FLAG_TSYNC`: synchronise all threads onto the new filter.
pub const FILTER_FLAG_TSYNC: u32 = libc::SECCOMP_FILTER_FLAG_TSYNC as u32;
/// `SECCOMP_FILTER_FLAG_LOG`: log every non-allow action (audit type 1326).
pub const FILTER_FLAG_LOG: u32 = libc::SECCOMP_FILTER_FLAG_LOG as u32;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`: do not force speculative store bypass mitigation.
pub const FILTER_FLAG_SPEC_ALLOW: u32 = libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`: return a user-notification fd.
pub const FILTER_FLAG_NEW_LISTENER: u32 = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;
/// `SECCOMP_FILTER_FLAG_TSYNC_ESRCH`: report TSYNC failure as ESRCH (needed with NEW_LISTENER).
pub const FILTER_FLAG_TSYNC_ESRCH: u32 = libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH as u32;
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`: notified tasks wait killably once received.
pub const FILTER_FLAG_WAIT_KILLABLE_RECV: u32 = libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV as u32;

/// The kernel's limit on one classic BPF program (`BPF_MAXINSNS`).
pub const MAX_PROGRAM_LEN: usize = 4096;

/// Install `program` as a seccomp filter on the calling thread (all threads with TSYNC).
///
/// The caller must have set `no_new_privs` (or hold CAP_SYS_ADMIN). Returns the user-notification
/// fd when `flags` contains [`FILTER_FLAG_NEW_LISTENER`].
///
/// Allocation-free and lock-free: callable in a freshly forked child of a multi-threaded parent.
pub fn install_filter(program: &[libc::sock_filter], flags: u32) -> io::Result<Option<OwnedFd>> {
    if program.is_empty() || program.len() > MAX_PROGRAM_LEN {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let fprog = libc::sock_fprog {
        // Fits: checked against MAX_PROGRAM_LEN (4096) above.
        len: program.len() as libc::c_ushort,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `program`, which stays borrowed (alive, unmoved) for the whole
    // call; the kernel only reads `len` instructions from it and copies them. No memory of ours
    // is written.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            flags as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        // last_os_error reads errno; it does not allocate.
        return Err(io::Error::last_os_error());
    }
    if flags & FILTER_FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER a non-negative return is a fresh fd that nothing else owns.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }));
    }
    if ret > 0 {
        // TSYNC without TSYNC_ESRCH returns the id of a thread that could not be synchronised.
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(None)
}

/// Make `command` install `program` (with `flags`) in its child right before `execve`, after
/// setting `no_new_privs`. For running a real program under a filter (tests, `watertight audit`);
/// the sandbox's own child calls [`install_filter`] itself. A listener fd, if requested, is
/// closed in the child (the caller of this helper has no way to receive it).
pub fn command_with_filter(
    command: &mut std::process::Command,
    program: Vec<libc::sock_filter>,
    flags: u32,
) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the hook runs in the forked child before execve. It only calls prctl and
    // install_filter, which make raw syscalls on the already-allocated `program` and neither
    // allocate nor lock, so it is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            install_filter(&program, flags).map(drop)
        })
    }
}

/// Sizes of the user-notification structs the running kernel uses (`SECCOMP_GET_NOTIF_SIZES`).
pub fn notif_sizes() -> io::Result<libc::seccomp_notif_sizes> {
    let mut sizes = libc::seccomp_notif_sizes {
        seccomp_notif: 0,
        seccomp_notif_resp: 0,
        seccomp_data: 0,
    };
    // SAFETY: the kernel writes exactly one `seccomp_notif_sizes` into `sizes`, which is a valid,
    // exclusively borrowed local.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_NOTIF_SIZES as libc::c_ulong,
            0 as libc::c_ulong,
            &mut sizes as *mut libc::seccomp_notif_sizes,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sizes)
}

/// Receive one notification from a listener fd (blocks until a notified syscall arrives).
pub fn notif_recv(listener: BorrowedFd<'_>) -> io::Result<libc::seccomp_notif> {
    // The kernel requires the buffer to be zeroed.
    let mut notif = libc::seccomp_notif {
        id: 0,
        pid: 0,
        flags: 0,
        data: libc::seccomp_data {
            nr: 0,
            arch: 0,
            instruction_pointer: 0,
            args: [0; 6],
        },
    };
    // SAFETY: `notif` is a valid, exclusively borrowed `seccomp_notif`, the type the RECV ioctl
    // number encodes; the kernel writes at most its size.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut notif as *mut libc::seccomp_notif,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(notif)
}

/// Answer a notification received with [`notif_recv`].
pub fn notif_send(listener: BorrowedFd<'_>, response: &libc::seccomp_notif_resp) -> io::Result<()> {
    // SAFETY: `response` is a valid `seccomp_notif_resp` that the kernel only reads.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            response as *const libc::seccomp_notif_resp,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Answers notification `id` by installing a duplicate of `fd` in the notifying task (close-on-
/// exec, like every descriptor bpf() returns) and making its number the call's return value, in
/// one step (SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SEND, Linux 5.14). Returns the
/// number the task got. Fails with ENOENT when the task is no longer waiting in that call.
pub fn notif_addfd_send(listener: BorrowedFd<'_>, id: u64, fd: BorrowedFd<'_>) -> io::Result<i32> {
    let addfd = libc::seccomp_notif_addfd {
        id,
        flags: libc::SECCOMP_ADDFD_FLAG_SEND as u32,
        srcfd: fd.as_raw_fd() as u32,
        newfd: 0,
        newfd_flags: libc::O_CLOEXEC as u32,
    };
    // SAFETY: `addfd` is a valid `seccomp_notif_addfd`, the type the ADDFD ioctl number encodes,
    // which the kernel only reads; both descriptors are borrowed for the call.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ADDFD,
            &addfd as *const libc::seccomp_notif_addfd,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret)
}

/// Whether notification `id` is still pending (its task has not died or been interrupted). Check
/// it after reading the task's memory and before acting on what was read (TOCTOU guard).
pub fn notif_id_valid(listener: BorrowedFd<'_>, id: u64) -> io::Result<bool> {
    // SAFETY: the ID_VALID ioctl reads one u64 from the pointer, which points at a live local.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &id as *const u64,
        )
    };
    if ret == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ENOENT) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// One syscall attempt that [`probe_filter`] makes inside the filtered child. Arguments are chosen
/// so that, if the filter lets the call through, the kernel fails it harmlessly (bad fd, empty
/// path, invalid command) or its effect dies with the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Probe {
    /// getpid(): must be allowed by any usable filter.
    Getpid,
    /// read(-1, NULL, 0): EBADF when allowed.
    ReadBadFd,
    /// write(-1, NULL, 0): EBADF when allowed.
    WriteBadFd,
    /// mount("none", "", NULL, 0, NULL): ENOENT when allowed.
    Mount,
    /// umount2("", 0): ENOENT when allowed.
    Umount2,
    /// unshare(CLONE_NEWUSER).
    UnshareUser,
    /// setns(-1, 0): EBADF when allowed.
    Setns,
    /// clone(CLONE_NEWNET|SIGCHLD) like fork; the new child exits at once and is reaped.
    CloneNewNet,
    /// clone(CLONE_NEWUSER|SIGCHLD) like fork.
    CloneNewUser,
    /// clone(SIGCHLD): a plain fork, which a usable filter allows.
    ClonePlain,
    /// clone3(NULL, 0): EINVAL when allowed.
    Clone3,
    /// ptrace(PTRACE_ATTACH, 0): ESRCH when allowed.
    PtraceAttach,
    /// process_vm_readv(0, NULL, 0, NULL, 0, 0): ESRCH when allowed.
    ProcessVmReadv,
    /// bpf(0xffff, NULL, 0): EINVAL when allowed.
    Bpf,
    /// keyctl(0xffff, 0, 0, 0, 0): EOPNOTSUPP when allowed.
    Keyctl,
    /// add_key(NULL, ...): EFAULT when allowed.
    AddKey,
    /// io_uring_setup(0, NULL): EINVAL/EFAULT when allowed.
    IoUringSetup,
    /// perf_event_open(NULL, 0, -1, -1, 0): EFAULT when allowed.
    PerfEventOpen,
    /// userfaultfd(O_CLOEXEC); the fd is closed at once.
    Userfaultfd,
    /// socket(AF_PACKET, SOCK_RAW, 0); the fd is closed at once.
    SocketPacket,
    /// socket(AF_PACKET | 1<<32, SOCK_RAW, 0): the kernel truncates the family to an int, so a
    /// filter comparing all 64 bits would be bypassed.
    SocketPacketHighBits,
    /// socket(AF_VSOCK, SOCK_STREAM, 0).
    SocketVsock,
    /// socket(AF_ALG, SOCK_SEQPACKET, 0).
    SocketAlg,
    /// socket(AF_INET, SOCK_DGRAM, 0): allowed by a usable filter.
    SocketInet,
    /// socket(AF_UNIX, SOCK_STREAM, 0): allowed by a usable filter.
    SocketUnix,
    /// personality(0xffffffff): the query, allowed.
    PersonalityQuery,
    /// personality(ADDR_NO_RANDOMIZE): disables ASLR for the next exec.
    PersonalityNoRandomize,
    /// ioctl(-1, TIOCSTI, NULL): EBADF when allowed.
    IoctlTiocsti,
    /// ioctl(-1, TIOCSTI | 1<<32, NULL): the kernel truncates the command to 32 bits.
    IoctlTiocstiHighBits,
    /// ioctl(-1, TIOCLINUX, NULL): EBADF when allowed.
    IoctlTioclinux,
    /// ioctl(-1, TCGETS, NULL): EBADF when allowed (ordinary terminal ioctl).
    IoctlTcgets,
    /// getpid through the x32 ABI (nr 39 | 0x40000000).
    X32Getpid,
    /// mount through the x32 ABI (nr 165 | 0x40000000).
    X32Mount,
    /// getpid (nr 20) through the i386 ABI with `int 0x80`.
    I386Getpid,
    /// syscall number 1000, which no kernel assigns yet: ENOSYS from the kernel.
    Unassigned,
    /// mseal(0, 0, 0) (x86_64 nr 462, newer than Debian 12's libseccomp): 0 when allowed.
    Mseal,
    /// open_tree_attr(-1, "", 0, NULL, 0) (x86_64 nr 467, mount family, newer than Debian 12's
    /// libseccomp): EBADF/ENOENT when allowed.
    OpenTreeAttr,
    /// seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, allow-all): stacks a
    /// filter with a listener of the caller's own (the fd is closed at once). Allowed, it returns
    /// a listener fd: whoever holds one may answer notifications with CONTINUE.
    StackListener,
}

impl Probe {
    /// Every probe, in a stable order.
    pub const ALL: &'static [Probe] = &[
        Probe::Getpid,
        Probe::ReadBadFd,
        Probe::WriteBadFd,
        Probe::Mount,
        Probe::Umount2,
        Probe::UnshareUser,
        Probe::Setns,
        Probe::CloneNewNet,
        Probe::CloneNewUser,
        Probe::ClonePlain,
        Probe::Clone3,
        Probe::PtraceAttach,
        Probe::ProcessVmReadv,
        Probe::Bpf,
        Probe::Keyctl,
        Probe::AddKey,
        Probe::IoUringSetup,
        Probe::PerfEventOpen,
        Probe::Userfaultfd,
        Probe::SocketPacket,
        Probe::SocketPacketHighBits,
        Probe::SocketVsock,
        Probe::SocketAlg,
        Probe::SocketInet,
        Probe::SocketUnix,
        Probe::PersonalityQuery,
        Probe::PersonalityNoRandomize,
        Probe::IoctlTiocsti,
        Probe::IoctlTiocstiHighBits,
        Probe::IoctlTioclinux,
        Probe::IoctlTcgets,
        Probe::X32Getpid,
        Probe::X32Mount,
        Probe::I386Getpid,
        Probe::Unassigned,
        Probe::Mseal,
        Probe::OpenTreeAttr,
        Probe::StackListener,
    ];
}

/// What one probe got back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The syscall returned this non-negative value.
    Returned(i64),
    /// The syscall failed with this errno.
    Errno(i32),
    /// The child died before this probe reported (see [`ProbeReport::signal`]).
    NotRun,
}

/// Result of [`probe_filter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// The errno of the install itself, if it failed (then no probe ran).
    pub install_errno: Option<i32>,
    /// One outcome per requested probe, in order.
    pub outcomes: Vec<(Probe, ProbeOutcome)>,
    /// The signal that killed the child, if it was killed.
    pub signal: Option<i32>,
    /// The child's exit code, if it exited.
    pub exit_code: Option<i32>,
}

impl ProbeReport {
    /// The outcome of `probe` (NotRun if it was not requested).
    pub fn outcome(&self, probe: Probe) -> ProbeOutcome {
        self.outcomes
            .iter()
            .find(|(p, _)| *p == probe)
            .map(|(_, o)| *o)
            .unwrap_or(ProbeOutcome::NotRun)
    }

    /// The probe that was running when the child was killed: the first one without an outcome.
    pub fn killed_at(&self) -> Option<Probe> {
        self.signal?;
        self.outcomes
            .iter()
            .find(|(_, o)| *o == ProbeOutcome::NotRun)
            .map(|(p, _)| *p)
    }
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(20);
const RECORD_LEN: usize = 8;

/// Fork a child that sets `no_new_privs`, installs `program` (or nothing, for a control run) with
/// `flags`, closes any listener fd (so notify rules answer ENOSYS), runs `probes` in order and
/// reports each result over a pipe. The child only makes raw syscalls, so this is safe to call
/// from a multi-threaded process. A child that does not finish within 20 s is killed.
pub fn probe_filter(
    program: Option<&[libc::sock_filter]>,
    flags: u32,
    probes: &[Probe],
) -> io::Result<ProbeReport> {
    let (mut reader, writer_fd) = cloexec_pipe()?;
    // SAFETY: fork() is async-signal-safe. In the child we only call `probe_child`, which makes
    // raw syscalls on memory that already exists (the borrowed `program` and `probes`, stack
    // buffers) and ends in `_exit`; it never allocates, takes a lock or returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        probe_child(writer_fd.as_raw_fd(), program, flags, probes);
    }
    drop(writer_fd);
    let child = ReapGuard { pid };

    let mut bytes = Vec::with_capacity((probes.len() + 1) * RECORD_LEN);
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let mut chunk = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !wait_readable(reader.as_raw_fd(), left)? {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "seccomp probe child did not finish within 20 s (killed)",
            ));
        }
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let status = child.wait()?;

    let mut records = bytes
        .chunks_exact(RECORD_LEN)
        .map(|c| i64::from_ne_bytes(c.try_into().expect("chunks_exact yields RECORD_LEN bytes")));
    let install = records.next();
    let install_errno = match install {
        Some(r) if r < 0 => Some(-r as i32),
        _ => None,
    };
    let outcomes = probes
        .iter()
        .map(|p| {
            let outcome = match records.next() {
                None => ProbeOutcome::NotRun,
                Some(r) if r < 0 => ProbeOutcome::Errno(-r as i32),
                Some(r) => ProbeOutcome::Returned(r),
            };
            (*p, outcome)
        })
        .collect();
    let (signal, exit_code) = if libc::WIFSIGNALED(status) {
        (Some(libc::WTERMSIG(status)), None)
    } else if libc::WIFEXITED(status) {
        (None, Some(libc::WEXITSTATUS(status)))
    } else {
        (None, None)
    };
    Ok(ProbeReport {
        install_errno,
        outcomes,
        signal,
        exit_code,
    })
}

/// A pipe with both ends close-on-exec: (read end as a File, write end).
fn cloexec_pipe() -> io::Result<(std::fs::File, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into the two-element local array.
    let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created by pipe2 and are owned by nothing else.
    Ok(unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            OwnedFd::from_raw_fd(fds[1]),
        )
    })
}

/// Kills (if still running) and reaps the probe child on every exit path.
struct ReapGuard {
    pid: libc::pid_t,
}

impl ReapGuard {
    fn wait(self) -> io::Result<libc::c_int> {
        let pid = self.pid;
        std::mem::forget(self);
        waitpid_retry(pid)
    }
}

impl Drop for ReapGuard {
    fn drop(&mut self) {
        // SAFETY: kill/waitpid on our own, not yet reaped child pid: no memory is involved.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let _ = waitpid_retry(self.pid);
    }
}

fn waitpid_retry(pid: libc::pid_t) -> io::Result<libc::c_int> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid local the kernel writes one int into.
        let ret = unsafe { libc::waitpid(pid, &mut status, 0) };
        if ret == pid {
            return Ok(status);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn wait_readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    loop {
        // SAFETY: one valid pollfd, exclusively borrowed for the call.
        let ret = unsafe { libc::poll(&mut pfd, 1, ms) };
        if ret >= 0 {
            return Ok(ret > 0);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Child side of [`probe_filter`]. Never returns; never allocates.
fn probe_child(
    out: RawFd,
    program: Option<&[libc::sock_filter]>,
    flags: u32,
    probes: &[Probe],
) -> ! {
    let install = match program {
        None => 0,
        Some(program) => {
            // SAFETY: prctl with integer arguments only.
            let nnp = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            if nnp != 0 {
                -(errno() as i64)
            } else {
                match install_filter(program, flags) {
                    // Dropping the listener closes it: notify rules then fail with ENOSYS.
                    Ok(listener) => {
                        drop(listener);
                        0
                    }
                    Err(e) => -(e.raw_os_error().unwrap_or(libc::EINVAL) as i64),
                }
            }
        }
    };
    write_record(out, install);
    if install == 0 {
        for probe in probes {
            write_record(out, run_probe(*probe));
        }
    }
    // SAFETY: _exit ends the process without running atexit handlers or unwinding.
    unsafe { libc::_exit(0) }
}

fn write_record(fd: RawFd, value: i64) {
    let bytes = value.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live stack array. A short or failed write only loses a
    // record, which the parent reports as NotRun.
    unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Turn a raw syscall return into a record: the value, or -errno.
fn result(ret: libc::c_long) -> i64 {
    if ret < 0 {
        -(errno() as i64)
    } else {
        ret
    }
}

/// Close an fd a probe created (its creation is what was being probed).
fn close_created(ret: i64) -> i64 {
    if ret >= 0 {
        // SAFETY: `ret` is an fd this process just created and nothing else refers to.
        unsafe { libc::close(ret as RawFd) };
    }
    ret
}

/// Fork-like raw clone: the new process exits at once; the parent reaps it.
fn clone_and_reap(flags: libc::c_ulong) -> i64 {
    // SAFETY: clone without CLONE_VM and with a NULL stack behaves like fork: the new process
    // gets a copy-on-write copy of this stack and only calls _exit.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if ret == 0 {
        // SAFETY: in the new process: leave immediately.
        unsafe { libc::_exit(0) };
    }
    let ret = result(ret);
    if ret > 0 {
        let mut status = 0;
        // SAFETY: reaping our own child into a local.
        unsafe { libc::waitpid(ret as libc::pid_t, &mut status, 0) };
    }
    ret
}

const X32_SYSCALL_BIT: libc::c_long = 0x4000_0000;
const AF_PACKET_HIGH_BITS: libc::c_long = (1 << 32) | libc::AF_PACKET as libc::c_long;
const TIOCSTI_HIGH_BITS: libc::c_ulong = (1 << 32) | libc::TIOCSTI as libc::c_ulong;
const ADDR_NO_RANDOMIZE: libc::c_ulong = 0x0040000;
// x86_64 numbers (syscall_64.tbl); other arches never reach these probes through seccomp tests.
const SYS_MSEAL: libc::c_long = 462;
const SYS_UNASSIGNED: libc::c_long = 1000;
const SYS_OPEN_TREE_ATTR: libc::c_long = 467;

/// `libc::syscall` as the probes below make it: one place for the reason it is sound.
macro_rules! probe_syscall {
    ($($arg:expr),+ $(,)?) => {
        // SAFETY: a probe passes only integers, NULL, or pointers to static NUL-terminated
        // strings; the kernel reads no memory of ours beyond those and writes none. Created fds
        // are closed and created processes exit at once, so nothing outlives the probe.
        unsafe { libc::syscall($($arg),+) }
    };
}

fn run_probe(probe: Probe) -> i64 {
    let empty = c"".as_ptr();
    let none = c"none".as_ptr();
    let null = std::ptr::null::<libc::c_void>();
    match probe {
        Probe::Getpid => result(probe_syscall!(libc::SYS_getpid)),
        Probe::ReadBadFd => result(probe_syscall!(libc::SYS_read, -1, null, 0)),
        Probe::WriteBadFd => result(probe_syscall!(libc::SYS_write, -1, null, 0)),
        Probe::Mount => result(probe_syscall!(
            libc::SYS_mount,
            none,
            empty,
            null,
            0usize,
            null
        )),
        Probe::Umount2 => result(probe_syscall!(libc::SYS_umount2, empty, 0)),
        Probe::UnshareUser => result(probe_syscall!(libc::SYS_unshare, libc::CLONE_NEWUSER)),
        Probe::Setns => result(probe_syscall!(libc::SYS_setns, -1, 0)),
        Probe::CloneNewNet => clone_and_reap((libc::CLONE_NEWNET | libc::SIGCHLD) as libc::c_ulong),
        Probe::CloneNewUser => {
            clone_and_reap((libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong)
        }
        Probe::ClonePlain => clone_and_reap(libc::SIGCHLD as libc::c_ulong),
        Probe::Clone3 => result(probe_syscall!(libc::SYS_clone3, null, 0usize)),
        Probe::PtraceAttach => result(probe_syscall!(
            libc::SYS_ptrace,
            libc::PTRACE_ATTACH,
            0,
            null,
            null
        )),
        Probe::ProcessVmReadv => result(probe_syscall!(
            libc::SYS_process_vm_readv,
            0,
            null,
            0,
            null,
            0,
            0
        )),
        Probe::Bpf => result(probe_syscall!(libc::SYS_bpf, 0xffff, null, 0)),
        Probe::Keyctl => result(probe_syscall!(libc::SYS_keyctl, 0xffff, 0, 0, 0, 0)),
        Probe::AddKey => result(probe_syscall!(libc::SYS_add_key, null, null, null, 0, 0)),
        Probe::IoUringSetup => {
            close_created(result(probe_syscall!(libc::SYS_io_uring_setup, 0, null)))
        }
        Probe::PerfEventOpen => close_created(result(probe_syscall!(
            libc::SYS_perf_event_open,
            null,
            0,
            -1,
            -1,
            0
        ))),
        Probe::Userfaultfd => close_created(result(probe_syscall!(
            libc::SYS_userfaultfd,
            libc::O_CLOEXEC
        ))),
        Probe::SocketPacket => close_created(result(probe_syscall!(
            libc::SYS_socket,
            libc::AF_PACKET,
            libc::SOCK_RAW,
            0
        ))),
        Probe::SocketPacketHighBits => close_created(result(probe_syscall!(
            libc::SYS_socket,
            AF_PACKET_HIGH_BITS,
            libc::SOCK_RAW,
            0
        ))),
        Probe::SocketVsock => close_created(result(probe_syscall!(
            libc::SYS_socket,
            libc::AF_VSOCK,
            libc::SOCK_STREAM,
            0
        ))),
        Probe::SocketAlg => close_created(result(probe_syscall!(
            libc::SYS_socket,
            libc::AF_ALG,
            libc::SOCK_SEQPACKET,
            0
        ))),
        Probe::SocketInet => close_created(result(probe_syscall!(
            libc::SYS_socket,
            libc::AF_INET,
            libc::SOCK_DGRAM,
            0
        ))),
        Probe::SocketUnix => close_created(result(probe_syscall!(
            libc::SYS_socket,
            libc::AF_UNIX,
            libc::SOCK_STREAM,
            0
        ))),
        Probe::PersonalityQuery => result(probe_syscall!(
            libc::SYS_personality,
            0xffff_ffff_u32 as libc::c_ulong
        )),
        Probe::PersonalityNoRandomize => {
            result(probe_syscall!(libc::SYS_personality, ADDR_NO_RANDOMIZE))
        }
        Probe::IoctlTiocsti => result(probe_syscall!(libc::SYS_ioctl, -1, libc::TIOCSTI, null)),
        Probe::IoctlTiocstiHighBits => {
            result(probe_syscall!(libc::SYS_ioctl, -1, TIOCSTI_HIGH_BITS, null))
        }
        Probe::IoctlTioclinux => result(probe_syscall!(libc::SYS_ioctl, -1, libc::TIOCLINUX, null)),
        Probe::IoctlTcgets => result(probe_syscall!(libc::SYS_ioctl, -1, libc::TCGETS, null)),
        Probe::X32Getpid => result(probe_syscall!(X32_SYSCALL_BIT | libc::SYS_getpid)),
        Probe::X32Mount => result(probe_syscall!(
            X32_SYSCALL_BIT | libc::SYS_mount,
            none,
            empty,
            null,
            0usize,
            null,
        )),
        Probe::I386Getpid => i386_getpid(),
        Probe::Unassigned => result(probe_syscall!(SYS_UNASSIGNED)),
        Probe::Mseal => result(probe_syscall!(SYS_MSEAL, 0usize, 0usize, 0usize)),
        Probe::OpenTreeAttr => close_created(result(probe_syscall!(
            SYS_OPEN_TREE_ATTR,
            -1,
            empty,
            0,
            null,
            0usize
        ))),
        Probe::StackListener => {
            let allow = [libc::sock_filter {
                code: (libc::BPF_RET | libc::BPF_K) as u16,
                jt: 0,
                jf: 0,
                k: libc::SECCOMP_RET_ALLOW,
            }];
            let prog = libc::sock_fprog {
                len: 1,
                filter: allow.as_ptr() as *mut libc::sock_filter,
            };
            // SAFETY: seccomp reads the program through `prog`, which points at a live stack
            // array for the duration of the call; a returned fd is closed by close_created.
            close_created(result(unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                    &prog as *const libc::sock_fprog,
                )
            }))
        }
    }
}

/// getpid through the 32-bit entry point (`int 0x80`, i386 nr 20), which the kernel tags with
/// AUDIT_ARCH_I386: a filter that does not check the arch would read it as x86_64 nr 20 (writev).
#[cfg(target_arch = "x86_64")]
fn i386_getpid() -> i64 {
    let mut ret: i64 = 20;
    // SAFETY: `int 0x80` with eax=20 (getpid) takes no memory arguments. The 32-bit entry may
    // clobber r8-r11 and the flags, which are declared clobbered; the stack is untouched.
    unsafe {
        std::arch::asm!(
            "int 0x80",
            inlateout("rax") ret,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
        );
    }
    // The 32-bit entry returns a 32-bit value in eax: -errno or the pid, which is what a
    // probe record carries.
    ret as i32 as i64
}

#[cfg(not(target_arch = "x86_64"))]
fn i386_getpid() -> i64 {
    -(libc::ENOSYS as i64)
}

/// `PTRACE_SECCOMP_GET_FILTER` (linux/ptrace.h): copy out one of a tracee's seccomp filters.
const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;

/// Reads every seccomp filter of process `pid`, newest first (the order the kernel indexes them;
/// it runs them all and takes the most restrictive answer).
///
/// The process is attached with `PTRACE_SEIZE`, stopped with `PTRACE_INTERRUPT` just long enough
/// to copy the filters, and detached; it is not signalled otherwise. Needs CAP_SYS_ADMIN (and
/// ptrace access to `pid`); fails with `EBUSY`/`EPERM` when another tracer holds it. A process
/// without filters gives an empty list.
pub fn read_filters(pid: i32) -> io::Result<Vec<Vec<libc::sock_filter>>> {
    use nix::sys::ptrace;
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let target = nix::unistd::Pid::from_raw(pid);
    ptrace::seize(target, ptrace::Options::empty()).map_err(io::Error::from)?;
    let result = (|| {
        ptrace::interrupt(target).map_err(io::Error::from)?;
        loop {
            match waitpid(target, Some(WaitPidFlag::__WALL)).map_err(io::Error::from)? {
                WaitStatus::PtraceEvent(..) | WaitStatus::Stopped(..) => break,
                WaitStatus::Exited(..) | WaitStatus::Signaled(..) => {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH))
                }
                _ => continue,
            }
        }
        let mut filters = Vec::new();
        for index in 0.. {
            // SAFETY: with a null `data` the kernel only returns the filter's length (in
            // instructions); nothing of ours is written.
            let len = unsafe {
                libc::ptrace(
                    PTRACE_SECCOMP_GET_FILTER,
                    pid,
                    index as libc::c_ulong,
                    std::ptr::null_mut::<libc::sock_filter>(),
                )
            };
            if len < 0 {
                let err = io::Error::last_os_error();
                // ENOENT: past the oldest filter. EINVAL at the first index: the process is not
                // in filter mode (it has no filter at all).
                match err.raw_os_error() {
                    Some(libc::ENOENT) => break,
                    Some(libc::EINVAL) if index == 0 => break,
                    _ => {}
                }
                return Err(err);
            }
            let len = usize::try_from(len).unwrap_or(0).min(MAX_PROGRAM_LEN);
            let mut program = vec![
                libc::sock_filter {
                    code: 0,
                    jt: 0,
                    jf: 0,
                    k: 0
                };
                len
            ];
            // SAFETY: `program` holds `len` instructions, the length the kernel reported for
            // this filter (filters are immutable once installed), so the copy stays inside it.
            let copied = unsafe {
                libc::ptrace(
                    PTRACE_SECCOMP_GET_FILTER,
                    pid,
                    index as libc::c_ulong,
                    program.as_mut_ptr(),
                )
            };
            if copied < 0 {
                return Err(io::Error::last_os_error());
            }
            program.truncate(usize::try_from(copied).unwrap_or(0));
            filters.push(program);
        }
        Ok(filters)
    })();
    // Detach whatever happened above; an error here only matters when reading succeeded.
    let detached = ptrace::detach(target, None).map_err(io::Error::from);
    let filters = result?;
    detached?;
    Ok(filters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// A hand-assembled filter: mount → USER_NOTIF, x86_64 only, everything else allowed.
    fn notify_mount_program() -> Vec<libc::sock_filter> {
        const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
        let stmt = |code: u32, k: u32| libc::sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        };
        let jump = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        };
        vec![
            // A = seccomp_data.arch
            stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 4),
            jump(
                libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
                AUDIT_ARCH_X86_64,
                1,
                0,
            ),
            stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_KILL_PROCESS),
            // A = seccomp_data.nr
            stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
            jump(
                libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
                libc::SYS_mount as u32,
                0,
                1,
            ),
            stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_USER_NOTIF),
            stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
        ]
    }

    #[test]
    fn empty_or_oversized_program_is_einval() {
        let err = install_filter(&[], 0).expect_err("empty program");
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        let insn = libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        };
        let big = vec![insn; MAX_PROGRAM_LEN + 1];
        let err = install_filter(&big, 0).expect_err("oversized program");
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn failed_install_is_reported_not_ignored() {
        // Through a Command hook: spawn fails with the install's errno.
        let mut cmd = std::process::Command::new("/bin/true");
        command_with_filter(&mut cmd, Vec::new(), 0);
        let err = cmd
            .status()
            .expect_err("install of an empty program must fail the spawn");
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        // Through the probe: install_errno is set and no probe runs.
        let report = probe_filter(Some(&[]), 0, &[Probe::Getpid]).expect("probe child runs");
        assert_eq!(report.install_errno, Some(libc::EINVAL));
        assert_eq!(report.outcome(Probe::Getpid), ProbeOutcome::NotRun);
        assert_eq!(report.exit_code, Some(0));
    }

    #[test]
    fn notif_sizes_match_the_structs() {
        let sizes = notif_sizes().expect("SECCOMP_GET_NOTIF_SIZES");
        assert!(usize::from(sizes.seccomp_notif) >= std::mem::size_of::<libc::seccomp_notif>());
        assert_eq!(
            usize::from(sizes.seccomp_data),
            std::mem::size_of::<libc::seccomp_data>()
        );
    }

    /// Full user-notification round trip: a forked child installs the filter with a listener,
    /// forks a grandchild that calls mount (notified), receives the notification, checks it is
    /// still valid, answers EACCES, and exits with the errno the grandchild saw.
    #[test]
    fn user_notification_round_trip() {
        let program = notify_mount_program();
        // SAFETY: the child and grandchild only make raw syscalls (prctl, seccomp, fork,
        // ioctl, waitpid, mount) on memory allocated before the fork, then _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid == 0 {
            let code = notify_child(&program);
            // SAFETY: leave the forked child without unwinding.
            unsafe { libc::_exit(code) };
        }
        let status = waitpid_retry(pid).expect("wait for the child");
        assert!(libc::WIFEXITED(status), "child status {status:#x}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            libc::EACCES,
            "exit code: EACCES from the supervisor's answer; 100+ codes mark a failed step"
        );
    }

    fn notify_child(program: &[libc::sock_filter]) -> i32 {
        // SAFETY: integer-only prctl.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return 100;
        }
        let listener = match install_filter(program, FILTER_FLAG_NEW_LISTENER) {
            Ok(Some(fd)) => fd,
            _ => return 101,
        };
        // SAFETY: fork from a single-threaded child.
        let grandchild = unsafe { libc::fork() };
        if grandchild == 0 {
            // SAFETY: static strings; mount is notified, the answer decides the result.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_mount,
                    c"none".as_ptr(),
                    c"".as_ptr(),
                    std::ptr::null::<libc::c_char>(),
                    0usize,
                    std::ptr::null::<libc::c_void>(),
                )
            };
            let code = if ret < 0 { errno() } else { 0 };
            // SAFETY: leave without unwinding.
            unsafe { libc::_exit(code) };
        }
        if grandchild < 0 {
            return 102;
        }
        let notif = match notif_recv(listener.as_fd()) {
            Ok(n) => n,
            Err(_) => return 103,
        };
        if notif.data.nr != libc::SYS_mount as i32 || notif.pid as i32 != grandchild {
            return 104;
        }
        if !matches!(notif_id_valid(listener.as_fd(), notif.id), Ok(true)) {
            return 105;
        }
        let response = libc::seccomp_notif_resp {
            id: notif.id,
            val: 0,
            error: -libc::EACCES,
            flags: 0,
        };
        if notif_send(listener.as_fd(), &response).is_err() {
            return 106;
        }
        match waitpid_retry(grandchild) {
            Ok(status) if libc::WIFEXITED(status) => {
                // Once answered, the id is no longer pending.
                if !matches!(notif_id_valid(listener.as_fd(), notif.id), Ok(false)) {
                    return 107;
                }
                libc::WEXITSTATUS(status)
            }
            _ => 108,
        }
    }
}
