//! watertight's built-in allowlist. Docker's default profile is the reference for what ordinary
//! programs, compilers, interpreters and test harnesses need; on top of it this profile refuses
//! everything that manipulates the kernel's shared state or the sandbox's own walls (mounts,
//! namespaces, ptrace, BPF, keyrings, io_uring, modules, time, ...). docs/seccomp.md lists the
//! choices and why.
//!
//! The same profile ships as `profiles/default.json` for users to copy and edit; a test keeps the
//! file equal to [`default_profile`] (regenerate with `WATERTIGHT_REGENERATE_PROFILES=1`).

use crate::profile::{
    Action, Arch, ArgCondition, ArgOp, Profile, SyscallRule, WatertightExtension,
};

/// The shipped copy of [`default_profile`], as JSON.
pub const DEFAULT_PROFILE_JSON: &str = include_str!("../profiles/default.json");

/// Syscalls allowed unconditionally (x86_64 names).
pub const ALLOWED: &[&str] = &[
    // Processes, threads and their exit.
    "arch_prctl",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "fork",
    "vfork",
    "wait4",
    "waitid",
    "get_robust_list",
    "set_robust_list",
    "set_tid_address",
    "get_thread_area",
    "set_thread_area",
    "rseq",
    "prctl",
    "restart_syscall",
    "pidfd_open",
    "pidfd_send_signal",
    "process_mrelease",
    "kill",
    "tkill",
    "tgkill",
    // Identity (no_new_privs and the user namespace bound what these can reach).
    "getpid",
    "getppid",
    "gettid",
    "getpgid",
    "getpgrp",
    "getsid",
    "setsid",
    "setpgid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "setfsuid",
    "setfsgid",
    "capget",
    "capset",
    // Signals.
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "pause",
    // Memory.
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "mincore",
    "msync",
    "mlock",
    "mlock2",
    "mlockall",
    "munlock",
    "munlockall",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "remap_file_pages",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "get_mempolicy",
    "map_shadow_stack",
    "mseal",
    // Return path of uretprobes (only valid from the kernel's trampoline).
    "uretprobe",
    // Futexes and scheduling.
    "futex",
    "futex_waitv",
    "futex_wait",
    "futex_wake",
    "futex_requeue",
    "sched_yield",
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_getattr",
    "sched_setattr",
    "sched_getparam",
    "sched_setparam",
    "sched_getscheduler",
    "sched_setscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    "getpriority",
    "setpriority",
    "ioprio_get",
    "ioprio_set",
    "getcpu",
    // Resource limits and accounting of oneself.
    "getrlimit",
    "setrlimit",
    "prlimit64",
    "getrusage",
    "times",
    "sysinfo",
    "uname",
    "getrandom",
    // Time (reading it; setting it is refused).
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "gettimeofday",
    "time",
    "nanosleep",
    "alarm",
    "getitimer",
    "setitimer",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    // File descriptors and I/O.
    "read",
    "readv",
    "pread64",
    "preadv",
    "preadv2",
    "write",
    "writev",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "lseek",
    "close",
    "close_range",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "flock",
    "pipe",
    "pipe2",
    "sendfile",
    "splice",
    "tee",
    "vmsplice",
    "copy_file_range",
    "readahead",
    "fadvise64",
    "fallocate",
    "ftruncate",
    "truncate",
    "fsync",
    "fdatasync",
    "sync",
    "syncfs",
    "sync_file_range",
    "eventfd",
    "eventfd2",
    "cachestat",
    // Polling.
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_wait",
    "epoll_wait_old",
    "epoll_pwait",
    "epoll_pwait2",
    "inotify_init",
    "inotify_init1",
    "inotify_add_watch",
    "inotify_rm_watch",
    "fanotify_mark",
    // Files and directories (Landlock, mounts and the devices cgroup bound what they reach).
    "open",
    "openat",
    "openat2",
    "creat",
    "access",
    "faccessat",
    "faccessat2",
    "stat",
    "lstat",
    "fstat",
    "newfstatat",
    "statx",
    "statfs",
    "fstatfs",
    "getdents",
    "getdents64",
    "getcwd",
    "chdir",
    "fchdir",
    "mkdir",
    "mkdirat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "unlink",
    "unlinkat",
    "readlink",
    "readlinkat",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "fchown",
    "fchownat",
    "lchown",
    "umask",
    "utime",
    "utimes",
    "utimensat",
    "futimesat",
    "mknod",
    "mknodat",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "setxattrat",
    "getxattrat",
    "listxattrat",
    "removexattrat",
    "file_getattr",
    "file_setattr",
    // Sockets (socket() itself is allowed per family below).
    "socketpair",
    "bind",
    "connect",
    "listen",
    "accept",
    "accept4",
    "getsockname",
    "getpeername",
    "getsockopt",
    "setsockopt",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "shutdown",
    // System V and POSIX IPC (the sandbox's IPC namespace isolates them).
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    // Linux AIO (not io_uring) on contexts that exist; io_setup itself is refused (below).
    "io_destroy",
    "io_submit",
    "io_cancel",
    "io_getevents",
    "io_pgetevents",
    // Self-sandboxing only ever narrows what a process can do.
    "seccomp",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
];

