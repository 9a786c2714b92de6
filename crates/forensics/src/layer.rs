//! A writable layer as a tar archive. The layer is read through /proc/<pid>/root, where an
//! absolute symlink would resolve on the HOST: symlinks are archived as symlinks, never
//! followed, and every regular file is opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
//! relative to the layer root, so nothing outside the layer can end up in the evidence.

use crate::bundle::BundleWriter;
use crate::error::Error;
use crate::record::{LayerEntry, LayerRecord, Unreadable, MAX_LISTED_ENTRIES};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::fs::File;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

pub fn capture_layer(
    bundle: &BundleWriter,
    name: &str,
    source: &Path,
) -> Result<LayerRecord, Error> {
    let mut record = LayerRecord {
        name: name.to_string(),
        source: source.display().to_string(),
        archive: None,
        entries: Vec::new(),
        entries_not_listed: 0,
        skipped: Vec::new(),
    };
    let root = match File::open(source) {
        Ok(f) => f,
        Err(e) => {
            record.skipped.push(Unreadable {
                what: source.display().to_string(),
                error: format!("cannot open the layer: {e}"),
            });
            return Ok(record);
        }
    };
    bundle.create_dir("layers")?;
    let rel = format!("layers/{name}.tar");
    let out = bundle.create_file(&rel)?;
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);

    // Same filesystem only: the layer is one tmpfs; a mount the program stacked inside it is not
    // part of it (and might be a bind of something huge).
    let walker = walkdir::WalkDir::new(source)
        .follow_links(false)
        .same_file_system(true)
        .sort_by_file_name()
        .min_depth(1);
    for item in walker {
        let entry = match item {
            Ok(e) => e,
            Err(e) => {
                let what = e
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| source.display().to_string());
                record.skipped.push(Unreadable {
                    what,
                    error: e.to_string(),
                });
                continue;
            }
        };
        let inner = entry
            .path()
            .strip_prefix(source)
            .expect("walkdir yields paths under its root")
            .to_path_buf();
        let shown = inner.to_string_lossy().into_owned();
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) => {
                record.skipped.push(Unreadable {
                    what: shown,
                    error: e.to_string(),
                });
                continue;
            }
        };
        let ft = meta.file_type();
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        let mut listed = LayerEntry {
            path: shown.clone(),
            kind: String::new(),
            size: 0,
            mode: meta.mode() & 0o7777,
            mtime: meta.mtime(),
            link_target: None,
        };
        // Errors reading the layer before anything is appended only lose that entry; an error
        // inside an append leaves the archive broken, so it fails the capture.
        if ft.is_symlink() {
            listed.kind = "symlink".into();
            let target = match std::fs::read_link(entry.path()) {
                Ok(t) => t,
                Err(e) => {
                    skip(&mut record, shown, e);
                    continue;
                }
            };
            listed.link_target = Some(target.to_string_lossy().into_owned());
            header.set_size(0);
            tar.append_link(&mut header, &inner, &target)
                .map_err(|e| bundle.io_error(e))?;
        } else if ft.is_file() {
            listed.kind = "file".into();
            let opened = open_beneath(&root, &inner).and_then(|f| {
                let len = f.metadata()?.len();
                Ok((f, len))
            });
            let (file, len) = match opened {
                Ok(x) => x,
                Err(e) => {
                    skip(&mut record, shown, e);
                    continue;
                }
            };
            // Size from the opened file: the one whose bytes go into the archive.
            listed.size = len;
            header.set_size(len);
            let mut reader = TrackedRead {
                inner: std::io::Read::take(file, len),
                failed: None,
            };
            if let Err(e) = tar.append_data(&mut header, &inner, &mut reader) {
                return Err(match reader.failed {
                    Some(kind) => Error::LayerRead {
                        path: entry.path().to_path_buf(),
                        source: std::io::Error::new(kind, e.to_string()),
                    },
                    None => bundle.io_error(e),
                });
            }
        } else if ft.is_dir() || ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
            listed.kind = if ft.is_dir() {
                "dir"
            } else if ft.is_fifo() {
                "fifo"
            } else if ft.is_char_device() {
                "char"
            } else {
                "block"
            }
            .into();
            header.set_size(0);
            tar.append_data(&mut header, &inner, std::io::empty())
                .map_err(|e| bundle.io_error(e))?;
        } else {
            record.skipped.push(Unreadable {
                what: shown,
                error: "socket: tar cannot hold one".into(),
            });
            continue;
        }
        if record.entries.len() < MAX_LISTED_ENTRIES {
            record.entries.push(listed);
        } else {
            record.entries_not_listed += 1;
        }
    }
    let out = tar.into_inner().map_err(|e| bundle.io_error(e))?;
    out.finish()?;
    record.archive = Some(rel);
    Ok(record)
}

fn open_beneath(root: &File, inner: &Path) -> std::io::Result<File> {
    let fd = rustix::fs::openat2(
        root,
        inner,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )?;
    Ok(File::from(fd))
}

fn skip(record: &mut LayerRecord, what: String, e: std::io::Error) {
    record.skipped.push(Unreadable {
        what,
        error: e.to_string(),
    });
}

/// Remembers whether a read failed, to tell a layer read error from a bundle write error.
struct TrackedRead<R> {
    inner: R,
    failed: Option<std::io::ErrorKind>,
}

impl<R: std::io::Read> std::io::Read for TrackedRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner
            .read(buf)
            .inspect_err(|e| self.failed = Some(e.kind()))
    }
}
