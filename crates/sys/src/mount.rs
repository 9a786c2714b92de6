//! mount_setattr(2): change attributes of a whole mount tree in one call. Unlike a
//! MS_REMOUNT|MS_BIND remount it applies recursively and only sets the bits asked for, so the
//! flags a user namespace may not clear (locked nosuid/nodev/noexec) never have to be repeated.

use std::ffi::CStr;
use std::io;

pub const ATTR_RDONLY: u64 = 0x1;
pub const ATTR_NOSUID: u64 = 0x2;
pub const ATTR_NODEV: u64 = 0x4;
pub const ATTR_NOEXEC: u64 = 0x8;

/// The kernel's `struct mount_attr` (MOUNT_ATTR_SIZE_VER0 = 32 bytes).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Sets `set` attributes (ATTR_*) and, if non-zero, the propagation type (MS_PRIVATE, MS_SLAVE
/// ...) on the mount at `path` and, with `recursive`, every mount below it.
pub fn set_attributes(path: &CStr, recursive: bool, set: u64, propagation: u64) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 } as libc::c_uint;
    // SAFETY: path is a valid NUL-terminated string; attr is a live, correctly laid out
    // mount_attr whose size is passed alongside it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
