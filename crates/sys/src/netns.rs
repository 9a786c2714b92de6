//! A network namespace made ahead of time by a helper process, so that its cost (the kernel
//! registers loopback and every per-namespace sysctl table: a tenth of a sandbox's start here)
//! is paid on another CPU while this process does something else. The helper shares this
//! process's memory (CLONE_VM, no copy of its page tables) and makes only raw system calls
//! (inline `syscall` instructions, so it never writes the `errno` it would share with the
//! thread that started it): it unshares a network namespace, brings `lo` up in it, says so on
//! a pipe and sleeps until killed. [`PreparingNet::take`] waits for that word, opens the
//! namespace through `/proc/PID/ns/net` and ends the helper.
//!
//! The namespace belongs to this process's user namespace (the initial one for root): a
//! process in a child user namespace that joins it has no capability over it.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// What the helper writes on its pipe: 0 when `lo` is up in its new namespace, else the
/// failing step (1 unshare, 2 socket, 3 SIOCGIFFLAGS, 4 SIOCSIFFLAGS, 5 prctl).
type Word = u8;

/// A helper making a network namespace (see the module's notes). Dropping it kills and reaps
/// the helper, and the namespace goes with it unless [`PreparingNet::take`] opened it.
#[derive(Debug)]
pub struct PreparingNet {
    pid: i32,
    /// The read end of the helper's pipe.
    word: OwnedFd,
    /// Its write end: the helper shares our descriptor table, so it stays open until the
    /// helper is gone.
    word_w: OwnedFd,
    /// The helper's stack: it must outlive the helper.
    stack: crate::process::ChildStack,
    /// The helper's argument block (the pipe's write end), read by the helper.
    args: Box<HelperArgs>,
    reaped: bool,
}

#[derive(Debug)]
#[repr(C)]
struct HelperArgs {
    /// The pid of the process that started the helper: if it is no longer the helper's parent
    /// once the parent-death signal is set, it died before, and the signal will never come.
    parent: libc::c_long,
    word_fd: libc::c_long,
    /// The helper's socket while it is open (-1 otherwise): it lives in the descriptor table
    /// the helper shares with us, so a helper killed before closing it leaves it to us.
    sock_fd: std::sync::atomic::AtomicI64,
}

/// Raw system calls with up to three arguments that return the kernel's result (negative
/// errno on failure) and touch no memory of the caller's but what the arguments point at.
#[cfg(target_arch = "x86_64")]
unsafe fn raw_syscall3(
    nr: libc::c_long,
    a: libc::c_long,
    b: libc::c_long,
    c: libc::c_long,
) -> libc::c_long {
    let ret: libc::c_long;
    // SAFETY: the caller passes arguments valid for `nr`; the syscall instruction clobbers rcx
    // and r11 only, and the kernel returns in rax.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

#[cfg(target_arch = "aarch64")]
unsafe fn raw_syscall3(
    nr: libc::c_long,
    a: libc::c_long,
    b: libc::c_long,
    c: libc::c_long,
) -> libc::c_long {
    let ret: libc::c_long;
    // SAFETY: the caller passes arguments valid for `nr`; svc 0 takes the number in x8 and
    // returns in x0.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a => ret,
            in("x1") b,
            in("x2") c,
            options(nostack),
        );
    }
    ret
}

