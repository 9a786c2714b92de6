//! The VM tier of watertight (`watertight run --isolation vm`): the program runs under a kernel
//! of its own, in a QEMU `microvm` guest, so the host kernel faces QEMU and the KVM/virtio
//! device surface instead of the program's system calls.
//!
//! Entry points: [`run`] on the host (build or reuse the initramfs, start QEMU in its own
//! cgroup and mount namespace, wait, map the guest's verdict), and [`guest::init_main`], which
//! the watertight binary runs when it is the guest's `/init` ([`guest::is_guest_init`]).
//!
//! Module map: `kernel` (the cached kernel and the guest's modules), `initramfs` (the newc
//! archive: watertight as /init plus modules, cached), `qemu` (the command line and the
//! accelerator choice), `host` (one run), `guest` (the init), `wire` (what crosses the
//! boundary: the job in, one JSON line out).

pub mod error;
pub mod guest;
pub mod host;
pub mod initramfs;
pub mod kernel;
pub mod qemu;
pub mod wire;

pub use error::Error;
pub use host::{run, VmOutcome, VmRequest};
