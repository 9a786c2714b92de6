//! The system calls the in-sandbox layers make, behind a trait (as youki does) so the layers'
//! logic can be unit-tested without root: `Linux` performs them, `Recorder` (tests) logs them.

use std::ffi::CString;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};

pub trait Syscall {
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
    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()>;
    fn write_file(&self, path: &Path, mode: u32, contents: &[u8]) -> io::Result<()>;
    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()>;
    fn pivot_root(&self, new_root: &Path) -> io::Result<()>;
    fn chdir(&self, path: &Path) -> io::Result<()>;
    fn sethostname(&self, name: &str) -> io::Result<()>;
    fn interface_up(&self, name: &str) -> io::Result<()>;
    /// move_mount: attach a detached mount tree (open_tree) at `target`.
    fn attach_tree(&self, tree: BorrowedFd<'_>, target: &Path) -> io::Result<()>;
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
}

/// Records calls instead of making them; optionally fails the n-th call. For unit tests.
#[cfg(test)]
pub mod recorder {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    pub struct Recorder {
        pub calls: RefCell<Vec<String>>,
        pub fail_at: Option<usize>,
    }

    impl Recorder {
        fn log(&self, s: String) -> io::Result<()> {
            let mut c = self.calls.borrow_mut();
            c.push(s);
            if Some(c.len() - 1) == self.fail_at {
                return Err(io::Error::from_raw_os_error(libc::EPERM));
            }
            Ok(())
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
    }
}
