//! The system calls the sandbox's pid 1 and the program make before execve, behind a trait (as
//! youki does) so the layers' logic and their order can be unit-tested without root: `Linux`
//! performs them, `Recorder` (tests) logs them. Every call that decides the sandbox's security
//! goes through here: identity, mounts, capabilities and securebits, no_new_privs, Landlock,
//! MDWE, seccomp, rlimits, inherited descriptors.
//!
//! `contain::confine` (pid 1) and `contain::exec_program` (the program, in a child that shares
//! pid 1's memory until execve) take `&impl Syscall`: the calls are monomorphized, so `Linux`, a
//! unit struct, costs nothing and allocates nothing on that path.

use std::ffi::CString;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::resource::Resource;
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid};

/// Which capability sets one [`Syscall::clear_capabilities`] call empties. Two calls, because
/// emptying the bounding set and setting securebits need CAP_SETPCAP, which emptying the
/// effective set takes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapabilitySets {
    /// The ambient set and the bounding set (every capability this kernel knows).
    AmbientAndBounding,
    /// The effective, permitted and inheritable sets.
    EffectivePermittedInheritable,
}

/// A Landlock ruleset, as paths inside the sandbox: execute only beneath `exec_roots`, open
/// files for writing only beneath `write_roots` (those that do not exist are skipped).
#[derive(Debug, Clone, Copy)]
pub struct LandlockRules<'a> {
    /// Execute is allowed beneath these (the verified root directory's entries).
    pub exec_roots: &'a [PathBuf],
    /// Opening files for writing is allowed beneath these (the writable mounts).
    pub write_roots: &'a [PathBuf],
}

/// The calls the sandbox's pid 1 and the program make on their way to execve. Each method is
/// one system call (or one short fixed sequence, such as clearing a group of capability sets) of
/// the real kernel in [`Linux`].
pub trait Syscall {
    /// mount(2), as the old mount API takes it.
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()>;
    /// mount_setattr: set ATTR_* bits (and a propagation type if non-zero), optionally recursive.
    fn set_mount_attributes(
        &self,
        target: &Path,
        recursive: bool,
        attrs: u64,
        propagation: u64,
    ) -> io::Result<()>;
    /// mkdir(2); an existing directory is success.
    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// Creates `path` exclusively (O_CREAT|O_EXCL) with `mode` and writes `contents`.
    fn write_file(&self, path: &Path, mode: u32, contents: &[u8]) -> io::Result<()>;
    /// symlink(2): `link` pointing to `target`.
    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()>;
    /// pivot_root into `new_root`, the old root detached at once, cwd `/`.
    fn pivot_root(&self, new_root: &Path) -> io::Result<()>;
    /// chdir(2): pid 1 into the workdir, which the program inherits.
    fn chdir(&self, path: &Path) -> io::Result<()>;
    /// sethostname(2), in the sandbox's uts namespace.
    fn sethostname(&self, name: &str) -> io::Result<()>;
    /// Sets network interface `name` up (IFF_UP).
    fn interface_up(&self, name: &str) -> io::Result<()>;
    /// move_mount: attach a detached mount tree (open_tree) at `target`.
    fn attach_tree(&self, tree: BorrowedFd<'_>, target: &Path) -> io::Result<()>;

    /// setgroups: the supplementary groups.
    fn set_groups(&self, groups: &[Gid]) -> io::Result<()>;
    /// setresgid: real, effective and saved gid alike.
    fn set_gid(&self, gid: Gid) -> io::Result<()>;
    /// setresuid: real, effective and saved uid alike.
    fn set_uid(&self, uid: Uid) -> io::Result<()>;
    /// Writes /proc/self/loginuid (the audit login uid).
    fn set_login_uid(&self, uid: Uid) -> io::Result<()>;
    /// prctl(PR_SET_DUMPABLE).
    fn set_dumpable(&self, dumpable: bool) -> io::Result<()>;
    /// prctl(PR_SET_PDEATHSIG).
    fn set_parent_death_signal(&self, signal: Signal) -> io::Result<()>;
    /// unshare(2).
    fn unshare(&self, flags: CloneFlags) -> io::Result<()>;
    /// Empties the capability sets `sets` names, but for the capabilities in `keep` (bit n:
    /// capability n; the ambient set is always emptied).
    fn clear_capabilities(&self, sets: CapabilitySets, keep: u64) -> io::Result<()>;
    /// Raises `caps` (bit n: capability n) into the inheritable and ambient sets, so that the
    /// program keeps them across execve (`--bpf-observe`: CAP_BPF and CAP_PERFMON in the
    /// sandbox's own user namespace).
    fn raise_ambient(&self, caps: u64) -> io::Result<()>;
    /// fsopen("bpf"): a bpffs context owned by the sandbox's user namespace, for the supervisor
    /// to set its delegation options (`layers/bpf.rs`).
    fn open_bpffs_context(&self) -> io::Result<OwnedFd>;
    /// prctl(PR_SET_SECUREBITS).
    fn set_securebits(&self, bits: u32) -> io::Result<()>;
    /// prctl(PR_SET_NO_NEW_PRIVS).
    fn set_no_new_privs(&self) -> io::Result<()>;
    /// Builds the Landlock ruleset and restricts the calling thread with it; anything short of
    /// full enforcement is an error.
    fn landlock_restrict_self(&self, rules: &LandlockRules<'_>) -> io::Result<()>;
    /// prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN): writable memory never becomes executable.
    fn refuse_exec_gain(&self) -> io::Result<()>;
    /// seccomp(SECCOMP_SET_MODE_FILTER): installs a compiled filter; returns its
    /// user-notification listener when `flags` asks for one.
    fn install_seccomp(
        &self,
        program: &[libc::sock_filter],
        flags: u32,
    ) -> io::Result<Option<OwnedFd>>;
    /// Sends `fd` over the unix socket `socket` (SCM_RIGHTS).
    fn send_fd(&self, socket: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()>;
    /// Joins the calling thread to the cgroup v1 hierarchy of each open `tasks` file (writes
    /// "0": `watertight_cgroups::join_self`).
    fn join_cgroups(&self, tasks: &[OwnedFd]) -> io::Result<()>;
    /// setsid: a new session, without a controlling terminal.
    fn setsid(&self) -> io::Result<()>;
    /// close_range(first, ~0, CLOSE_RANGE_CLOEXEC): every descriptor from `first` up closes at
    /// execve.
    fn cloexec_from(&self, first: RawFd) -> io::Result<()>;
    /// setrlimit(2).
    fn set_rlimit(&self, resource: Resource, soft: u64, hard: u64) -> io::Result<()>;
}

/// The real kernel.
pub struct Linux;

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

impl Syscall for Linux {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        nix::mount::mount(source, target, fstype, flags, data).map_err(io::Error::from)
    }

    fn set_mount_attributes(
        &self,
        target: &Path,
        recursive: bool,
        attrs: u64,
        propagation: u64,
    ) -> io::Result<()> {
        watertight_sys::mount::set_attributes(&cpath(target)?, recursive, attrs, propagation)
    }

    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        match nix::unistd::mkdir(path, nix::sys::stat::Mode::from_bits_truncate(mode)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn write_file(&self, path: &Path, mode: u32, contents: &[u8]) -> io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)?;
        f.write_all(contents)
    }

    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        std::os::unix::fs::symlink(target, link)
    }