/// The helper: runs on its own stack in this process's memory, raw system calls only.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
extern "C" fn make_net_namespace(arg: *mut libc::c_void) -> libc::c_int {
    // Every call below is a raw system call on integers or on the ifreq below, which lives on
    // this helper's own stack.
    // SAFETY: `arg` points at the HelperArgs the parent keeps alive until the helper is
    // reaped; the helper only reads it.
    let args = unsafe { &*(arg as *const HelperArgs) };
    let word_fd = args.word_fd;
    let sock_fd = &args.sock_fd;
    let say = |w: Word| {
        let byte = w;
        // SAFETY: writes one byte from this stack frame.
        unsafe {
            raw_syscall3(
                libc::SYS_write,
                word_fd,
                &byte as *const u8 as libc::c_long,
                1,
            )
        };
    };
    let step = (|| -> Result<(), Word> {
        // SAFETY: integer arguments only.
        if unsafe {
            raw_syscall3(
                libc::SYS_prctl,
                libc::PR_SET_PDEATHSIG as _,
                libc::SIGKILL as _,
                0,
            )
        } < 0
        {
            return Err(5);
        }
        // SAFETY: integer arguments only.
        if unsafe { raw_syscall3(libc::SYS_getppid, 0, 0, 0) } != args.parent {
            // SAFETY: ends this helper only (exit, not exit_group: nothing else runs in it).
            unsafe { raw_syscall3(libc::SYS_exit, 0, 0, 0) };
        }
        // SAFETY: integer arguments only.
        if unsafe { raw_syscall3(libc::SYS_unshare, libc::CLONE_NEWNET as _, 0, 0) } < 0 {
            return Err(1);
        }
        // SAFETY: integer arguments only.
        let sock = unsafe {
            raw_syscall3(
                libc::SYS_socket,
                libc::AF_INET as _,
                (libc::SOCK_DGRAM | libc::SOCK_CLOEXEC) as _,
                0,
            )
        };
        if sock < 0 {
            return Err(2);
        }
        sock_fd.store(sock, std::sync::atomic::Ordering::SeqCst);
        // SAFETY: ifreq is plain old data; zeroed is valid.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        req.ifr_name[0] = b'l' as libc::c_char;
        req.ifr_name[1] = b'o' as libc::c_char;
        let get = &mut req as *mut libc::ifreq as libc::c_long;
        // SAFETY: req is a live ifreq on this stack with a NUL-terminated name.
        if unsafe { raw_syscall3(libc::SYS_ioctl, sock, libc::SIOCGIFFLAGS as _, get) } < 0 {
            return Err(3);
        }
        // SAFETY: SIOCGIFFLAGS initialised the flags member of the union.
        let flags = unsafe { req.ifr_ifru.ifru_flags } | libc::IFF_UP as libc::c_short;
        req.ifr_ifru.ifru_flags = flags;
        let set = &req as *const libc::ifreq as libc::c_long;
        // SAFETY: as above; the kernel reads the name and flags.
        if unsafe { raw_syscall3(libc::SYS_ioctl, sock, libc::SIOCSIFFLAGS as _, set) } < 0 {
            return Err(4);
        }
        sock_fd.store(-1, std::sync::atomic::Ordering::SeqCst);
        // SAFETY: closes the helper's own socket.
        unsafe { raw_syscall3(libc::SYS_close, sock, 0, 0) };
        Ok(())
    })();
    say(step.err().unwrap_or(0));
    loop {
        // SAFETY: pause takes no arguments; the parent ends the helper with SIGKILL (or the
        // parent-death signal does).
        unsafe { raw_syscall3(libc::SYS_pause, 0, 0, 0) };
    }
}

impl PreparingNet {
    /// Starts the helper (root only: unsharing a network namespace needs CAP_SYS_ADMIN) and
    /// returns at once; the namespace is made on whichever CPU the helper runs.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    pub fn start() -> io::Result<PreparingNet> {
        let (word, word_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let args = Box::new(HelperArgs {
            parent: std::process::id() as libc::c_long,
            word_fd: word_w.as_raw_fd() as libc::c_long,
            sock_fd: std::sync::atomic::AtomicI64::new(-1),
        });
        let mut stack = crate::process::ChildStack::new(16 << 10);
        // SAFETY: the helper runs `make_net_namespace` on `stack` with `args`, both owned by
        // the returned value, which kills and reaps the helper before dropping them; the
        // helper makes raw system calls only, so it takes no lock and writes no errno of ours.
        // It shares our descriptor table (CLONE_FILES): it holds no copy of a pipe end whose
        // EOF a supervisor of ours waits for; it uses only its own socket (closed by itself)
        // and the pipe's write end, which we keep open until it is gone.
        let pid = unsafe {
            libc::clone(
                make_net_namespace,
                stack.top(),
                libc::CLONE_VM | libc::CLONE_FILES | libc::SIGCHLD,
                &*args as *const HelperArgs as *mut libc::c_void,
            )
        };
        if pid == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(PreparingNet {
            pid,
            word,
            word_w,
            stack,
            args,
            reaped: false,
        })
    }

