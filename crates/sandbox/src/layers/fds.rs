//! File descriptor layer: the program gets stdin, stdout and stderr and nothing else. Every
//! other inherited descriptor is marked close-on-exec, so a descriptor a caller leaked (a
//! socket, a directory of the host) never reaches the sandbox.

use crate::error::{Error, IoContext};
use crate::syscall::Syscall;

/// In the program, after its stdio is in place and before execve.
pub fn close_inherited(sys: &impl Syscall) -> Result<(), Error> {
    sys.cloexec_from(3)
        .ctx(|| "mark inherited descriptors close-on-exec".into())
}