    fn pivot_root(&self, new_root: &Path) -> io::Result<()> {
        // pivot_root(".", "."): the old root ends up stacked under the new one and is detached at
        // once, so no directory for it is needed inside the sandbox.
        nix::unistd::chdir(new_root)?;
        nix::unistd::pivot_root(".", ".")?;
        nix::mount::umount2(".", MntFlags::MNT_DETACH)?;
        nix::unistd::chdir("/")?;
        Ok(())
    }

    fn chdir(&self, path: &Path) -> io::Result<()> {
        nix::unistd::chdir(path).map_err(io::Error::from)
    }

    fn sethostname(&self, name: &str) -> io::Result<()> {
        nix::unistd::sethostname(name).map_err(io::Error::from)
    }

    fn interface_up(&self, name: &str) -> io::Result<()> {
        watertight_sys::netdev::set_up(name)
    }

    fn attach_tree(&self, tree: BorrowedFd<'_>, target: &Path) -> io::Result<()> {
        watertight_sys::mount::attach_tree(tree, &cpath(target)?)
    }

    fn set_groups(&self, groups: &[Gid]) -> io::Result<()> {
        nix::unistd::setgroups(groups).map_err(io::Error::from)
    }

    fn set_gid(&self, gid: Gid) -> io::Result<()> {
        nix::unistd::setresgid(gid, gid, gid).map_err(io::Error::from)
    }

    fn set_uid(&self, uid: Uid) -> io::Result<()> {
        nix::unistd::setresuid(uid, uid, uid).map_err(io::Error::from)
    }

    fn set_login_uid(&self, uid: Uid) -> io::Result<()> {
        std::fs::write("/proc/self/loginuid", uid.as_raw().to_string())
    }

    fn set_dumpable(&self, dumpable: bool) -> io::Result<()> {
        nix::sys::prctl::set_dumpable(dumpable).map_err(io::Error::from)
    }

