//! A writer that hashes what passes through it, so each bundle file is hashed while it is
//! written instead of being read back afterwards.

use sha2::{Digest, Sha256};
use std::io::{self, Write};

pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// Flushes and returns the inner writer, the byte count and the SHA-256 of everything written.
    pub fn finish(mut self) -> io::Result<(W, u64, [u8; 32])> {
        self.inner.flush()?;
        Ok((self.inner, self.size, self.hasher.finalize().into()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        // Only what the inner writer accepted counts, so a short write never skews the hash.
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_one_shot_digest() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (bytes, size, digest) = w.finish().unwrap();
        assert_eq!(bytes, b"hello world");
        assert_eq!(size, 11);
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(b"hello world")));
    }
}
