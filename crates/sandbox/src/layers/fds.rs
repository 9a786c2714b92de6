//! File descriptor layer: the program gets stdin, stdout and stderr and nothing else. Every
//! other inherited descriptor is marked close-on-exec, so a descriptor a caller leaked (a
//! socket, a directory of the host) never reaches the sandbox.

use crate::error::{Error, IoContext};

pub fn close_inherited() -> Result<(), Error> {
    watertight_sys::process::cloexec_from(3)
        .ctx(|| "mark inherited descriptors close-on-exec".into())
}
