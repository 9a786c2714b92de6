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

/// `layers::user::idmap_namespace` makes each mapping once per process: the same maps give the
/// same namespace, other maps another one, and the kept ones stay bounded.
#[test]
fn idmap_namespaces_are_made_once_per_mapping_and_bounded() {
    if !require_root("idmap_namespaces_are_made_once_per_mapping_and_bounded") {
        return;
    }
    use watertight_sandbox::layers::user::{idmap_namespace, IDMAPS_KEPT};
    let ns_of = |fd: &std::os::fd::OwnedFd| {
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap()
    };
    let a = idmap_namespace("1000 1879048193 1\n", "1000 1879048193 1\n").unwrap();
    let again = idmap_namespace("1000 1879048193 1\n", "1000 1879048193 1\n").unwrap();
    let other = idmap_namespace("1000 1879048194 1\n", "1000 1879048194 1\n").unwrap();
    assert_eq!(ns_of(&a), ns_of(&again));
    assert_ne!(ns_of(&a), ns_of(&other));
    // Past the bound the oldest is dropped: asking for it again makes a new namespace.
    for i in 0..IDMAPS_KEPT as u32 {
        let m = format!("1000 {} 1\n", 1879049000 + i);
        drop(idmap_namespace(&m, &m).unwrap());
    }
    let remade = idmap_namespace("1000 1879048193 1\n", "1000 1879048193 1\n").unwrap();
    assert_ne!(ns_of(&a), ns_of(&remade));
}
