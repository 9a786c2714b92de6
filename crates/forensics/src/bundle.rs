//! Writing a bundle: files go into a private temp dir inside the evidence dir, each hashed as it
//! is written and fsynced when finished; `seal` writes the signed manifest, fsyncs the
//! directories and renames the bundle into place without replacing anything. A bundle that is not sealed is removed on drop.

use crate::error::Error;
use crate::hashing::HashingWriter;
use crate::manifest::{self, FileEntry, Manifest, SignatureFile};
use crate::signing;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Evidence holds secrets (environment variables), so only root reads it.
const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

pub struct BundleWriter {
    evidence_dir: PathBuf,
    temp_dir: PathBuf,
    final_dir: PathBuf,
    entries: Mutex<Vec<FileEntry>>,
    /// Subdirectories created, to fsync at seal.
    dirs: Mutex<Vec<String>>,
    sealed: bool,
}

/// A bundle file being written; `finish` records it in the manifest.
pub struct BundleFile<'a> {
    bundle: &'a BundleWriter,
    rel: String,
    writer: HashingWriter<BufWriter<File>>,
}

impl BundleWriter {
    /// Creates `evidence_dir` (0700) if needed and a temp dir inside it for bundle `name`.
    pub fn create(evidence_dir: &Path, name: &str) -> Result<BundleWriter, Error> {
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(evidence_dir)
            .map_err(|e| Error::evidence_dir(evidence_dir, e))?;
        let temp_dir = evidence_dir.join(format!(".partial-{name}-{}", std::process::id()));
        DirBuilder::new()
            .mode(DIR_MODE)
            .create(&temp_dir)
            .map_err(|e| Error::evidence_dir(evidence_dir, e))?;
        Ok(BundleWriter {
            evidence_dir: evidence_dir.to_path_buf(),
            final_dir: evidence_dir.join(name),
            temp_dir,
            entries: Mutex::new(Vec::new()),
            dirs: Mutex::new(Vec::new()),
            sealed: false,
        })
    }

    pub fn io_error(&self, e: std::io::Error) -> Error {
        Error::evidence_dir(&self.evidence_dir, e)
    }

    /// Creates the directory `rel` (and parents) inside the bundle.
    pub fn create_dir(&self, rel: &str) -> Result<(), Error> {
        debug_assert!(manifest::check_path(rel).is_ok(), "{rel}");
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(self.temp_dir.join(rel))
            .map_err(|e| self.io_error(e))?;
        let mut dirs = self.dirs.lock().expect("dirs lock");
        if !dirs.iter().any(|d| d == rel) {
            dirs.push(rel.to_string());
        }
        Ok(())
    }

    /// Opens bundle file `rel` (its directory must exist) for streaming writes.
    pub fn create_file(&self, rel: &str) -> Result<BundleFile<'_>, Error> {
        debug_assert!(manifest::check_path(rel).is_ok(), "{rel}");
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(self.temp_dir.join(rel))
            .map_err(|e| self.io_error(e))?;
        Ok(BundleFile {
            bundle: self,
            rel: rel.to_string(),
            writer: HashingWriter::new(BufWriter::with_capacity(256 * 1024, file)),
        })
    }

    /// Writes a whole bundle file at once.
    pub fn write_file(&self, rel: &str, contents: &[u8]) -> Result<(), Error> {
        let mut f = self.create_file(rel)?;
        f.write_all(contents).map_err(|e| self.io_error(e))?;
        f.finish()
    }

    /// Signs the manifest, makes everything durable and renames the bundle into place.
    pub fn seal(
        mut self,
        sandbox_id: &str,
        created: &str,
        truncated_at_limit: Option<u64>,
        key: &watertight_integrity::SigningKey,
    ) -> Result<PathBuf, Error> {
        let mut files = std::mem::take(&mut *self.entries.lock().expect("entries lock"));
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let signer = key.verifying_key().fingerprint();
        let manifest = Manifest {
            sandbox_id: sandbox_id.to_string(),
            created: created.to_string(),
            signer: signer.clone(),
            truncated: truncated_at_limit,
            files,
        };
        let body = manifest.encode();
        let signature = signing::sign(key, &body);
        self.write_raw(manifest::MANIFEST_FILE, &body)?;
        self.write_raw(
            manifest::SIGNATURE_FILE,
            &SignatureFile { signer, signature }.encode(),
        )?;

        // Files were synced as they were finished; now the directory entries.
        for dir in self.dirs.lock().expect("dirs lock").iter() {
            File::open(self.temp_dir.join(dir))
                .and_then(|d| d.sync_all())
                .map_err(|e| self.io_error(e))?;
        }
        File::open(&self.temp_dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io_error(e))?;
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            &self.temp_dir,
            rustix::fs::CWD,
            &self.final_dir,
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .map_err(|e| self.io_error(e.into()))?;
        // Make the rename itself durable.
        if let Ok(parent) = File::open(&self.evidence_dir) {
            let _ = parent.sync_all();
        }
        self.sealed = true;
        Ok(self.final_dir.clone())
    }

    fn write_raw(&self, rel: &str, contents: &[u8]) -> Result<(), Error> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(self.temp_dir.join(rel))
            .map_err(|e| self.io_error(e))?;
        f.write_all(contents).map_err(|e| self.io_error(e))?;
        f.sync_data().map_err(|e| self.io_error(e))
    }
}

impl Drop for BundleWriter {
    fn drop(&mut self) {
        if !self.sealed {
            // A partial bundle would fail verification anyway; leave no litter in the evidence dir.
            let _ = std::fs::remove_dir_all(&self.temp_dir);
        }
    }
}

impl Write for BundleFile<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

impl BundleFile<'_> {
    pub fn finish(self) -> Result<(), Error> {
        let bundle = self.bundle;
        let (buffered, size, sha256) = self.writer.finish().map_err(|e| bundle.io_error(e))?;
        // Surface a late write error (ENOSPC at close) instead of losing it in drop, and make the
        // file durable on the writing thread (files are few and large: one fsync each, in
        // parallel, flushes only our data, unlike syncfs on a busy filesystem).
        let file = buffered
            .into_inner()
            .map_err(|e| bundle.io_error(e.into_error()))?;
        file.sync_data().map_err(|e| bundle.io_error(e))?;
        bundle
            .entries
            .lock()
            .expect("entries lock")
            .push(FileEntry {
                path: self.rel,
                size,
                sha256,
            });
        Ok(())
    }
}
