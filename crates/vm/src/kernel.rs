//! The guest kernel: the tree scripts/vm-kernel.sh unpacks into the cache, and the modules the
//! guest must load before it can reach its devices (Debian builds virtio and 9p as modules).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::Error;

/// The cache scripts/vm-kernel.sh fills, unless `WATERTIGHT_VM_CACHE` names another.
pub const DEFAULT_CACHE: &str = "/var/cache/watertight-vm";

/// What the guest loads, in dependency order after [`Kernel::modules_in_load_order`]: the
/// virtio-mmio transport (microvm's devices; ACPI describes them), 9p over virtio (the shared
/// root and the job), the virtio console driver (the verdict and output ports).
pub const GUEST_MODULES: &[&str] = &["virtio_mmio", "9pnet_virtio", "9p", "virtio_console"];

/// The cache directory in use.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("WATERTIGHT_VM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE))
}

/// One unpacked kernel package.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// `uname -r` of the guest, e.g. 6.1.0-57-amd64.
    pub release: String,
    /// The bzImage QEMU loads with -kernel.
    pub vmlinuz: PathBuf,
    /// lib/modules/<release> of the package.
    pub modules: PathBuf,
}

impl Kernel {
    /// The release `current` names in `cache`, when its image and modules are there.
    pub fn find(cache: &Path) -> Result<Kernel, Error> {
        let missing = || Error::NoKernel {
            cache: cache.to_owned(),
        };
        let release = std::fs::read_to_string(cache.join("current")).map_err(|_| missing())?;
        let release = release.trim();
        // A release names one directory: no separator, no dot-dot.
        if release.is_empty() || release.contains('/') || release.starts_with('.') {
            return Err(missing());
        }
        let dir = cache.join(release);
        let kernel = Kernel {
            release: release.to_owned(),
            vmlinuz: dir.join("vmlinuz"),
            modules: dir.join("modules"),
        };
        if !kernel.vmlinuz.is_file() || !kernel.modules.is_dir() {
            return Err(missing());
        }
        Ok(kernel)
    }

    /// [`GUEST_MODULES`] and everything they depend on, each after its dependencies.
    /// Dependencies come from each module's own `.modinfo` (`depends=`): the package ships no
    /// modules.dep, which only depmod at install time would make.
    pub fn modules_in_load_order(&self) -> Result<Vec<(String, PathBuf)>, Error> {
        let mut index = HashMap::new();
        index_modules(&self.modules.join("kernel"), &mut index)?;
        let mut order = Vec::new();
        for name in GUEST_MODULES {
            self.visit(name, &index, &mut order, 0)?;
        }
        Ok(order)
    }

    fn visit(
        &self,
        name: &str,
        index: &HashMap<String, PathBuf>,
        order: &mut Vec<(String, PathBuf)>,
        depth: usize,
    ) -> Result<(), Error> {
        if order.iter().any(|(n, _)| n == name) {
            return Ok(());
        }
        let path = index
            .get(name)
            .filter(|_| depth < 32)
            .ok_or(Error::NoModule {
                name: name.to_owned(),
                dir: self.modules.clone(),
            })?;
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        for dep in depends(&bytes) {
            self.visit(&dep, index, order, depth + 1)?;
        }
        order.push((name.to_owned(), path.clone()));
        Ok(())
    }
}

/// Module name (dashes as underscores, as the kernel names them) -> file, under `dir`.
fn index_modules(dir: &Path, index: &mut HashMap<String, PathBuf>) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Read {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            index_modules(&path, index)?;
        } else if let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".ko"))
        {
            index.insert(stem.replace('-', "_"), path);
        }
    }
    Ok(())
}

/// The `depends=` list of a module's `.modinfo` section (NUL-separated key=value strings).
pub fn depends(module: &[u8]) -> Vec<String> {
    const KEY: &[u8] = b"\0depends=";
    let Some(at) = module.windows(KEY.len()).position(|w| w == KEY) else {
        return Vec::new();
    };
    let value = &module[at + KEY.len()..];
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end])
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.replace('-', "_"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_reads_the_modinfo_list() {
        let m = b"\x7fELF...\0license=GPL\0depends=virtio,virtio_ring\0intree=Y\0";
        assert_eq!(depends(m), vec!["virtio", "virtio_ring"]);
        assert!(depends(b"\0depends=\0").is_empty());
        assert!(depends(b"nothing").is_empty());
    }
}