/// Syscalls whose refusal is a security violation (see `ViolationAction`).
pub const VIOLATION_SYSCALLS: &[&str] = &[
    // Mount family.
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "open_tree",
    "move_mount",
    "mount_setattr",
    "open_tree_attr",
    // Namespaces (clone with CLONE_NEW* is matched by argument).
    "unshare",
    "setns",
    "clone",
    // Reaching into other processes.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    // Kernel attack surface.
    "bpf",
    "kexec_load",
    "kexec_file_load",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "init_module",
    "finit_module",
    "delete_module",
    "perf_event_open",
    "userfaultfd",
    "open_by_handle_at",
    // Raw packet sockets (socket(AF_PACKET) is matched by argument).
    "socket",
];

/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
/// CLONE_NEWNET: the namespace flags clone() accepts (CLONE_NEWTIME overlaps the exit-signal
/// byte of clone() and is only reachable through clone3/unshare, both refused).
pub const CLONE_NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

const LOW_32_BITS: u64 = 0xffff_ffff;
const EPERM: u32 = 1;
const ENOSYS: u32 = 38;
const AF_PACKET: u64 = 17;
const AF_ALG: u64 = 38;
const AF_VSOCK: u64 = 40;
const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541c;

/// The built-in allowlist profile.
pub fn default_profile() -> Profile {
    let clone_ns_mask: u64 = CLONE_NAMESPACE_FLAGS.iter().fold(0, |m, f| m | f);
    let mut syscalls = Vec::new();

    let mut allowed = SyscallRule::new(&[], Action::Allow);
    allowed.names = ALLOWED.iter().map(|s| s.to_string()).collect();
    allowed.comment = Some("ordinary programs, compilers, interpreters, test harnesses".into());
    syscalls.push(allowed);

    let mut clone = SyscallRule::new(&["clone"], Action::Allow);
    clone.comment = Some("clone without namespace flags".into());
    clone.args = vec![masked(0, clone_ns_mask, 0)];
    syscalls.push(clone);

    let mut clone_ns = SyscallRule::new(&["clone"], Action::Errno);
    clone_ns.errno_ret = Some(EPERM);
    clone_ns.comment = Some(
        "clone with any namespace flag (conditions on one argument are ORed): a violation".into(),
    );
    clone_ns.args = CLONE_NAMESPACE_FLAGS
        .iter()
        .map(|f| masked(0, *f, *f))
        .collect();
    syscalls.push(clone_ns);

    let mut clone3 = SyscallRule::new(&["clone3"], Action::Errno);
    clone3.errno_ret = Some(ENOSYS);
    clone3.comment = Some(
        "seccomp cannot read clone3's flags (in memory); ENOSYS makes glibc fall back to clone"
            .into(),
    );
    syscalls.push(clone3);

    let mut io_setup = SyscallRule::new(&["io_setup"], Action::Errno);
    io_setup.errno_ret = Some(ENOSYS);
    io_setup.comment = Some(
        "every AIO context counts against the host-wide fs.aio-max-nr, which no cgroup or user \
         limit bounds: one sandbox could take it all; ENOSYS reads as no kernel AIO, and \
         libaio users and glibc's POSIX AIO (threads) carry on without it"
            .into(),
    );
    syscalls.push(io_setup);

    let mut socket = SyscallRule::new(&["socket"], Action::Allow);
    socket.comment = Some(
        "every address family but AF_PACKET (17), AF_ALG (38) and AF_VSOCK (40), matched on the \
         low 32 bits the kernel reads"
            .into(),
    );
    socket.args = low32_set_conditions(
        0,
        &[
            0..=AF_PACKET - 1,
            AF_PACKET + 1..=AF_ALG - 1,
            AF_ALG + 1..=AF_VSOCK - 1,
            AF_VSOCK + 1..=63,
        ],
    );
    syscalls.push(socket);

    let mut packet = SyscallRule::new(&["socket"], Action::Errno);
    packet.errno_ret = Some(EPERM);
    packet.comment = Some("raw packet sockets (AF_PACKET): a violation".into());
    packet.args = vec![masked(0, LOW_32_BITS, AF_PACKET)];
    syscalls.push(packet);

    let mut personality = SyscallRule::new(&["personality"], Action::Allow);
    personality.comment = Some("only PER_LINUX (0) and the query (0xffffffff)".into());
    personality.args = vec![
        masked(0, LOW_32_BITS, 0),
        masked(0, LOW_32_BITS, LOW_32_BITS),
    ];
    syscalls.push(personality);

    let mut ioctl = SyscallRule::new(&["ioctl"], Action::Allow);
    ioctl.comment = Some(
        "every request but TIOCSTI (0x5412) and TIOCLINUX (0x541c), matched on the low 32 bits"
            .into(),
    );
    ioctl.args = low32_set_conditions(
        1,
        &[
            0..=TIOCSTI - 1,
            TIOCSTI + 1..=TIOCLINUX - 1,
            TIOCLINUX + 1..=LOW_32_BITS,
        ],
    );
    syscalls.push(ioctl);

    Profile {
        default_action: Action::Errno,
        default_errno_ret: Some(EPERM),
        architectures: vec![Arch::X86_64],
        arch_map: Vec::new(),
        flags: Vec::new(),
        listener_path: None,
        listener_metadata: None,
        syscalls,
        watertight: Some(WatertightExtension {
            violation_syscalls: VIOLATION_SYSCALLS.iter().map(|s| s.to_string()).collect(),
        }),
    }
}