    fn set_parent_death_signal(&self, signal: Signal) -> io::Result<()> {
        nix::sys::prctl::set_pdeathsig(signal).map_err(io::Error::from)
    }

    fn unshare(&self, flags: CloneFlags) -> io::Result<()> {
        nix::sched::unshare(flags).map_err(io::Error::from)
    }

    fn clear_capabilities(&self, sets: CapabilitySets, keep: u64) -> io::Result<()> {
        match sets {
            CapabilitySets::AmbientAndBounding => {
                watertight_sys::process::clear_ambient_and_bounding_except(keep)
            }
            CapabilitySets::EffectivePermittedInheritable => {
                watertight_sys::process::clear_capability_sets_except(keep)
            }
        }
    }

    fn raise_ambient(&self, caps: u64) -> io::Result<()> {
        watertight_sys::process::raise_ambient(caps)
    }

    fn open_bpffs_context(&self) -> io::Result<OwnedFd> {
        watertight_sys::mount::fs_open(c"bpf")
    }

    fn set_securebits(&self, bits: u32) -> io::Result<()> {
        watertight_sys::process::set_securebits(bits)
    }

    fn set_no_new_privs(&self) -> io::Result<()> {
        nix::sys::prctl::set_no_new_privs().map_err(io::Error::from)
    }

    fn landlock_restrict_self(&self, rules: &LandlockRules<'_>) -> io::Result<()> {
        let exec: Vec<&Path> = rules.exec_roots.iter().map(PathBuf::as_path).collect();
        let write: Vec<&Path> = rules.write_roots.iter().map(PathBuf::as_path).collect();
        watertight_integrity::landlock_exec_write_ruleset(&exec, &write)
            .and_then(|r| r.restrict_self())
            .map_err(io::Error::other)
    }

    fn refuse_exec_gain(&self) -> io::Result<()> {
        watertight_sys::process::refuse_exec_gain()
    }

    fn install_seccomp(
        &self,
        program: &[libc::sock_filter],
        flags: u32,
    ) -> io::Result<Option<OwnedFd>> {
        watertight_sys::seccomp::install_filter(program, flags)
    }

    fn send_fd(&self, socket: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
        watertight_sys::fdpass::send_fd(socket, fd)
    }

    fn join_cgroups(&self, tasks: &[OwnedFd]) -> io::Result<()> {
        watertight_cgroups::join_self(tasks)
    }

    fn setsid(&self) -> io::Result<()> {
        nix::unistd::setsid().map(drop).map_err(io::Error::from)
    }

    fn cloexec_from(&self, first: RawFd) -> io::Result<()> {
        watertight_sys::process::cloexec_from(first)
    }

    fn set_rlimit(&self, resource: Resource, soft: u64, hard: u64) -> io::Result<()> {
        nix::sys::resource::setrlimit(resource, soft, hard).map_err(io::Error::from)
    }
}

/// Records calls instead of making them; optionally fails the n-th call. For unit tests.
#[cfg(test)]
pub mod recorder {
    use super::*;
    use std::cell::RefCell;

    /// Each call as one line of text, in the order made.
    #[derive(Default)]
    pub struct Recorder {
        /// Every call so far, in order.
        pub calls: RefCell<Vec<String>>,
        /// Index of the call that fails with EPERM; None: every call succeeds.
        pub fail_at: Option<usize>,
    }

    impl Recorder {
        /// Logs one call (or another event a test wants in the same order, such as a go from the
        /// supervisor); fails it with EPERM when it is call number `fail_at` (from 0).
        pub fn log(&self, s: String) -> io::Result<()> {
            let mut c = self.calls.borrow_mut();
            c.push(s);
            if Some(c.len() - 1) == self.fail_at {
                return Err(io::Error::from_raw_os_error(libc::EPERM));
            }
            Ok(())
        }

        /// Where the first call starting with `prefix` was made; panics naming it if none was.
        pub fn position(&self, prefix: &str) -> usize {
            let calls = self.calls.borrow();
            calls
                .iter()
                .position(|c| c.starts_with(prefix))
                .unwrap_or_else(|| panic!("no call {prefix:?} in {calls:#?}"))
        }
    }

