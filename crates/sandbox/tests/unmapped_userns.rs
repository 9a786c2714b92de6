//! The idmap namespace of guarded binds (`watertight_sys::process::unmapped_user_namespace`, which
//! `layers/sockets.rs` uses), made by a helper that shares the caller's memory: its maps, and
//! that the helper is gone afterwards.

use std::os::fd::AsRawFd;
use std::process::Command;

use watertight_sys::process::{unmapped_user_namespace, UNMAPPED_IDMAP_ID};
use watertight_testkit::require_root;

/// Read from inside the namespace (nsenter joins it through our fd): only the one unused id is
/// mapped, to itself, for users and groups alike.
#[test]
fn maps_only_the_unused_id() {
    if !require_root("maps_only_the_unused_id") {
        return;
    }
    let ns = unmapped_user_namespace().expect("make the namespace");
    let path = format!("/proc/{}/fd/{}", std::process::id(), ns.as_raw_fd());
    let own = std::fs::read_link("/proc/self/ns/user").unwrap();
    assert_ne!(
        std::fs::read_link(&path).unwrap(),
        own,
        "a namespace of its own"
    );
    for map in ["uid_map", "gid_map"] {
        let out = Command::new("nsenter")
            .args([format!("--user={path}").as_str(), "--preserve-credentials"])
            .args(["cat", &format!("/proc/self/{map}")])
            .output()
            .expect("run nsenter (util-linux)");
        assert!(out.status.success(), "nsenter: {out:?}");
        let fields: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let id = UNMAPPED_IDMAP_ID.to_string();
        assert_eq!(fields, [id.as_str(), id.as_str(), "1"], "{map}");
    }
}

/// Each call's helper is killed and reaped before it returns: many calls leave no process
/// (a zombie would show as a child of ours) and no stray descriptor.
#[test]
fn leaves_no_helper_behind() {
    if !require_root("leaves_no_helper_behind") {
        return;
    }
    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let before = fds();
    for _ in 0..200 {
        drop(unmapped_user_namespace().expect("make the namespace"));
    }
    let children = std::fs::read_to_string(format!(
        "/proc/{pid}/task/{pid}/children",
        pid = std::process::id()
    ))
    .unwrap_or_default();
    assert_eq!(children.trim(), "", "helpers still exist");
    // Other tests in this binary may hold descriptors meanwhile; 200 leaks would show.
    assert!(
        fds() < before + 50,
        "descriptors leak: {before} then {}",
        fds()
    );
}
