//! A writable layer as a tar archive. The layer is read through /proc/<pid>/root (or, for the
//! overlay's upper layer, through a descriptor of the sandbox's pid 1), where an absolute
//! symlink would resolve on the HOST: symlinks are archived as symlinks, never followed, and
//! every regular file is opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) relative to
//! the layer root, so nothing outside the layer can end up in the evidence.
//!
//! The archive never holds more than the layer really stores, and never more than the budget:
//! - a hard link is a tar link entry to the first path of its inode (its data once);
//! - a file with holes is a GNU sparse entry holding only its data extents (SEEK_DATA /
//!   SEEK_HOLE), its logical size in the header; `tar` and the `tar` crate read it back;
//! - every header, long name, data block and `capture.json` listing line is charged to the
//!   bundle's [`Budget`]; what does not fit is cut, recorded, and the walk stops.

use crate::budget::Budget;
use crate::bundle::BundleWriter;
use crate::error::Error;
use crate::record::{LayerEntry, LayerRecord, Unreadable, MAX_LISTED_ENTRIES};
use crate::text;
use rustix::fs::{Mode, OFlags, ResolveFlags, SeekFrom};
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

const BLOCK: u64 = 512;

pub fn capture_layer(
    bundle: &BundleWriter,
    budget: &Budget,
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
        truncated: None,
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
    // (dev, ino) of every regular file with more than one link -> its first archived path.
    let mut first_links: HashMap<(u64, u64), PathBuf> = HashMap::new();

    // Same filesystem only: the layer is one tmpfs; a mount the program stacked inside it is not
    // part of it (and might be a bind of something huge).
    let walker = walkdir::WalkDir::new(source)
        .follow_links(false)
        .same_file_system(true)
        .sort_by_file_name()
        .min_depth(1);
    for item in walker {
        if budget.is_exhausted() {
            record.truncated = Some(format!(
                "the evidence budget of {} bytes was reached elsewhere in the bundle; the rest of this layer was not archived",
                budget.limit()
            ));
            break;
        }
        let entry = match item {
            Ok(e) => e,
            Err(e) => {
                let what = e
                    .path()
                    .map(|p| shown(p.strip_prefix(source).unwrap_or(p)))
                    .unwrap_or_else(|| source.display().to_string());
                if !skip(budget, &mut record, what, e.to_string()) {
                    break;
                }
                continue;
            }
        };
        let inner = entry
            .path()
            .strip_prefix(source)
            .expect("walkdir yields paths under its root")
            .to_path_buf();
        let shown_path = shown(&inner);
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) => {
                if !skip(budget, &mut record, shown_path, e.to_string()) {
                    break;
                }
                continue;
            }
        };
        let ft = meta.file_type();
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        let mut listed = LayerEntry {
            path: shown_path.clone(),
            kind: String::new(),
            size: 0,
            stored: None,
            sparse: false,
            truncated: false,
            mode: meta.mode() & 0o7777,
            mtime: meta.mtime(),
            link_target: None,
        };
        let path_len = inner.as_os_str().len() as u64;
        // Errors reading the layer before anything is appended only lose that entry; an error
        // inside an append leaves the archive broken, so it fails the capture.
        if ft.is_symlink() {
            listed.kind = "symlink".into();
            let target = match std::fs::read_link(entry.path()) {
                Ok(t) => t,
                Err(e) => {
                    if !skip(budget, &mut record, shown_path, e.to_string()) {
                        break;
                    }
                    continue;
                }
            };
            listed.link_target = Some(shown(&target));
            let cost = entry_cost(path_len, target.as_os_str().len() as u64, 0);
            if !charge(budget, &mut record, cost, &shown_path) {
                break;
            }
            header.set_size(0);
            tar.append_link(&mut header, &inner, &target)
                .map_err(|e| bundle.io_error(e))?;
        } else if ft.is_file() && meta.nlink() > 1 && first_links.contains_key(&key(&meta)) {
            // Another name of an inode already archived: a link entry, the data is there once.
            let first = first_links[&key(&meta)].clone();
            listed.kind = "hardlink".into();
            listed.size = meta.len();
            listed.link_target = Some(shown(&first));
            let cost = entry_cost(path_len, first.as_os_str().len() as u64, 0);
            if !charge(budget, &mut record, cost, &shown_path) {
                break;
            }
            header.set_entry_type(tar::EntryType::Link);
            header.set_size(0);
            tar.append_link(&mut header, &inner, &first)
                .map_err(|e| bundle.io_error(e))?;
        } else if ft.is_file() {
            listed.kind = "file".into();
            let opened = open_beneath(&root, &inner).and_then(|f| {
                let m = f.metadata()?;
                Ok((f, m))
            });
            let (file, fmeta) = match opened {
                Ok(x) => x,
                Err(e) => {
                    if !skip(budget, &mut record, shown_path, e.to_string()) {
                        break;
                    }
                    continue;
                }
            };
            // Size from the opened file: the one whose bytes go into the archive.
            let len = fmeta.len();
            listed.size = len;
            let header_cost = entry_cost(path_len, 0, 0);
            // Data the budget could still hold after this entry's header (the walk stops after a
            // cut, so no later entry needs room).
            let room = budget.layer_remaining().saturating_sub(header_cost + BLOCK) / BLOCK * BLOCK;
            let (mut extents, complete) =
                match data_extents(&file, &fmeta, room.saturating_add(BLOCK)) {
                    Ok(x) => x,
                    Err(e) => {
                        if !skip(budget, &mut record, shown_path, e.to_string()) {
                            break;
                        }
                        continue;
                    }
                };
            let full: u64 = extents.iter().map(|e| e.1).sum();
            let sparse = if complete {
                full < len
            } else {
                fmeta.blocks().saturating_mul(512) < len
            };
            let mut cost = header_cost + round_up(full) + sparse_map_cost(extents.len());
            let mut cut = false;
            if !complete || !budget.take_layer(cost) {
                // Keep the first data extents that fit; the file ends where they end. The tasks
                // are captured at the same time and may take budget between the look at what
                // remains and the take: cut again to what remains then, until it fits.
                cut = true;
                let mut room = room;
                let fitted = loop {
                    extents = cut_extents(extents, room);
                    let kept: u64 = extents.iter().map(|e| e.1).sum();
                    cost = header_cost + round_up(kept) + sparse_map_cost(extents.len());
                    if kept == 0 {
                        break false;
                    }
                    if budget.take_layer(cost) {
                        break true;
                    }
                    room = budget.layer_remaining().saturating_sub(header_cost + BLOCK) / BLOCK
                        * BLOCK;
                };
                if !fitted {
                    exhausted(budget, &mut record, &shown_path, len);
                    break;
                }
            }
            let stored: u64 = extents.iter().map(|e| e.1).sum();
            // A cut file's logical end is its last kept byte: no invented trailing hole.
            let real = if cut {
                extents.last().map(|e| e.0 + e.1).unwrap_or(0)
            } else {
                len
            };
            listed.sparse = sparse;
            listed.truncated = cut;
            if stored != len {
                listed.stored = Some(stored);
            }
            let dense = match extents.as_slice() {
                [] => real == 0,
                [(0, n)] => *n == real,
                _ => false,
            };
            let mut reader = if dense {
                header.set_size(stored);
                ExtentReader::new(file, extents, Vec::new())
            } else {
                let maps = sparse_header(&mut header, &extents, real, stored);
                ExtentReader::new(file, extents, maps)
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
            if meta.nlink() > 1 {
                first_links.insert(key(&meta), inner.clone());
            }
            if cut {
                listed_push(&mut record, listed);
                exhausted(budget, &mut record, &shown_path, len);
                break;
            }
        } else if ft.is_dir() || ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
            listed.kind = if ft.is_dir() {
                "dir"
            } else if ft.is_fifo() {
                "fifo"
            } else if ft.is_char_device() && meta.rdev() == 0 {
                "whiteout"
            } else if ft.is_char_device() {
                "char"
            } else {
                "block"
            }
            .into();
            if !charge(budget, &mut record, entry_cost(path_len, 0, 0), &shown_path) {
                break;
            }
            header.set_size(0);
            tar.append_data(&mut header, &inner, std::io::empty())
                .map_err(|e| bundle.io_error(e))?;
        } else {
            let error = "socket: tar cannot hold one".to_string();
            if !skip(budget, &mut record, shown_path, error) {
                break;
            }
            continue;
        }
        listed_push(&mut record, listed);
    }
    let out = tar.into_inner().map_err(|e| bundle.io_error(e))?;
    out.finish()?;
    record.archive = Some(rel);
    Ok(record)
}

