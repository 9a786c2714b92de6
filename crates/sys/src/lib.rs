//! The only crate in watertight that contains `unsafe`. Every raw syscall the product needs lives
//! here behind a small safe function with a `// SAFETY:` note; all other crates
//! `#![forbid(unsafe_code)]`.
//!
//! One module per concern:
//! - `process`: clone into new namespaces with a pidfd, fork, posix_spawn-style start
//!   (CLONE_VM|CLONE_VFORK), wait4 with rusage, close_range, default signal actions, securebits
//!   and emptying the capability sets (or keeping a few, raised into the ambient set); whether a user namespace can be created (`doctor`);
//!   whether two descriptors share one open file (kcmp).
//! - `fdpass`: send and receive a descriptor over a unix socket (SCM_RIGHTS).
//! - `mount`: mount_setattr (recursive read-only / propagation changes in one call); detached
//!   trees; a new file system's mount made with fsopen/fsconfig/fsmount (the sandbox's bpffs).
//! - `netdev`: bring an interface (loopback) up in the current network namespace.
//! - `netns`: a network namespace made ahead by a helper sharing our memory (raw syscalls only),
//!   entering one, comparing two.
//! - `seccomp`: install a compiled seccomp filter.
//! - `bpf`: the bpf() calls for cgroup device programs; whether the kernel knows BPF tokens.
//! - `text`: caller and sandbox bytes made visible and quoted for messages, or kept lossless as
//!   text (no syscalls: shared here because every crate that shows such bytes depends on this one).
//! - `tty`: window size, controlling terminal and line discipline ioctls.

// The workspace denies unsafe_code; this crate is where it is allowed (each block with SAFETY).
#![allow(unsafe_code)]

pub mod bpf;
pub mod fdpass;
pub mod mount;
pub mod netdev;
pub mod netns;
pub mod process;
pub mod seccomp;
pub mod text;
pub mod tty;
