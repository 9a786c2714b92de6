//! Host unix sockets under bind sources. connect() to a pathname socket needs only write
//! permission on the socket file, which a read-only mount does not take away and which most
//! service sockets grant to everyone: a socket anywhere in a bound tree (the caller's working
//! directory is bound by default) would reach a host service despite the network namespace.
//!
//! Unless the profile allows host sockets (`[root] host_sockets = "allow"`), [`guard`] acts on
//! every bind of a host directory before fork:
//! - a read-only bind becomes a detached copy of the source tree made an idmapped mount whose
//!   idmap maps no real owner. The kernel refuses write access to any inode whose owner the
//!   mount cannot map, so connect() to every socket in the tree fails with EACCES, including
//!   sockets a host process creates after the start; reading and executing go by the "other"
//!   bits, as they already do for the sandbox's unmapped uid. The sandbox attaches the tree
//!   where the bind would have gone.
//! - where a file system cannot be idmapped, and for writable binds (an idmap without owners
//!   would refuse their writes too), the tree is walked and every socket the sandbox could reach
//!   is masked with /dev/null (connect(): not a socket). The walk is bounded: a tree with more
//!   entries than the limit is refused with the fix, never bound unchecked. It cannot see a
//!   socket created under such a bind after the start (docs/seccomp.md).
//!
//! A source that is itself a socket was asked for by name and is bound as it is.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use watertight_sys::mount::ATTR_RDONLY;

use crate::error::Error;
use crate::layers::mount::{hide_file, MountOp, MountPlan};

/// Entries the walk of one bind source may visit before it refuses the bind.
pub const DEFAULT_SCAN_LIMIT: usize = 100_000;

/// The sockets under directory `source`, as paths relative to it, that a process which is
/// "other" to every file (the sandbox's own unmapped uid) could reach: directories it cannot
/// search are not entered (nothing below them is reachable).
pub fn reachable_sockets(source: &Path, limit: usize) -> Result<Vec<PathBuf>, Error> {
    sockets_under(source, limit, &searchable_by_others)
}

/// The sockets under `source` in directories `enter` says the sandbox can search.
fn sockets_under(
    source: &Path,
    limit: usize,
    enter: &dyn Fn(&Path) -> bool,
) -> Result<Vec<PathBuf>, Error> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    let mut visited = 0usize;
    while let Some(rel) = pending.pop() {
        let dir = source.join(&rel);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            // Root cannot list it (a FUSE mount of another user): neither can the sandbox.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => continue,
            Err(e) => {
                return Err(Error::io(
                    format!("list {} (bind source)", dir.display()),
                    e,
                ))
            }
        };
        for entry in entries {
            let entry =
                entry.map_err(|e| Error::io(format!("list {} (bind source)", dir.display()), e))?;
            visited += 1;
            if visited > limit {
                return Err(Error::Config(format!(
                    "bind source {}: more than {limit} entries to check for host unix sockets \
                     (a socket in a bound tree reaches a host service); bind a smaller directory \
                     or run from one, or allow host sockets with --host-sockets allow \
                     ([root] host_sockets = \"allow\")",
                    source.display()
                )));
            }
            // d_type from the directory read: no stat per entry.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_socket() {
                found.push(rel.join(entry.file_name()));
            } else if kind.is_dir() && enter(&entry.path()) {
                pending.push(rel.join(entry.file_name()));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Before fork, as the caller (root): turns every bind of the caller's (`plan.host_binds`) into
/// a detached tree attached by `MountOp::AttachTree`, and makes those to guard unable to reach
/// host sockets (see the module doc). Returns the trees, in the order the ops name them.
///
/// The `--box` bind (`plan.box_bind`) is idmapped to the caller instead (`layers/workbox.rs`):
/// `work_box` is the checked box and the sandbox's host id; a file system that cannot be
/// idmapped is refused for it (the box would be unwritable or owned by the sandbox's uid).
pub fn attach_host_binds(
    plan: &mut MountPlan,
    work_box: Option<(&crate::layers::workbox::WorkBox, u32)>,
) -> Result<Vec<OwnedFd>, Error> {
    let mut trees = Vec::new();
    let mut idmap: Option<OwnedFd> = None;
    // From the last one: masks inserted after a bind shift only later indices.
    let host_binds = std::mem::take(&mut plan.host_binds);
    for &(i, guard) in host_binds.iter().rev() {
        let MountOp::Bind {
            source,
            target,
            attrs,
        } = plan.ops[i].clone()
        else {
            continue;
        };
        let tree = if plan.box_bind == Some(i) {
            let Some((b, host_id)) = work_box else {
                return Err(Error::Config(format!(
                    "the box {} was planned but not prepared",
                    shown(&source)
                )));
            };
            let ns = crate::layers::workbox::idmap(b, host_id)?;
            match tree_of(&source, Some(ns.as_fd()), attrs) {
                Ok(tree) => Some(tree),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    return Err(Error::Box {
                        path: shown(&source),
                        message: "its file system cannot make idmapped mounts; put the box on \
                                  ext4, xfs, btrfs or tmpfs"
                            .into(),
                    })
                }
                Err(e) => return Err(bind_error(&source, e)),
            }
        } else if guard && attrs & ATTR_RDONLY != 0 {
            if idmap.is_none() {
                idmap = crate::layers::user::unmapped_idmap_namespace().ok();
            }
            match &idmap {
                Some(ns) => match tree_of(&source, Some(ns.as_fd()), attrs) {
                    Ok(tree) => Some(tree),
                    // This file system (or one mounted below the source) cannot be idmapped.
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => None,
                    Err(e) => return Err(bind_error(&source, e)),
                },
                None => None,
            }
        } else {
            None
        };
        let (tree, walk) = match tree {
            // The box is writable through its idmap: a host socket in it would be reachable.
            Some(tree) => (tree, guard && plan.box_bind == Some(i)),
            None => (
                tree_of(&source, None, attrs).map_err(|e| bind_error(&source, e))?,
                guard,
            ),
        };
        plan.ops[i] = MountOp::AttachTree {
            tree: trees.len(),
            target: target.clone(),
        };
        trees.push(tree);
        if walk {
            let masks: Vec<MountOp> = reachable_sockets(&source, DEFAULT_SCAN_LIMIT)?
                .iter()
                .flat_map(|socket| hide_file(&target.join(socket)))
                .collect();
            plan.ops.splice(i + 1..i + 1, masks);
        }
    }
    Ok(trees)
}

