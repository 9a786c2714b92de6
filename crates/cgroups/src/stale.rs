//! Removal of cgroups left behind by a supervisor that died without cleaning up.

use std::collections::BTreeSet;
use std::io::ErrorKind;

use crate::cgroup::{Cgroup, Plan, DIR_PREFIX};
use crate::layout::Layout;
use crate::owner::parse_dir_name;
use crate::Error;

/// Kills and removes every watertight cgroup whose owning supervisor (pid + start time encoded
/// in its name) is no longer running, in every hierarchy of `layout`. Directories watertight
/// did not name are left alone. Returns how many cgroups were removed.
pub fn cleanup_stale(layout: &Layout) -> Result<usize, Error> {
    let mut stale = BTreeSet::new();
    for root in layout.roots() {
        let names = match layout.fs().subdirs(root) {
            Ok(names) => names,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::read(root, e)),
        };
        for name in names {
            if !name.starts_with(DIR_PREFIX) {
                continue;
            }
            if let Some((_, owner)) = parse_dir_name(&name) {
                if !owner.is_alive() {
                    stale.insert(name);
                }
            }
        }
    }
    destroy_all(stale.iter().map(|name| Cgroup::adopt(layout, name)))
}

/// Destroys every cgroup, going on past one stubborn cgroup so the others still get removed;
/// returns how many were removed, or the first error.
fn destroy_all(cgroups: impl Iterator<Item = Cgroup>) -> Result<usize, Error> {
    let mut removed = 0;
    let mut first_error = None;
    for cgroup in cgroups {
        match cgroup.destroy() {
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

/// A directory with one empty file per cgroup that a running supervisor created, named like the
/// cgroup. Finding the leftovers of a supervisor that died is then one readdir of a directory
/// that is almost always empty, instead of one readdir per hierarchy root ([`cleanup_stale`]).
/// The entry is written before the cgroup's first mkdir and removed after its last rmdir, so a
/// supervisor killed at any point leaves an entry for whatever it left.
#[derive(Debug, Clone)]
pub struct Registry {
    dir: std::path::PathBuf,
}

impl Registry {
    /// Uses (and creates, mode 0700) `dir`.
    pub fn open(dir: impl Into<std::path::PathBuf>) -> Result<Registry, Error> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = dir.into();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| Error::Mkdir {
                path: dir.clone(),
                source,
            })?;
        Ok(Registry { dir })
    }

    /// Kills and removes the cgroups of every registered supervisor that is no longer running,
    /// and their entries. Returns how many were removed.
    pub fn cleanup_stale(&self, layout: &Layout) -> Result<usize, Error> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::read(&self.dir, e))?;
        let stale = entries.flatten().filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            let (_, owner) = parse_dir_name(&name)?;
            if owner.is_alive() || !name.starts_with(DIR_PREFIX) {
                return None;
            }
            let mut cgroup = Cgroup::adopt(layout, &name);
            cgroup.registered = Some(entry.path());
            Some(cgroup)
        });
        destroy_all(stale)
    }

    /// [`Cgroup::create_with`], registered here for its whole life.
    pub fn create(
        &self,
        layout: &Layout,
        name: &str,
        limits: &crate::Limits,
        needs: crate::Needs,
    ) -> Result<Cgroup, Error> {
        let plan = Plan::new(layout.clone(), limits.clone(), needs)?;
        plan.delegate_controllers()?;
        self.create_planned(&plan, name)
    }

    /// [`Plan::create`], registered here for its whole life.
    pub fn create_planned(&self, plan: &Plan, name: &str) -> Result<Cgroup, Error> {
        let entry = self.dir.join(crate::cgroup::dir_name_of(name)?);
        std::fs::write(&entry, b"").map_err(|e| Error::write(&entry, "", e))?;
        match plan.create(name) {
            Ok(mut cgroup) => {
                cgroup.registered = Some(entry);
                Ok(cgroup)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&entry);
                Err(e)
            }
        }
    }
}
