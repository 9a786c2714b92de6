//! mount_setattr(2): change attributes of a whole mount tree in one call. Unlike a
//! MS_REMOUNT|MS_BIND remount it applies recursively and only sets the bits asked for, so the
//! flags a user namespace may not clear (locked nosuid/nodev/noexec) never have to be repeated.
//! Also detached trees (open_tree, idmapped before they are attached with move_mount).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// MOUNT_ATTR_RDONLY: the mount is read-only.
pub const ATTR_RDONLY: u64 = 0x1;
/// MOUNT_ATTR_NOSUID: set-user-id and set-group-id bits and file capabilities are ignored.
pub const ATTR_NOSUID: u64 = 0x2;
/// MOUNT_ATTR_NODEV: device nodes on the mount cannot be opened.
pub const ATTR_NODEV: u64 = 0x4;
/// MOUNT_ATTR_NOEXEC: nothing on the mount can be executed.
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
    mount_setattr(libc::AT_FDCWD, path, flags, &attr)
}

/// mount_setattr(2) on `path` relative to `dirfd` (or the fd itself with AT_EMPTY_PATH).
fn mount_setattr(
    dirfd: RawFd,
    path: &CStr,
    flags: libc::c_uint,
    attr: &MountAttr,
) -> io::Result<()> {
    // SAFETY: path is a valid NUL-terminated string; attr is a live, correctly laid out
    // mount_attr whose size is passed alongside it; dirfd is borrowed for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// A detached copy of the mount tree at `path` (open_tree with OPEN_TREE_CLONE|AT_RECURSIVE):
/// it can be changed (idmapped) before anything can see it, then attached with [`attach_tree`].
pub fn clone_tree(path: &CStr) -> io::Result<OwnedFd> {
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as u32;
    // SAFETY: path is a valid NUL-terminated string; the call takes no other pointer.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open_tree returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Makes detached tree `tree` (from [`clone_tree`]) an idmapped mount through user namespace
/// `userns`, sets attributes `set` (ATTR_*) and makes it private, on every mount of the tree.
/// Private: a clone of a shared mount stays in its peer group, so a mount made under the tree
/// once it is attached elsewhere would propagate back to the source's namespace. Fails with
/// EINVAL where a file system of the tree does not support idmapped mounts.
pub fn idmap_tree(tree: BorrowedFd<'_>, userns: BorrowedFd<'_>, set: u64) -> io::Result<()> {
    tree_setattr(tree, set, Some(userns))
}

fn tree_setattr(tree: BorrowedFd<'_>, set: u64, userns: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set
            | if userns.is_some() {
                MOUNT_ATTR_IDMAP
            } else {
                0
            },
        attr_clr: 0,
        propagation: libc::MS_PRIVATE,
        userns_fd: userns.map_or(0, |u| u.as_raw_fd() as u64),
    };
    let flags = (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint;
    mount_setattr(tree.as_raw_fd(), c"", flags, &attr)
}

/// Sets attributes `set` (ATTR_*) on every mount of detached tree `tree`, and makes each one
/// private (see [`idmap_tree`]).
pub fn set_tree_attributes(tree: BorrowedFd<'_>, set: u64) -> io::Result<()> {
    tree_setattr(tree, set, None)
}

/// Attaches detached tree `tree` at `target` (move_mount with MOVE_MOUNT_F_EMPTY_PATH); the
/// tree may come from another mount namespace's owner (the supervisor) and land in this one.
pub fn attach_tree(tree: BorrowedFd<'_>, target: &CStr) -> io::Result<()> {
    // SAFETY: both paths are valid NUL-terminated strings; the fd is borrowed for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// fsopen(2) flag: the fs-context descriptor is close-on-exec.
const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
/// fsconfig(2) command: set a parameter to a string value.
const FSCONFIG_SET_STRING: libc::c_uint = 1;
/// fsconfig(2) command: create the superblock from the parameters set.
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
/// fsmount(2) flag: the mount descriptor is close-on-exec.
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;

/// fsopen(2): a file system context for `fstype` (e.g. `bpf`), owned by the caller's user
/// namespace (the superblock made from it belongs to that namespace).
pub fn fs_open(fstype: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: fstype is a valid NUL-terminated string; no other pointer is passed.
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fsopen returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// fsconfig(FSCONFIG_SET_STRING): sets parameter `key` of context `fc` to `value`.
pub fn fs_config_string(fc: BorrowedFd<'_>, key: &CStr, value: &CStr) -> io::Result<()> {
    // SAFETY: key and value are valid NUL-terminated strings the kernel only reads; the fd is
    // borrowed for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fc.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// fsconfig(FSCONFIG_CMD_CREATE): makes the superblock of context `fc`.
pub fn fs_create(fc: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: no pointer is passed (key and value are NULL for this command); the fd is
    // borrowed for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fc.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// fsmount(2): a detached mount of the superblock of context `fc` (after [`fs_create`]) with
/// mount attributes `attrs` (ATTR_*), to be attached with [`attach_tree`].
pub fn fs_mount(fc: BorrowedFd<'_>, attrs: u64) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only; the fd is borrowed for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fc.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            attrs as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fsmount returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