    impl Syscall for Recorder {
        fn mount(
            &self,
            s: Option<&Path>,
            t: &Path,
            fs: Option<&str>,
            f: MsFlags,
            d: Option<&str>,
        ) -> io::Result<()> {
            self.log(format!(
                "mount {:?} {} {:?} {:?} {:?}",
                s,
                t.display(),
                fs,
                f,
                d
            ))
        }
        fn set_mount_attributes(&self, t: &Path, r: bool, a: u64, p: u64) -> io::Result<()> {
            self.log(format!(
                "setattr {} recursive={r} attrs={a:#x} propagation={p:#x}",
                t.display()
            ))
        }
        fn mkdir(&self, p: &Path, m: u32) -> io::Result<()> {
            self.log(format!("mkdir {} {m:o}", p.display()))
        }
        fn write_file(&self, p: &Path, m: u32, c: &[u8]) -> io::Result<()> {
            self.log(format!("write {} {m:o} {} bytes", p.display(), c.len()))
        }
        fn symlink(&self, t: &Path, l: &Path) -> io::Result<()> {
            self.log(format!("symlink {} -> {}", l.display(), t.display()))
        }
        fn pivot_root(&self, n: &Path) -> io::Result<()> {
            self.log(format!("pivot_root {}", n.display()))
        }
        fn chdir(&self, p: &Path) -> io::Result<()> {
            self.log(format!("chdir {}", p.display()))
        }
        fn sethostname(&self, n: &str) -> io::Result<()> {
            self.log(format!("sethostname {n}"))
        }
        fn interface_up(&self, n: &str) -> io::Result<()> {
            self.log(format!("up {n}"))
        }
        fn attach_tree(&self, _tree: BorrowedFd<'_>, t: &Path) -> io::Result<()> {
            self.log(format!("attach_tree {}", t.display()))
        }
        fn set_groups(&self, g: &[Gid]) -> io::Result<()> {
            self.log(format!("setgroups {g:?}"))
        }
        fn set_gid(&self, g: Gid) -> io::Result<()> {
            self.log(format!("setresgid {g}"))
        }
        fn set_uid(&self, u: Uid) -> io::Result<()> {
            self.log(format!("setresuid {u}"))
        }
        fn set_login_uid(&self, u: Uid) -> io::Result<()> {
            self.log(format!("loginuid {u}"))
        }
        fn set_dumpable(&self, d: bool) -> io::Result<()> {
            self.log(format!("dumpable {d}"))
        }
        fn set_parent_death_signal(&self, s: Signal) -> io::Result<()> {
            self.log(format!("pdeathsig {s}"))
        }
        fn unshare(&self, f: CloneFlags) -> io::Result<()> {
            self.log(format!("unshare {f:?}"))
        }
        fn clear_capabilities(&self, s: CapabilitySets, keep: u64) -> io::Result<()> {
            if keep == 0 {
                self.log(format!("clear capabilities {s:?}"))
            } else {
                self.log(format!("clear capabilities {s:?} keep={keep:#x}"))
            }
        }
        fn raise_ambient(&self, caps: u64) -> io::Result<()> {
            self.log(format!("ambient {caps:#x}"))
        }
        fn open_bpffs_context(&self) -> io::Result<OwnedFd> {
            self.log("fsopen bpf".into())?;
            Ok(std::fs::File::open("/dev/null")?.into())
        }
        fn set_securebits(&self, b: u32) -> io::Result<()> {
            self.log(format!("securebits {b:#x}"))
        }
        fn set_no_new_privs(&self) -> io::Result<()> {
            self.log("no_new_privs".into())
        }
        fn landlock_restrict_self(&self, r: &LandlockRules<'_>) -> io::Result<()> {
            self.log(format!(
                "landlock exec={:?} write={:?}",
                r.exec_roots, r.write_roots
            ))
        }
        fn refuse_exec_gain(&self) -> io::Result<()> {
            self.log("mdwe refuse_exec_gain".into())
        }
        fn install_seccomp(
            &self,
            program: &[libc::sock_filter],
            flags: u32,
        ) -> io::Result<Option<OwnedFd>> {
            self.log(format!(
                "seccomp {} instructions flags={flags:#x}",
                program.len()
            ))?;
            if flags & watertight_sys::seccomp::FILTER_FLAG_NEW_LISTENER == 0 {
                return Ok(None);
            }
            // A real descriptor in the listener's place, for the hand-over that follows.
            Ok(Some(std::fs::File::open("/dev/null")?.into()))
        }
        fn send_fd(&self, _socket: BorrowedFd<'_>, _fd: BorrowedFd<'_>) -> io::Result<()> {
            self.log("send_fd".into())
        }
        fn join_cgroups(&self, tasks: &[OwnedFd]) -> io::Result<()> {
            self.log(format!("join cgroups ({} v1)", tasks.len()))
        }
        fn setsid(&self) -> io::Result<()> {
            self.log("setsid".into())
        }
        fn cloexec_from(&self, first: RawFd) -> io::Result<()> {
            self.log(format!("cloexec_from {first}"))
        }
        fn set_rlimit(&self, r: Resource, soft: u64, hard: u64) -> io::Result<()> {
            self.log(format!("setrlimit {r:?} {soft}/{hard}"))
        }
    }
}