/// Without root (`layers/rootless.rs`), before fork: no tree can be idmapped (that needs root
/// in the initial user namespace), and pid 1 binds the caller's paths by itself; every guarded
/// bind's tree is walked, as the caller (whose uid, and groups, the sandbox has on the host), and
/// every socket in a directory the caller can search is masked with /dev/null. A socket made
/// under such a bind after the start is not masked (the box is the caller's own directory).
pub fn mask_host_sockets(plan: &mut MountPlan) -> Result<(), Error> {
    let searchable = |dir: &Path| nix::unistd::access(dir, nix::unistd::AccessFlags::X_OK).is_ok();
    let host_binds = std::mem::take(&mut plan.host_binds);
    for &(i, guard) in host_binds.iter().rev() {
        let MountOp::Bind { source, target, .. } = plan.ops[i].clone() else {
            continue;
        };
        if !guard || !source.is_dir() {
            continue;
        }
        let masks: Vec<MountOp> = sockets_under(&source, DEFAULT_SCAN_LIMIT, &searchable)?
            .iter()
            .flat_map(|socket| hide_file(&target.join(socket)))
            .collect();
        plan.ops.splice(i + 1..i + 1, masks);
    }
    Ok(())
}

fn shown(p: &Path) -> String {
    watertight_sys::text::quote(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()))
}

fn bind_error(source: &Path, e: io::Error) -> Error {
    Error::Config(format!(
        "bind source {}: {e}",
        watertight_sys::text::quote(std::os::unix::ffi::OsStrExt::as_bytes(source.as_os_str()))
    ))
}

/// A detached copy of the tree at `source` with attributes `attrs`, idmapped through `idmap`.
fn tree_of(source: &Path, idmap: Option<BorrowedFd<'_>>, attrs: u64) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(source.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let tree = watertight_sys::mount::clone_tree(&path)?;
    // Both make every mount of the tree private: it must not propagate anything back.
    match idmap {
        Some(ns) => watertight_sys::mount::idmap_tree(tree.as_fd(), ns, attrs)?,
        None => watertight_sys::mount::set_tree_attributes(tree.as_fd(), attrs)?,
    }
    Ok(tree)
}

fn searchable_by_others(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixListener;

    #[test]
    fn finds_sockets_at_any_depth_but_not_behind_closed_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(root.join("closed")).unwrap();
        std::fs::write(root.join("a/file"), b"x").unwrap();
        let _l1 = UnixListener::bind(root.join("top.sock")).unwrap();
        let _l2 = UnixListener::bind(root.join("a/b/deep.sock")).unwrap();
        let _l3 = UnixListener::bind(root.join("closed/hidden.sock")).unwrap();
        std::fs::set_permissions(root.join("closed"), std::fs::Permissions::from_mode(0o750))
            .unwrap();
        let found = reachable_sockets(root, 100).unwrap();
        assert_eq!(
            found,
            vec![PathBuf::from("a/b/deep.sock"), PathBuf::from("top.sock")]
        );
    }

    #[test]
    fn a_tree_over_the_limit_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5 {
            std::fs::write(dir.path().join(format!("f{i}")), b"").unwrap();
        }
        let e = reachable_sockets(dir.path(), 4).unwrap_err().to_string();
        assert!(
            e.contains("more than 4 entries") && e.contains("--host-sockets allow"),
            "{e}"
        );
        assert!(reachable_sockets(dir.path(), 5).unwrap().is_empty());
    }
}
