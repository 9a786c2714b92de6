//! SHA-256 of files with large reads. The caller parallelises across files (rayon); one file is
//! hashed by one thread because SHA-256 is sequential.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;

/// Read size: large enough that syscall cost vanishes next to hashing, small enough to stay in L2.
const CHUNK: usize = 256 * 1024;

/// Hashes everything readable from `file`; returns (hex digest, bytes read).
pub(crate) fn sha256_file(file: &mut File, size_hint: u64) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; (size_hint as usize).clamp(1, CHUNK)];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
        if n == buf.len() && buf.len() < CHUNK {
            // The file grew past its size hint; read on in full chunks.
            buf.resize(CHUNK, 0);
        }
    }
    Ok((hex::encode(hasher.finalize()), total))
}
