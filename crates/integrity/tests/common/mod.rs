//! Helpers shared by the integration tests: test trees, cgroup guard (the guards come from
//! `watertight_testkit`).
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use watertight_integrity::SigningKey;

// Not every test file uses both.
#[allow(unused_imports)]
pub use watertight_testkit::{is_root, require_root};

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_seed([seed; 32])
}

pub fn copy_exec(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), to.display()));
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The host's dynamic loader and libc (resolved through symlinks).
pub fn host_loader() -> PathBuf {
    std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2").expect("x86-64 glibc loader")
}

pub fn host_libc() -> PathBuf {
    std::fs::canonicalize("/lib/x86_64-linux-gnu/libc.so.6").expect("glibc")
}

/// A small runnable image: bin/true, bin/sh (dash), lib/libc.so.6, lib64/ld-linux-x86-64.so.2,
/// plus a data file and a symlink. Run its binaries with LD_LIBRARY_PATH=<tree>/lib.
pub fn exec_tree(root: &Path) {
    copy_exec(Path::new("/usr/bin/true"), &root.join("bin/true"));
    copy_exec(
        &std::fs::canonicalize("/bin/sh").unwrap(),
        &root.join("bin/sh"),
    );
    copy_exec(&host_libc(), &root.join("lib/libc.so.6"));
    copy_exec(&host_loader(), &root.join("lib64/ld-linux-x86-64.so.2"));
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/motd"), b"hello\n").unwrap();
    std::os::unix::fs::symlink("true", root.join("bin/yes-true")).unwrap();
}

static CGROUP_SEQ: AtomicU32 = AtomicU32::new(0);

/// A cgroup in the cgroup2 hierarchy, killed and removed on drop.
pub struct TestCgroup {
    pub path: PathBuf,
}

impl TestCgroup {
    pub fn create() -> Option<TestCgroup> {
        let base = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| {
                p.join("cgroup.procs").exists() && p.join("cgroup.subtree_control").exists()
            })?;
        let path = base.join(format!(
            "wt-test-{}-{}",
            std::process::id(),
            CGROUP_SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir(&path).ok()?;
        Some(TestCgroup { path })
    }

    pub fn id(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&self.path).unwrap().ino()
    }

    /// `sh -c` that joins this cgroup, then execs `argv` (the shell runs before joining, so it
    /// is not gated; what it execs is).
    pub fn command(&self, argv: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs && exec \"$@\"",
                self.path.display()
            ))
            .arg("sh")
            .args(argv);
        cmd
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Only our own children can be in here; cgroup.kill ends them all at once.
        let _ = std::fs::write(self.path.join("cgroup.kill"), "1");
        for _ in 0..100 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        eprintln!("warning: could not remove {}", self.path.display());
    }
}
