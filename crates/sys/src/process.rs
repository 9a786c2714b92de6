//! Process creation and reaping that std and nix do not offer safely: clone(2) straight into new
//! namespaces with a pidfd, fork and a posix_spawn-style start guarded by a single-thread check,
//! wait4 with resource usage; and the process-wide settings a sandbox's last steps change
//! (signal dispositions, securebits, capability sets).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// What `clone_into_namespaces` and `fork` return on each side.
#[derive(Debug)]
pub enum Forked {
    /// In the parent: the child's pid (in the parent's pid namespace) and a pidfd for it.
    Parent {
        /// The child's pid.
        pid: i32,
        /// A pidfd for the child, when the kernel handed one out (clone with CLONE_PIDFD).
        pidfd: Option<OwnedFd>,
    },
    /// In the child.
    Child,
}

/// Number of threads in this process: /proc/self/task has one link per thread plus two (one
/// statx, where reading /proc/self/stat costs the kernel formatting the whole line); field 20
/// of /proc/self/stat when that count looks wrong.
pub fn thread_count() -> io::Result<usize> {
    use std::os::unix::fs::MetadataExt;
    let links = std::fs::metadata("/proc/self/task")?.nlink();
    if links >= 3 {
        return Ok(links as usize - 2);
    }
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name (field 2) may contain spaces and ')' so parse after the last ')'.
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| io::Error::other("malformed /proc/self/stat"))?;
    after
        .split_whitespace()
        .nth(17)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("malformed /proc/self/stat"))
}

/// Waits, at most `limit`, until this process has one thread again, and says whether it does.
/// A pool's threads tell the pool they are done before the kernel has removed them (a scoped
/// thread's last act is to signal its scope; pthread_join returns at CLONE_CHILD_CLEARTID,
/// before the task leaves the thread group), so a caller that has just joined a pool and is
/// about to fork waits out that moment here instead of being refused.
pub fn wait_until_single_threaded(limit: std::time::Duration) -> io::Result<bool> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if thread_count()? == 1 {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

fn ensure_single_threaded() -> io::Result<()> {
    match thread_count()? {
        1 => Ok(()),
        n => Err(io::Error::other(format!(
            "refusing to fork: this process has {n} threads (a forked child could inherit a held lock)"
        ))),
    }
}

/// clone(2) like fork, but with `ns_flags` (CLONE_NEW*) so the child starts in fresh namespaces,
/// and CLONE_PIDFD so the parent gets a pidfd it can poll for exit without signals.
///
/// Refuses when the calling process has more than one thread: the child of a multi-threaded
/// process may only call async-signal-safe functions, and the sandbox child does far more.
pub fn clone_into_namespaces(ns_flags: libc::c_int) -> io::Result<Forked> {
    ensure_single_threaded()?;
    let mut pidfd: libc::c_int = -1;
    let flags = (ns_flags | libc::CLONE_PIDFD | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: with a NULL stack, clone behaves like fork: the child gets a copy-on-write copy of
    // the address space and continues on its own copy of this stack. The process is single-
    // threaded (checked above), so no lock can be held by a thread that does not exist in the
    // child. parent_tid points at a live c_int that receives the pidfd (CLONE_PIDFD). The
    // argument order (flags, stack, parent_tid, child_tid, tls) is the x86_64/aarch64 one.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            0usize,
            &mut pidfd as *mut libc::c_int,
            0usize,
            0usize,
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: the kernel stored a new, owned file descriptor in pidfd for this child.
            pidfd: (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) }),
        }),
    }
}

/// fork(2), refused when the process has more than one thread (see `clone_into_namespaces`).
pub fn fork() -> io::Result<Forked> {
    ensure_single_threaded()?;
    // SAFETY: single-threaded (checked above), so the child inherits no lock held by another
    // thread and may allocate and run ordinary code.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent {
            pid: child.as_raw(),
            pidfd: None,
        }),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// The stack of a child cloned with CLONE_VM (it cannot use ours): memory it alone uses, which
