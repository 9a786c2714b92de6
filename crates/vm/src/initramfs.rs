//! The guest's initramfs: the running watertight binary as /init (it is static: the guest has
//! no libc) and the kernel modules [`crate::kernel`] lists, in the newc cpio format the kernel
//! unpacks. Uncompressed: under TCG the guest's gunzip costs more than the copy it saves.
//!
//! Cached in the kernel cache as `initramfs-<key>.cpio`, the key a sha256 of the binary's
//! identity (device, inode, size, mtime: a rebuilt binary is a new file), the kernel release
//! and the module list; a new file appears by rename, so a concurrent run sees it whole.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::kernel::Kernel;
use crate::Error;

/// Bump when the archive's layout changes.
const FORMAT: &str = "watertight-vm-initramfs-1";
/// Archives kept in the cache (the newest; older ones are removed when a new one is made).
const KEEP: usize = 4;
/// Directories the init mounts on.
const DIRS: &[&str] = &["dev", "proc", "sys", "tmp", "job", "newroot", "modules"];

/// The archive for the running binary and `kernel`, made if the cache has none.
pub fn ensure(cache: &Path, kernel: &Kernel) -> Result<PathBuf, Error> {
    // The path, not /proc/self/exe: objcopy would read its own.
    let exe = std::env::current_exe().map_err(|source| Error::Read {
        path: "/proc/self/exe".into(),
        source,
    })?;
    let exe = exe.as_path();
    let meta = std::fs::metadata(exe).map_err(|source| Error::Read {
        path: exe.into(),
        source,
    })?;
    let modules = kernel.modules_in_load_order()?;
    let mut key = Sha256::new();
    key.update(FORMAT);
    key.update(format!(
        "{} {} {} {}.{}\n",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    ));
    key.update(&kernel.release);
    for (name, _) in &modules {
        key.update(name);
    }
    let key: String = key.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = cache.join(format!("initramfs-{key}.cpio"));
    if path.is_file() {
        return Ok(path);
    }
    let tmp = tempfile::Builder::new()
        .prefix(".initramfs.")
        .tempdir_in(cache)
        .map_err(|source| Error::Write {
            path: cache.into(),
            source,
        })?;
    let init = strip(exe, &tmp.path().join("init"))?;
    let archive = tmp.path().join("initramfs.cpio");
    write_archive(&archive, &init, &modules).map_err(|source| Error::Write {
        path: archive.clone(),
        source,
    })?;
    std::fs::rename(&archive, &path).map_err(|source| Error::Write {
        path: path.clone(),
        source,
    })?;
    prune(cache, &path);
    Ok(path)
}

/// The binary without debug information when objcopy is there (a debug build: 270 MiB ->
/// ~35), else as it is; the guest needs RAM for the whole archive.
fn strip(exe: &Path, out: &Path) -> Result<PathBuf, Error> {
    let objcopy = crate::host::find_in_path("objcopy");
    let Some(objcopy) = objcopy else {
        return Ok(exe.to_owned());
    };
    let status = std::process::Command::new(objcopy)
        .arg("--strip-debug")
        .arg(exe)
        .arg(out)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| Error::Strip(e.to_string()))?;
    if !status.success() {
        return Err(Error::Strip(status.to_string()));
    }
    Ok(out.to_owned())
}

fn write_archive(out: &Path, init: &Path, modules: &[(String, PathBuf)]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    let mut ino = 1;
    for dir in DIRS {
        entry(&mut w, &mut ino, dir, 0o040755, 0, &[])?;
    }
    // /dev/console (5:1): the kernel opens it as init's stdin, stdout and stderr; without it
    // init starts with no descriptors and its first open() would become fd 0.
    entry(&mut w, &mut ino, "dev/console", 0o020600, (5 << 8) | 1, &[])?;
    entry(&mut w, &mut ino, "init", 0o100755, 0, &std::fs::read(init)?)?;
    for (i, (name, path)) in modules.iter().enumerate() {
        let data = std::fs::read(path)?;
        let file = format!("modules/{i:02}-{name}.ko");
        entry(&mut w, &mut ino, &file, 0o100644, 0, &data)?;
    }
    entry(&mut w, &mut ino, "TRAILER!!!", 0, 0, &[])?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// One newc entry: the 110-byte header, the name with its NUL, the data, each padded to 4.
fn entry(
    w: &mut impl Write,
    ino: &mut u32,
    name: &str,
    mode: u32,
    rdev: u32,
    data: &[u8],
) -> std::io::Result<()> {
    let fields = [
        *ino,
        mode,
        0, // uid
        0, // gid
        if mode & 0o040000 != 0 { 2 } else { 1 },
        0, // mtime: a fixed archive for fixed inputs
        data.len() as u32,
        0,
        0,
        rdev >> 8,
        rdev & 0xff,
        name.len() as u32 + 1,
        0, // check (newc, not crc)
    ];
    *ino += 1;
    let mut header = String::from("070701");
    for f in fields {
        header.push_str(&format!("{f:08x}"));
    }
    w.write_all(header.as_bytes())?;
    w.write_all(name.as_bytes())?;
    w.write_all(&[0])?;
    pad(w, 110 + name.len() + 1)?;
    w.write_all(data)?;
    pad(w, data.len())
}

fn pad(w: &mut impl Write, len: usize) -> std::io::Result<()> {
    w.write_all(&[0; 3][..(4 - len % 4) % 4])
}

/// Removes all but the [`KEEP`] newest archives (never `keep`).
fn prune(cache: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    let mut archives: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("initramfs-") && n.ends_with(".cpio"))
        })
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    archives.sort();
    let excess = archives.len().saturating_sub(KEEP);
    for (_, p) in archives.into_iter().take(excess) {
        if p != keep {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_entries_are_padded_to_four_bytes() {
        let mut out = Vec::new();
        let mut ino = 1;
        entry(&mut out, &mut ino, "init", 0o100755, 0, b"abcde").unwrap();
        // header 110 + "init\0" 5 = 115 -> 116; data 5 -> 8.
        assert_eq!(out.len(), 116 + 8);
        assert!(out.starts_with(b"070701"));
        assert_eq!(&out[116..121], b"abcde");
    }
}