    /// Not available on this architecture: callers make the namespace the usual way.
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub fn start() -> io::Result<PreparingNet> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Waits until the helper has its namespace with `lo` up, opens the namespace and ends the
    /// helper. An error names the step that failed in the helper.
    pub fn take(mut self) -> io::Result<OwnedFd> {
        use std::os::fd::AsFd;
        // The helper shares our descriptor table, so its death would not end the pipe: a
        // helper that never answers (killed, stuck) is given up after a while.
        let mut fds = [nix::poll::PollFd::new(
            self.word.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16))? == 0 {
            self.end();
            return Err(io::Error::other(
                "the network namespace helper did not answer in 5 s",
            ));
        }
        let mut word = [0u8; 1];
        let n = nix::unistd::read(&self.word, &mut word)?;
        let result = match (n, word[0]) {
            (1, 0) => std::fs::File::open(format!("/proc/{}/ns/net", self.pid)).map(OwnedFd::from),
            (1, step) => Err(io::Error::other(format!(
                "the network namespace helper failed at step {step} (1 unshare, 2 socket, 3/4 lo up, 5 prctl)"
            ))),
            _ => Err(io::Error::other("the network namespace helper died")),
        };
        self.end();
        result
    }

    fn end(&mut self) {
        if !self.reaped {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid),
                nix::sys::signal::SIGKILL,
            );
            let _ = crate::process::wait4(self.pid, false);
            self.reaped = true;
            // Killed between its socket() and close(): the socket is ours to close.
            let sock = self
                .args
                .sock_fd
                .swap(-1, std::sync::atomic::Ordering::SeqCst);
            if sock >= 0 {
                // SAFETY: the helper is gone; this descriptor is the socket it opened in the
                // table we share and never closed, so no one else owns it.
                drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(sock as i32) });
            }
        }
    }
}

impl Drop for PreparingNet {
    fn drop(&mut self) {
        self.end();
        // Only now, with the helper gone, may its stack, arguments and pipe go (the fields
        // drop after this).
        let _ = (&self.stack, &self.word_w);
    }
}

/// The calling thread's network namespace, to return to after [`enter`].
pub fn current() -> io::Result<OwnedFd> {
    Ok(OwnedFd::from(std::fs::File::open(
        "/proc/thread-self/ns/net",
    )?))
}

/// setns(2) of the calling thread into network namespace `ns`.
pub fn enter(ns: &OwnedFd) -> io::Result<()> {
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// The user namespace that owns namespace `ns` (ioctl NS_GET_USERNS).
pub fn owner(ns: &impl AsRawFd) -> io::Result<OwnedFd> {
    /// `NS_GET_USERNS`, `_IO(0xb7, 0x1)` (uapi/linux/nsfs.h).
    const NS_GET_USERNS: libc::c_ulong = 0xb701;
    // SAFETY: an ioctl with no argument on a descriptor we hold; it returns a new descriptor.
    let fd = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_USERNS as _) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just made this descriptor for us.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Whether two namespace descriptors are the same namespace (same nsfs inode).
pub fn same(a: &impl std::os::fd::AsFd, b: &impl std::os::fd::AsFd) -> io::Result<bool> {
    let (sa, sb) = (nix::sys::stat::fstat(a)?, nix::sys::stat::fstat(b)?);
    Ok(sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Root only (unshare needs CAP_SYS_ADMIN): a namespace of its own with lo up, and no
    /// helper left.
    #[test]
    fn a_prepared_namespace_is_new_with_lo_up_and_the_helper_is_gone() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP: needs root");
            return;
        }
        let preparing = PreparingNet::start().unwrap();
        let pid = preparing.pid;
        let ns = preparing.take().unwrap();
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "helper left"
        );
        let own = current().unwrap();
        assert!(!same(&ns, &own).unwrap());
        // nsenter runs as our child: /proc/self would be its own, so the path goes through ours.
        let flags = std::process::Command::new("nsenter")
            .arg(format!(
                "--net=/proc/{}/fd/{}",
                std::process::id(),
                ns.as_raw_fd()
            ))
            .args(["ip", "-o", "link", "show", "lo"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&flags.stdout);
        assert!(text.contains("UP"), "{text}");
        // Dropping one that was never taken ends its helper too.
        let preparing = PreparingNet::start().unwrap();
        let pid = preparing.pid;
        drop(preparing);
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "helper left"
        );
    }
}