fn listed_push(record: &mut LayerRecord, listed: LayerEntry) {
    if record.entries.len() < MAX_LISTED_ENTRIES {
        record.entries.push(listed);
    } else {
        record.entries_not_listed += 1;
    }
}

/// Charges a data-less entry; on failure records the cut and returns false (stop the walk).
fn charge(budget: &Budget, record: &mut LayerRecord, cost: u64, path: &str) -> bool {
    if budget.take_layer(cost) {
        return true;
    }
    exhausted(budget, record, path, 0);
    false
}

fn exhausted(budget: &Budget, record: &mut LayerRecord, path: &str, size: u64) {
    let what = format!(
        "layer {}: {} ({size} bytes) did not fit in the evidence budget of {} bytes",
        record.name,
        text::quote_captured(path),
        budget.limit()
    );
    record.truncated = Some(format!(
        "the evidence budget of {} bytes was reached at {}; the rest of this layer was not archived",
        budget.limit(),
        text::quote_captured(path)
    ));
    budget.exhaust(what);
}

fn key(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

fn shown(p: &Path) -> String {
    text::from_bytes(p.as_os_str().as_bytes())
}

fn round_up(n: u64) -> u64 {
    n.div_ceil(BLOCK) * BLOCK
}

/// Bytes one entry costs: its tar header, GNU long-name and long-link entries, its data, and
/// its line in the `capture.json` listing (control characters take 6 bytes there).
fn entry_cost(path_len: u64, link_len: u64, data: u64) -> u64 {
    let long = |n: u64| if n >= 100 { BLOCK + round_up(n + 1) } else { 0 };
    BLOCK + long(path_len) + long(link_len) + round_up(data) + 6 * (path_len + link_len) + 200
}

/// Extension headers of a GNU sparse entry: 4 extents fit in the header, 21 in each extension
/// (plus the terminating (size, 0) extent when the file ends in a hole).
fn sparse_map_cost(extents: usize) -> u64 {
    let n = extents as u64 + 1;
    if n <= 4 {
        0
    } else {
        (n - 4).div_ceil(21) * BLOCK
    }
}

/// The data extents of `file` (offset, length), 512-byte aligned (the tar format requires it),
/// found with SEEK_DATA/SEEK_HOLE when the file has fewer blocks than its size says. Stops once
/// more than `max_data` bytes are found (the rest could not be archived anyway); the flag says
/// whether the list is complete.
fn data_extents(
    file: &File,
    meta: &std::fs::Metadata,
    max_data: u64,
) -> std::io::Result<(Vec<(u64, u64)>, bool)> {
    let len = meta.len();
    if len == 0 {
        return Ok((Vec::new(), true));
    }
    if meta.blocks().saturating_mul(512) >= len {
        return Ok((vec![(0, len)], true));
    }
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut pos = 0u64;
    let mut total = 0u64;
    while pos < len {
        if total > max_data {
            return Ok((out, false));
        }
        let start = match rustix::fs::seek(file, SeekFrom::Data(pos)) {
            Ok(s) => s,
            Err(rustix::io::Errno::NXIO) => break,
            // A filesystem without SEEK_DATA: treat the file as dense.
            Err(rustix::io::Errno::INVAL) if out.is_empty() => return Ok((vec![(0, len)], true)),
            Err(e) => return Err(e.into()),
        };
        if start >= len {
            break;
        }
        let end = rustix::fs::seek(file, SeekFrom::Hole(start))?.min(len);
        let (a, b) = (start / BLOCK * BLOCK, round_up(end).min(len));
        match out.last_mut() {
            Some(last) if a <= last.0 + last.1 => {
                let new_end = b.max(last.0 + last.1);
                total += new_end - (last.0 + last.1);
                last.1 = new_end - last.0;
            }
            _ => {
                out.push((a, b - a));
                total += b - a;
            }
        }
        pos = end.max(start + 1);
    }
    Ok((out, true))
}

/// The first extents holding at most `room` bytes of data (the last one shortened, in whole
/// 512-byte blocks).
fn cut_extents(extents: Vec<(u64, u64)>, room: u64) -> Vec<(u64, u64)> {
    let mut left = room / BLOCK * BLOCK;
    let mut out = Vec::new();
    for (off, n) in extents {
        if left == 0 {
            break;
        }
        let take = n.min(left);
        out.push((off, take));
        left -= take;
    }
    out
}

/// Makes `header` a GNU sparse entry and returns the extension headers that must follow it.
fn sparse_header(
    header: &mut tar::Header,
    extents: &[(u64, u64)],
    real_size: u64,
    stored: u64,
) -> Vec<u8> {
    let mut map: Vec<(u64, u64)> = extents.to_vec();
    // GNU tar ends the map of a file that ends in a hole with (size, 0).
    if map.last().is_none_or(|e| e.0 + e.1 < real_size) {
        map.push((real_size, 0));
    }
    header.set_entry_type(tar::EntryType::GNUSparse);
    header.set_size(stored);
    let gnu = header.as_gnu_mut().expect("a GNU header");
    gnu.set_real_size(real_size);
    let (first, rest) = map.split_at(map.len().min(4));
    for (slot, (off, n)) in gnu.sparse.iter_mut().zip(first) {
        slot.set_offset(*off);
        slot.set_length(*n);
    }
    gnu.set_is_extended(!rest.is_empty());
    let mut out = Vec::new();
    let chunks: Vec<&[(u64, u64)]> = rest.chunks(21).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let mut ext = tar::GnuExtSparseHeader::new();
        for (slot, (off, n)) in ext.sparse.iter_mut().zip(chunk.iter()) {
            slot.set_offset(*off);
            slot.set_length(*n);
        }
        ext.set_is_extended(i + 1 < chunks.len());
        out.extend_from_slice(ext.as_bytes());
    }
    out
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

/// Records an entry left out of the archive. The record costs `capture.json` bytes, so it is
/// charged like a listing line (a program can make a million sockets); false when it does not
/// fit (the walk stops).
fn skip(budget: &Budget, record: &mut LayerRecord, what: String, error: String) -> bool {
    if !budget.take_layer(entry_cost(what.len() as u64, error.len() as u64, 0)) {
        exhausted(budget, record, &what, 0);
        return false;
    }
    record.skipped.push(Unreadable { what, error });
    true
}

/// The sparse map's extension headers, then each extent's bytes read with pread. A file that
/// shrank meanwhile (a read-write bind the host changes) reads as zeros to the recorded length,
/// so the archive stays well-formed. Remembers whether a read failed, to tell a layer read
/// error from a bundle write error.
struct ExtentReader {
    file: File,
    prefix: Vec<u8>,
    prefix_pos: usize,
    extents: Vec<(u64, u64)>,
    index: usize,
    done_in_extent: u64,
    failed: Option<std::io::ErrorKind>,
}

impl ExtentReader {
    fn new(file: File, extents: Vec<(u64, u64)>, prefix: Vec<u8>) -> ExtentReader {
        ExtentReader {
            file,
            prefix,
            prefix_pos: 0,
            extents,
            index: 0,
            done_in_extent: 0,
            failed: None,
        }
    }
}

impl Read for ExtentReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.prefix_pos < self.prefix.len() {
            let n = buf.len().min(self.prefix.len() - self.prefix_pos);
            buf[..n].copy_from_slice(&self.prefix[self.prefix_pos..self.prefix_pos + n]);
            self.prefix_pos += n;
            return Ok(n);
        }
        while let Some(&(off, len)) = self.extents.get(self.index) {
            let left = len - self.done_in_extent;
            if left == 0 {
                self.index += 1;
                self.done_in_extent = 0;
                continue;
            }
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match self
                .file
                .read_at(&mut buf[..want], off + self.done_in_extent)
            {
                Ok(0) => {
                    buf[..want].fill(0);
                    want
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.failed = Some(e.kind());
                    return Err(e);
                }
            };
            self.done_in_extent += n as u64;
            return Ok(n);
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_and_cuts() {
        assert_eq!(sparse_map_cost(3), 0);
        assert_eq!(sparse_map_cost(4), BLOCK);
        assert_eq!(sparse_map_cost(24), BLOCK);
        assert_eq!(sparse_map_cost(25), 2 * BLOCK);
        assert_eq!(
            cut_extents(vec![(0, 4096), (8192, 4096)], 5000),
            vec![(0, 4096), (8192, 512)]
        );
        assert!(entry_cost(200, 0, 0) > entry_cost(10, 0, 0) + BLOCK);
    }
}