fn masked(index: u32, mask: u64, value: u64) -> ArgCondition {
    ArgCondition {
        index,
        value: mask,
        value_two: Some(value),
        op: ArgOp::MaskedEqual,
    }
}

/// Conditions (ORed: all on one argument) matching exactly the 32-bit values in `ranges`,
/// whatever the upper 32 bits hold. Each range splits into aligned power-of-two blocks, each one
/// MASKED_EQ. Matching only the low half matters because the kernel truncates int arguments: a
/// plain 64-bit `!= 17` would let `0x1_0000_0011` through as AF_PACKET.
pub fn low32_set_conditions(
    index: u32,
    ranges: &[std::ops::RangeInclusive<u64>],
) -> Vec<ArgCondition> {
    let mut out = Vec::new();
    for range in ranges {
        let (mut lo, hi) = (*range.start(), (*range.end()).min(LOW_32_BITS));
        while lo <= hi {
            // Largest aligned block starting at `lo` that stays within `hi`.
            let mut size: u64 = if lo == 0 {
                1 << 32
            } else {
                1 << lo.trailing_zeros().min(32)
            };
            while lo + size - 1 > hi {
                size >>= 1;
            }
            out.push(masked(index, LOW_32_BITS & !(size - 1), lo));
            lo += size;
        }
    }
    out
}
