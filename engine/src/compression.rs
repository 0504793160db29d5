//! zstd with one compression and one decompression context per thread.
//!
//! `zstd::bulk::compress` and `decompress` make a fresh context on every call: at level 3
//! that is about a megabyte of tables allocated and cleared for each 16 KiB block or WAL
//! batch, which profiles of sealing, replay and deletion rewrites showed as a visible share
//! of their time. A context kept per thread is reset between frames instead; the frames are
//! the same bytes either way (`compressed_frames_are_what_a_fresh_context_writes`).

use std::cell::RefCell;
use std::io;

use zstd::bulk::{Compressor, Decompressor};

thread_local! {
    /// The level the context was last set to, and the context.
    static COMPRESSOR: RefCell<Option<(i32, Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Compresses `data` into one zstd frame at `level`.
pub(crate) fn compress(data: &[u8], level: i32) -> io::Result<Vec<u8>> {
    COMPRESSOR.with(|c| {
        let mut c = c.try_borrow_mut().map_err(io::Error::other)?;
        match c.as_mut() {
            Some((l, ctx)) if *l == level => ctx.compress(data),
            Some((l, ctx)) => {
                ctx.set_compression_level(level)?;
                *l = level;
                ctx.compress(data)
            }
            None => {
                let (_, ctx) = c.insert((level, Compressor::new(level)?));
                ctx.compress(data)
            }
        }
    })
}

/// Decompresses one zstd frame of at most `capacity` bytes.
pub(crate) fn decompress(data: &[u8], capacity: usize) -> io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|d| {
        let mut d = d.try_borrow_mut().map_err(io::Error::other)?;
        let ctx = match d.as_mut() {
            Some(ctx) => ctx,
            None => d.insert(Decompressor::new()?),
        };
        ctx.decompress(data, capacity)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seed: u64, len: usize) -> Vec<u8> {
        let words = ["GET", "/api/v1/logs", "200", "timeout", "user=", "db", "\n"];
        let mut x = seed;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            out.extend_from_slice(words[(x >> 33) as usize % words.len()].as_bytes());
            out.extend_from_slice(&(x >> 50).to_le_bytes()[..2]);
        }
        out
    }

    #[test]
    fn compressed_frames_are_what_a_fresh_context_writes() {
        // Levels change between calls on one thread, as the WAL (1) and segments (3) do.
        for (i, level) in [3, 3, 1, 3, 1, 1, 19, 3].into_iter().enumerate() {
            let data = sample(i as u64, 1000 + i * 7000);
            let ours = compress(&data, level).unwrap();
            assert_eq!(
                ours,
                zstd::bulk::compress(&data, level).unwrap(),
                "call {i}"
            );
            assert_eq!(decompress(&ours, data.len()).unwrap(), data);
        }
    }

    #[test]
    fn a_bad_frame_fails_and_the_next_one_still_decodes() {
        let data = sample(9, 20_000);
        let good = compress(&data, 3).unwrap();
        let mut bad = good.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        bad.truncate(bad.len() - 3);
        assert!(decompress(&bad, data.len()).is_err());
        assert!(decompress(&good, data.len() - 1).is_err(), "over capacity");
        assert_eq!(decompress(&good, data.len()).unwrap(), data);
    }
}
