//! Removal of cgroups left behind by a supervisor that died without cleaning up.

use std::collections::BTreeSet;
use std::io::ErrorKind;

use crate::cgroup::{Cgroup, DIR_PREFIX};
use crate::layout::Layout;
use crate::owner::parse_dir_name;
use crate::Error;

/// Kills and removes every watertight cgroup whose owning supervisor (pid + start time encoded
/// in its name) is no longer running, in every hierarchy of `layout`. Directories watertight
/// did not name are left alone. Returns how many cgroups were removed.
pub fn cleanup_stale(layout: &Layout) -> Result<usize, Error> {
    let mut stale = BTreeSet::new();
    for root in layout.roots() {
        let entries = match std::fs::read_dir(root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::read(root, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::read(root, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !name.starts_with(DIR_PREFIX)
                || !entry.file_type().map(|t| t.is_dir()).unwrap_or(false)
            {
                continue;
            }
            if let Some((_, owner)) = parse_dir_name(&name) {
                if !owner.is_alive() {
                    stale.insert(name);
                }
            }
        }
    }
    let mut removed = 0;
    let mut first_error = None;
    for name in stale {
        // Keep going past one stubborn cgroup so the others still get removed.
        match Cgroup::adopt(layout, &name).destroy() {
            Ok(()) => removed += 1,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}
