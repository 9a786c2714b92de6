//! Secrets: readable inside, never writable, never on the host, never propagated, even through a
//! bind mount with shared propagation (the scenario in which a debugging bind leaked a tmpfs
//! secret into the host's backups).

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn secret_is_readable_inside_and_read_only() {
    if !require_root("secret_is_readable_inside_and_read_only") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "s3cr3t-value").unwrap();
    let o = sh(
        "cat /run/secrets/token; echo; echo x > /run/secrets/token && echo WRITABLE; echo y > /run/secrets/new && echo CREATED; true",
        &[&format!("--secret=token={}", file.display())],
    );
    let out = stdout(&o);
    assert!(out.starts_with("s3cr3t-value"), "{out} {}", stderr(&o));
    assert!(
        !out.contains("WRITABLE") && !out.contains("CREATED"),
        "{out}"
    );
}

/// Unmounts the shared bind at the end of the test, whatever happens.
struct SharedBind(PathBuf);
impl Drop for SharedBind {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn secret_never_propagates_through_a_shared_bind() {
    if !require_root("secret_never_propagates_through_a_shared_bind") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("debug");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    // The host side of the scenario: a mount point with shared propagation.
    assert!(Command::new("mount")
        .arg("--bind")
        .arg(&shared)
        .arg(&shared)
        .status()
        .unwrap()
        .success());
    let _guard = SharedBind(shared.clone());
    assert!(Command::new("mount")
        .arg("--make-shared")
        .arg(&shared)
        .status()
        .unwrap()
        .success());
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "do-not-leak").unwrap();

    // The debugging bind covers /run, so the secrets tmpfs is mounted beneath it.
    let child = watertight()
        .args([
            "run",
            &format!("--bind={}:/run", shared.display()),
            &format!("--secret=key={}", secret.display()),
        ])
        .args(["--", "/bin/sh", "-c", "cat /run/secrets/key; sleep 2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut leaked = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    while std::time::Instant::now() < deadline {
        if shared.join("secrets/key").exists() {
            leaked.push("the secret file is visible on the host".to_string());
            break;
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        if mountinfo
            .lines()
            .any(|l| l.contains(&format!("{}/secrets", shared.display())))
        {
            leaked.push("a mount appeared under the shared bind on the host".to_string());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "do-not-leak",
        "the sandbox did not see its secret"
    );
    assert!(leaked.is_empty(), "{leaked:?}");
    assert!(!Path::new(&shared.join("secrets/key")).exists());
}