/// must outlive the child. Untouched pages of a fresh zeroed allocation cost nothing.
#[derive(Debug)]
pub(crate) struct ChildStack(Vec<u8>);

impl ChildStack {
    pub(crate) fn new(size: usize) -> ChildStack {
        ChildStack(vec![0u8; size])
    }

    /// Its top, 16-byte aligned: clone(2)'s stack argument (stacks grow down here).
    pub(crate) fn top(&mut self) -> *mut libc::c_void {
        let len = self.0.len();
        // SAFETY: the offset stays within the allocation (one past the end is allowed).
        let end = unsafe { self.0.as_mut_ptr().add(len) };
        (end as usize & !15) as *mut libc::c_void
    }
}

/// Starts `child` in a new process that shares this one's memory until it calls execve or
/// exits, the way posix_spawn does (clone with CLONE_VM | CLONE_VFORK): no page tables are
/// copied, so starting a program from a large process costs a fraction of fork. The caller is
/// suspended until then. `child` runs on a stack of its own and must end in execve or
/// [`exit_now`]; if it returns, the child exits with 127. Everything else about the child is
/// its own (fd table, credentials, seccomp, rlimits, signal dispositions), so it may drop
/// privileges without touching the caller. Refused when the caller is multi-threaded.
pub fn spawn_shared_vm(child: &mut dyn FnMut()) -> io::Result<i32> {
    ensure_single_threaded()?;
    extern "C" fn trampoline(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` points at the `&mut dyn FnMut()` below, which outlives the child's use
        // of it: the caller stays suspended (CLONE_VFORK) until the child execs or exits.
        let f = unsafe { &mut *(arg as *mut &mut dyn FnMut()) };
        f();
        exit_now(127)
    }
    let mut stack = ChildStack::new(256 << 10); // the child touches a few pages of it
    let mut f: &mut dyn FnMut() = child;
    // SAFETY: the child runs `trampoline` on `stack` (alive until we resume, which is after
    // the child has left it), sharing our memory while we are suspended, so nothing else
    // touches that memory meanwhile; the process is single-threaded (checked above), so no
    // other thread holds a lock the child could need.
    let pid = unsafe {
        libc::clone(
            trampoline,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &mut f as *mut &mut dyn FnMut() as *mut libc::c_void,
        )
    };
    drop(stack);
    match pid {
        -1 => Err(io::Error::last_os_error()),
        pid => Ok(pid),
    }
}

/// Sets every catchable signal back to its default action. A program must not start with the
/// dispositions of whoever started it (Rust ignores SIGPIPE, so `yes | head` would see EPIPE
/// instead of dying; a parent may ignore glibc's internal signals 32 and 33), nor with a handler
/// that lives in memory it shares until execve. Raw rt_sigaction: glibc refuses 32 and 33.
pub fn reset_signal_dispositions() {
    /// The kernel's struct sigaction on x86_64 and aarch64: handler, flags, restorer, mask.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `default` is a live, correctly laid out kernel sigaction that the kernel only
        // reads; installing SIG_DFL runs no code of ours.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            );
        }
    }
}

/// Resource usage of a reaped child (and of the descendants it reaped itself).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time in user mode, microseconds.
    pub user_us: u64,
    /// CPU time in the kernel, microseconds.
    pub system_us: u64,
    /// Peak resident set size, KiB (the largest of the child and the descendants it reaped).
    pub max_rss_kb: u64,
}

/// A reaped child: pid, raw wait status and its resource usage.
#[derive(Debug, Clone, Copy)]
pub struct Reaped {
    /// The pid that was reaped.
    pub pid: i32,
    /// The raw wait status, as wait4(2) fills it.
    pub status: i32,
    /// What the child used.
    pub usage: Usage,
}

impl Reaped {
    /// The exit code, when the child exited normally.
    pub fn exit_code(&self) -> Option<i32> {
        libc::WIFEXITED(self.status).then(|| libc::WEXITSTATUS(self.status))
    }

    /// The signal that ended the child, when a signal did.
    pub fn signal(&self) -> Option<i32> {
        libc::WIFSIGNALED(self.status).then(|| libc::WTERMSIG(self.status))
    }
}

/// wait4(2): reap `pid` (-1 for any child). With `nohang`, Ok(None) means nothing to reap yet.
/// EINTR is retried.
pub fn wait4(pid: i32, nohang: bool) -> io::Result<Option<Reaped>> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value and the kernel overwrites it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let options = if nohang { libc::WNOHANG } else { 0 } | libc::__WALL;
    loop {
        // SAFETY: both pointers refer to live locals of the right types.
        let r = unsafe { libc::wait4(pid, &mut status, options, &mut ru) };
        if r == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Ok(None);
        }
        let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        return Ok(Some(Reaped {
            pid: r,
            status,
            usage: Usage {
                user_us: tv(ru.ru_utime),
                system_us: tv(ru.ru_stime),
                max_rss_kb: ru.ru_maxrss.max(0) as u64,
            },
        }));
    }
}

/// Marks every descriptor from `first` upward close-on-exec (close_range with
/// CLOSE_RANGE_CLOEXEC), so nothing the sandbox inherited survives execve.
pub fn cloexec_from(first: RawFd) -> io::Result<()> {
    // SAFETY: close_range only changes descriptor flags; no memory is involved.
    let r = unsafe {
        libc::close_range(
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_int,
        )
    };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// prctl(PR_SET_SECUREBITS, bits).
pub fn set_securebits(bits: u32) -> io::Result<()> {
    // SAFETY: PR_SET_SECUREBITS takes an integer argument; no memory is involved.
    let r = unsafe { libc::prctl(libc::PR_SET_SECUREBITS, bits as libc::c_ulong, 0, 0, 0) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Empties the ambient set and the bounding set: one PR_CAPBSET_DROP per capability this kernel
/// knows (the first EINVAL is past the last one). Needs CAP_SETPCAP for the bounding set.
pub fn clear_ambient_and_bounding() -> io::Result<()> {
    clear_ambient_and_bounding_except(0)
}

/// Empties the ambient set, and the bounding set but for the capabilities in `keep` (bit n:
/// capability n).
pub fn clear_ambient_and_bounding_except(keep: u64) -> io::Result<()> {
    // SAFETY: integer arguments only.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    for cap in 0..=63u32 {
        if keep & (1u64 << cap) != 0 {
            continue;
        }
        // SAFETY: integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } == -1 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINVAL) && cap > 0 {
                return Ok(());
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Empties the effective, permitted and inheritable sets with one capset(2).
pub fn clear_capability_sets() -> io::Result<()> {
    clear_capability_sets_except(0)
}

/// _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// One 32-bit word of each set (capget/capset v3 pass two).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn capget() -> io::Result<[CapData; 2]> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: both pointers refer to live, correctly laid out structs (the v3 layout: two data
    // words); the kernel writes only within them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(data)
}

fn capset(data: &[CapData; 2]) -> io::Result<()> {
    let header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: both pointers refer to live, correctly laid out structs (the v3 layout) that the
    // kernel only reads.
    let r = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn words(caps: u64) -> [u32; 2] {
    [caps as u32, (caps >> 32) as u32]
}

/// Sets the effective, permitted and inheritable sets to exactly `keep` (bit n: capability n)
/// with one capset(2): everything else is gone, and `keep` only where it was permitted.
pub fn clear_capability_sets_except(keep: u64) -> io::Result<()> {
    let [lo, hi] = words(keep);
    capset(&[
        CapData {
            effective: lo,
            permitted: lo,
            inheritable: lo,
        },
        CapData {
            effective: hi,
            permitted: hi,
            inheritable: hi,
        },
    ])
}

/// Sets the effective, permitted and inheritable sets to exactly these masks (bit n: capability
/// n) with one capset(2), as an OCI runtime applies `process.capabilities`. The kernel refuses
/// (EPERM) a permitted or inheritable bit the caller does not hold.
pub fn set_capability_sets(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    let [e_lo, e_hi] = words(effective);
    let [p_lo, p_hi] = words(permitted);
    let [i_lo, i_hi] = words(inheritable);
    capset(&[
        CapData {
            effective: e_lo,
            permitted: p_lo,
            inheritable: i_lo,
        },
        CapData {
            effective: e_hi,
            permitted: p_hi,
            inheritable: i_hi,
        },
    ])
}

/// Raises the capabilities in `caps` into the ambient set, so that they survive execve of a
/// program without file capabilities: first added to the inheritable set (the kernel requires
/// each in the permitted and the inheritable set), then one PR_CAP_AMBIENT_RAISE each.
pub fn raise_ambient(caps: u64) -> io::Result<()> {
    let mut data = capget()?;
    for (d, w) in data.iter_mut().zip(words(caps)) {
        d.inheritable |= w;
    }
    capset(&data)?;
    for cap in (0..64u32).filter(|c| caps & (1u64 << c) != 0) {
        // SAFETY: integer arguments only.
        let r = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                cap as libc::c_ulong,
                0,
                0,
            )
        };
        if r == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// prctl(PR_GET_SECUREBITS).
pub fn securebits() -> io::Result<u32> {
    // SAFETY: PR_GET_SECUREBITS takes no pointer argument.
    let r = unsafe { libc::prctl(libc::PR_GET_SECUREBITS, 0, 0, 0, 0) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as u32)
}

/// prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN): memory that is or was writable can never be
/// made executable (mprotect/mmap refuse), closing the anonymous-memory path around an exec gate.
pub fn refuse_exec_gain() -> io::Result<()> {
    const PR_SET_MDWE: libc::c_int = 65;
    const PR_MDWE_REFUSE_EXEC_GAIN: libc::c_ulong = 1;
    // SAFETY: PR_SET_MDWE takes integer arguments only.
    let r = unsafe { libc::prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Immediately terminates the process without running destructors or atexit handlers: the
/// right exit for a forked child that must not flush its parent's buffers twice.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// Runs `f` when the process exits normally (`exit`, or returning from `main`): libc's atexit.
/// Fails only when libc's table of handlers is full.
pub fn at_exit(f: extern "C" fn()) -> io::Result<()> {
    // SAFETY: atexit stores a plain function pointer, which lives as long as the program (a fn
    // item); it is called once, on the exiting thread, after main.
    match unsafe { libc::atexit(f) } {
        0 => Ok(()),
        _ => Err(io::Error::other("atexit: no room for another handler")),
    }
}

/// The one uid and gid that [`unmapped_user_namespace`] maps (to itself): -2, an id no file on a
/// real system is owned by (-1 is the kernel's "no id").
pub const UNMAPPED_IDMAP_ID: u32 = u32::MAX - 1;

/// A user namespace whose maps hold only [`UNMAPPED_IDMAP_ID`], for idmapped mounts that map
/// no real owner: through such a mount every inode's owner is unmapped, so the kernel refuses
/// write access to every inode (connect() to a socket needs it) whatever its mode, while the
/// "other" permission bits still allow reading and executing. The kernel refuses an idmap with
/// no mapping at all, hence the one unused id. Only a process in the namespace lets its maps be
/// written, so a child enters it and waits while this process writes them and opens the
/// namespace, which then outlives the child through the returned fd.
///
/// The child shares this process's memory (CLONE_VM) and only ever sleeps: a copy of the
/// supervisor's page tables (a fork) made this helper cost about 0.3 ms of every start.
pub fn unmapped_user_namespace() -> io::Result<OwnedFd> {
    let map = format!("{UNMAPPED_IDMAP_ID} {UNMAPPED_IDMAP_ID} 1\n");
    user_namespace_with_maps(&map, &map)
}

/// A user namespace whose uid and gid maps are `uid_map` and `gid_map` (`/proc/PID/uid_map`
/// lines: `INSIDE OUTSIDE COUNT`), for idmapped mounts: through such a mount an inode whose
/// owner on disk is INSIDE appears owned by OUTSIDE, and a file OUTSIDE creates is stored as
/// INSIDE. Made like [`unmapped_user_namespace`]'s (a CLONE_VM child that only sleeps).
pub fn user_namespace_with_maps(uid_map: &str, gid_map: &str) -> io::Result<OwnedFd> {
    extern "C" fn sleep_until_killed(_: *mut libc::c_void) -> libc::c_int {
        loop {
            // SAFETY: pause takes no arguments and touches no memory; it returns only after a
            // signal handler ran, and the loop sleeps again. The parent ends this with SIGKILL.
            unsafe { libc::syscall(libc::SYS_pause) };
        }
    }
    // The child's whole stack: it runs one function that calls pause.
    let mut stack = ChildStack::new(16 << 10);
    // SAFETY: the child runs `sleep_until_killed` on `stack`, which stays allocated until the
    // child is reaped below; it touches no other memory of ours (raw syscalls only: a failing
    // pause would write errno, but pause fails only with EINTR after a handler of ours ran in
    // it), so no lock another thread of ours holds can matter to it.
    let pid = unsafe {
        libc::clone(
            sleep_until_killed,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_NEWUSER | libc::SIGCHLD,
            std::ptr::null_mut(),
        )
    };
    if pid == -1 {
        return Err(io::Error::last_os_error());
    }
    let ns = std::fs::write(format!("/proc/{pid}/uid_map"), uid_map)
        .and_then(|()| std::fs::write(format!("/proc/{pid}/gid_map"), gid_map))
        .and_then(|()| std::fs::File::open(format!("/proc/{pid}/ns/user")));
    // SIGKILL cannot be caught or blocked: the child ends whatever it was doing.
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    let _ = wait4(pid, false);
    drop(stack); // the child is gone: nothing runs on it any more
    Ok(OwnedFd::from(ns?))
}

/// Whether descriptors `a` and `b` of this process are the same open file description (as after
/// `dup` or a shell's `2>&1`: one file offset, one set of status flags), by kcmp(2). Errors when
/// the kernel lacks kcmp (CONFIG_KCMP) or refuses it.
pub fn same_open_file(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> io::Result<bool> {
    /// `KCMP_FILE` (uapi/linux/kcmp.h).
    const KCMP_FILE: libc::c_int = 0;
    // SAFETY: getpid takes no arguments and cannot fail.
    let pid = unsafe { libc::getpid() };
    // SAFETY: kcmp with KCMP_FILE reads only its integer arguments (two pids, two descriptor
    // numbers), no memory of ours.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            pid,
            pid,
            KCMP_FILE,
            a.as_raw_fd() as libc::c_ulong,
            b.as_raw_fd() as libc::c_ulong,
        )
    };
    match ret {
        0 => Ok(true),
        -1 => Err(io::Error::last_os_error()),
        _ => Ok(false),
    }
}

/// Whether a user namespace can be created here, asked the way `watertight run` creates its
/// sandbox's: by a child cloned straight into a new user namespace (it exits at once; nothing
/// outlives the call). With `as_uid`, the calling thread's effective uid is that uid for the
/// clone only (real and saved uids untouched, root's effective capabilities back afterwards; a
/// raw setresuid, so no other thread's credentials change), so the answer is the one an
/// unprivileged owner gets: `kernel.unprivileged_userns_clone = 0` or AppArmor's
/// `apparmor_restrict_unprivileged_userns` refuse it where root would pass. `as_uid` needs a
/// saved uid of 0 (root). The error is the kernel's (EPERM, ENOSPC at `user.max_user_namespaces`,
/// EINVAL without user namespace support).
pub fn probe_user_namespace(as_uid: Option<u32>) -> io::Result<()> {
    extern "C" fn exit_at_once(_: *mut libc::c_void) -> libc::c_int {
        exit_now(0)
    }
    if let Some(uid) = as_uid {
        // SAFETY: setresuid reads no memory of ours; -1 leaves the real and saved uids as they
        // are. Raw syscall: it changes this thread only (glibc's wrapper switches every thread).
        if unsafe { libc::syscall(libc::SYS_setresuid, -1i32, uid, -1i32) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    // The child runs `exit_at_once` on this stack and touches nothing else.
    let mut stack = ChildStack::new(16 << 10);
    // SAFETY: the child shares our memory (CLONE_VM) but only calls _exit on `stack`, which
    // stays allocated until the child is gone: CLONE_VFORK suspends us until it exits, and it
    // is reaped below before the stack is dropped.
    let pid = unsafe {
        libc::clone(
            exit_at_once,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_NEWUSER | libc::SIGCHLD,
            std::ptr::null_mut(),
        )
    };
    let clone_error = (pid == -1).then(io::Error::last_os_error);
    if as_uid.is_some() {
        // SAFETY: as above; the saved uid is 0, so going back to an effective uid of 0 cannot
        // fail, and with it the permitted capabilities become effective again.
        unsafe { libc::syscall(libc::SYS_setresuid, -1i32, 0u32, -1i32) };
    }
    if let Some(e) = clone_error {
        return Err(e);
    }
    let _ = wait4(pid, false);
    drop(stack);
    Ok(())
}

/// pidfd_open(2): a descriptor for task `pid` (in the caller's pid namespace): a process, or
/// a thread that is not its group's leader (PIDFD_THREAD, Linux 6.9, tried when the first call
/// says EINVAL).
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    let mut fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // SAFETY: integer arguments only (PIDFD_THREAD is O_EXCL).
        fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, libc::O_EXCL) };
    }
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pidfd_open returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// pidfd_getfd(2): a duplicate, in this process, of descriptor `target_fd` of the process
/// `pidfd` refers to (needs PTRACE_MODE_ATTACH_REALCREDS over it: the supervisor is root).
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, target_fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only; the pidfd is borrowed for the call.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target_fd, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pidfd_getfd returned a new descriptor (close-on-exec) that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_count_is_positive() {
        assert!(thread_count().unwrap() >= 1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || rx.recv());
        // Other tests' threads come and go meanwhile, so only a lower bound holds.
        assert!(thread_count().unwrap() >= 2, "a second thread is counted");
        drop(tx);
        let _ = t.join();
    }

    #[test]
    fn a_user_namespace_probe_leaves_the_caller_as_it_was() {
        let before = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let ids = |s: &str| {
            s.lines()
                .filter(|l| l.starts_with("Uid:") || l.starts_with("CapEff:"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        // This machine allows user namespaces; elsewhere the answer may be an error, never a
        // changed caller.
        let _ = probe_user_namespace(None);
        if nix::unistd::geteuid().is_root() {
            let _ = probe_user_namespace(Some(65534));
        }
        let after = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        assert_eq!(ids(&before), ids(&after));
    }

    #[test]
    fn same_open_file_tells_a_dup_from_another_open() {
        use std::os::fd::AsFd;
        let (r, w) = nix::unistd::pipe().unwrap();
        let dup = w.try_clone().unwrap();
        assert!(same_open_file(w.as_fd(), dup.as_fd()).unwrap());
        // The two ends of one pipe are two open file descriptions.
        assert!(!same_open_file(r.as_fd(), w.as_fd()).unwrap());
    }

    #[test]
    fn securebits_readable() {
        securebits().unwrap();
    }
}
