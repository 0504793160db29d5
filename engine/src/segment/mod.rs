//! Sealed segments: immutable, per-project files of compressed column blocks, with a block
//! index and per-block keyword filters that let a scan skip what its time range, level or
//! exact-match filters cannot match.
//!
//! File layout (FORMAT.md, "Segment file"): `header | block* | index | filters | trailer`.

pub mod block;
pub mod bloom;
pub mod cache;
pub mod strings;

use std::borrow::Borrow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::codec::Reader;
use crate::error::{EngineError, Result};
use crate::fs::{DataFile, FileSystem};
use crate::model::{LogRecord, ProjectId};

pub const MAGIC: &[u8; 8] = b"LDGRSEG\0";
pub const TRAILER_MAGIC: &[u8; 8] = b"LDGRSEGE";
/// The version this code writes. Versions 1 (no keyword filters) and 2 (a block in one
/// zstd frame) are still read.
pub const VERSION: u8 = 3;
pub const OLDEST_READABLE_VERSION: u8 = 1;
pub const COMPRESSION_ZSTD: u8 = 1;

pub const MAGIC_OFFSET: usize = 0;
pub const VERSION_OFFSET: usize = MAGIC_OFFSET + MAGIC.len();
pub const COMPRESSION_OFFSET: usize = VERSION_OFFSET + 1;
pub const RESERVED_OFFSET: usize = COMPRESSION_OFFSET + 1;
pub const PROJECT_OFFSET: usize = RESERVED_OFFSET + 6;
pub const SEGMENT_ID_OFFSET: usize = PROJECT_OFFSET + 8;
pub const HEADER_LEN: usize = SEGMENT_ID_OFFSET + 8;

pub const INDEX_ENTRY_LEN: usize = 64;
pub const TRAILER_LEN: usize = 40;

/// Largest block (compressed or not) a reader accepts.
const MAX_BLOCK: u32 = 64 << 20;

/// Where a block is and what it holds; one 64-byte entry of the block index, plus the
/// block's keyword filter (stored after the index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMeta {
    pub offset: u64,
    pub len: u32,
    pub raw_len: u32,
    pub rows: u32,
    /// Bit `l` set when some row has level `l`.
    pub level_mask: u8,
    pub type_mask: u8,
    pub importance_mask: u8,
    pub min_ts: i64,
    pub max_ts: i64,
    pub min_seq: u64,
    pub max_seq: u64,
    pub crc: u32,
    /// The block's keyword filter ([`bloom`]); empty in version 1 segments.
    pub filter: Box<[u8]>,
}

impl BlockMeta {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.extend_from_slice(&self.rows.to_le_bytes());
        out.extend_from_slice(&[self.level_mask, self.type_mask, self.importance_mask, 0]);
        out.extend_from_slice(&self.min_ts.to_le_bytes());
        out.extend_from_slice(&self.max_ts.to_le_bytes());
        out.extend_from_slice(&self.min_seq.to_le_bytes());
        out.extend_from_slice(&self.max_seq.to_le_bytes());
        out.extend_from_slice(&self.crc.to_le_bytes());
        out.extend_from_slice(&(self.filter.len() as u32).to_le_bytes());
    }
    /// Decodes an index entry; the filter is left empty and its length returned, since the
    /// filters follow the whole index.
    fn decode(
        r: &mut Reader<'_>,
    ) -> std::result::Result<(BlockMeta, u32), crate::codec::DecodeError> {
        let offset = r.u64()?;
        let len = r.u32()?;
        let raw_len = r.u32()?;
        let rows = r.u32()?;
        let masks = r.bytes(4)?;
        let m = BlockMeta {
            offset,
            len,
            raw_len,
            rows,
            level_mask: masks[0],
            type_mask: masks[1],
            importance_mask: masks[2],
            min_ts: r.i64()?,
            max_ts: r.i64()?,
            min_seq: r.u64()?,
            max_seq: r.u64()?,
            crc: r.u32()?,
            filter: Box::default(),
        };
        let filter_len = r.u32()?;
        Ok((m, filter_len))
    }

    /// False when no row of this block can have `value` in `field`.
    pub fn may_contain(&self, field: crate::model::Field, value: &str) -> bool {
        bloom::may_contain(&self.filter, field, value)
    }
}

/// What the catalog records of a sealed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMeta {
    pub project: ProjectId,
    pub id: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub min_seq: u64,
    pub max_seq: u64,
    pub rows: u64,
    /// Size of the file.
    pub bytes: u64,
    /// Size of the blocks before compression.
    pub raw_bytes: u64,
}

/// The file name of a segment, under `segments/<project>/`.
pub fn file_name(id: u64) -> String {
    format!("{id:016x}.seg")
}

fn block_crc(segment_id: u64, offset: u64, bytes: &[u8]) -> u32 {
    let c = crc32c::crc32c(&segment_id.to_le_bytes());
    let c = crc32c::crc32c_append(c, &offset.to_le_bytes());
    crc32c::crc32c_append(c, bytes)
}

/// The checksum that guards the header's ids, the block index, the filters and the
/// trailer's totals. `index` is the index followed by the filters.
fn index_crc(segment_id: u64, project: ProjectId, index: &[u8], rows: u64, raw: u64) -> u32 {
    let c = crc32c::crc32c(&segment_id.to_le_bytes());
    let c = crc32c::crc32c_append(c, &project.to_le_bytes());
    let c = crc32c::crc32c_append(c, index);
    let c = crc32c::crc32c_append(c, &rows.to_le_bytes());
    crc32c::crc32c_append(c, &raw.to_le_bytes())
}

/// A block encoded and compressed, not yet placed in a file.
struct PackedBlock {
    raw_len: usize,
    z: Vec<u8>,
    filter: Vec<u8>,
}

fn pack_block(chunk: &[&LogRecord], zstd_level: i32) -> Result<PackedBlock> {
    let packed = block::pack(chunk, zstd_level)
        .map_err(|e| EngineError::Internal(format!("zstd compression: {e}")))?;
    Ok(PackedBlock {
        raw_len: packed.raw_len,
        z: packed.bytes,
        filter: bloom::build(chunk),
    })
}

/// Packs every chunk, on `threads` threads (the calling one among them) when there is more
/// than one; the blocks come back in order.
fn pack_blocks(
    chunks: &[&[&LogRecord]],
    zstd_level: i32,
    threads: usize,
) -> Result<Vec<PackedBlock>> {
    let threads = threads.clamp(1, chunks.len().max(1));
    if threads == 1 {
        return chunks.iter().map(|c| pack_block(c, zstd_level)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || -> Result<Vec<(usize, PackedBlock)>> {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(chunk) = chunks.get(i) else {
                return Ok(done);
            };
            done.push((i, pack_block(chunk, zstd_level)?));
        }
    };
    let parts =
        std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
            let mut parts = vec![work()];
            for h in helpers {
                parts.push(h.join().unwrap_or_else(|_| {
                    Err(EngineError::Internal("a block packer panicked".into()))
                }));
            }
            parts
        });
    let mut blocks = Vec::with_capacity(chunks.len());
    for part in parts {
        blocks.extend(part?);
    }
    blocks.sort_unstable_by_key(|(i, _)| *i);
    Ok(blocks.into_iter().map(|(_, b)| b).collect())
}

/// How a segment's rows are cut into blocks and compressed.
#[derive(Debug, Clone, Copy)]
pub struct Packing {
    /// Rows per block.
    pub block_rows: usize,
    pub zstd_level: i32,
    /// Threads that encode and compress blocks (1: the caller's alone; the bytes are the
    /// same either way).
    pub threads: usize,
}

/// Builds the bytes of a segment file from rows sorted by `(timestamp, seq)`.
pub fn build<R: Borrow<LogRecord>>(
    project: ProjectId,
    id: u64,
    rows: &[R],
    packing: &Packing,
) -> Result<(Vec<u8>, SegmentMeta)> {
    let Packing {
        block_rows,
        zstd_level,
        threads,
    } = *packing;
    let rows: Vec<&LogRecord> = rows.iter().map(|r| r.borrow()).collect();
    debug_assert!(rows.windows(2).all(|w| w[0].key() < w[1].key()));
    let chunks: Vec<&[&LogRecord]> = rows.chunks(block_rows.max(1)).collect();
    let packed = pack_blocks(&chunks, zstd_level, threads)?;
    let mut out = Vec::with_capacity(packed.iter().map(|b| b.z.len()).sum::<usize>() + 4096);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(COMPRESSION_ZSTD);
    out.extend_from_slice(&[0; 6]);
    out.extend_from_slice(&project.to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    let mut metas = Vec::new();
    let mut raw_total = 0u64;
    for (chunk, b) in chunks.iter().zip(packed) {
        let offset = out.len() as u64;
        let mask = |f: &dyn Fn(&LogRecord) -> u8| chunk.iter().fold(0u8, |m, r| m | 1 << f(r));
        metas.push(BlockMeta {
            offset,
            len: b.z.len() as u32,
            raw_len: b.raw_len as u32,
            rows: chunk.len() as u32,
            level_mask: mask(&|r| r.log.level as u8),
            type_mask: mask(&|r| r.log.log_type as u8),
            importance_mask: mask(&|r| r.log.importance as u8),
            min_ts: chunk[0].log.timestamp,
            max_ts: chunk[chunk.len() - 1].log.timestamp,
            min_seq: chunk.iter().map(|r| r.seq).min().unwrap_or(0),
            max_seq: chunk.iter().map(|r| r.seq).max().unwrap_or(0),
            crc: block_crc(id, offset, &b.z),
            filter: b.filter.into_boxed_slice(),
        });
        raw_total += b.raw_len as u64;
        out.extend_from_slice(&b.z);
    }
    let index_offset = out.len() as u64;
    let mut index = Vec::with_capacity(metas.len() * INDEX_ENTRY_LEN);
    for m in &metas {
        m.encode(&mut index);
    }
    for m in &metas {
        index.extend_from_slice(&m.filter);
    }
    out.extend_from_slice(&index);
    out.extend_from_slice(&index_offset.to_le_bytes());
    out.extend_from_slice(&(metas.len() as u32).to_le_bytes());
    out.extend_from_slice(
        &index_crc(id, project, &index, rows.len() as u64, raw_total).to_le_bytes(),
    );
    out.extend_from_slice(&(rows.len() as u64).to_le_bytes());
    out.extend_from_slice(&raw_total.to_le_bytes());
    out.extend_from_slice(TRAILER_MAGIC);
    let meta = SegmentMeta {
        project,
        id,
        min_ts: rows.first().map_or(0, |r| r.log.timestamp),
        max_ts: rows.last().map_or(0, |r| r.log.timestamp),
        min_seq: rows.iter().map(|r| r.seq).min().unwrap_or(0),
        max_seq: rows.iter().map(|r| r.seq).max().unwrap_or(0),
        rows: rows.len() as u64,
        bytes: out.len() as u64,
        raw_bytes: raw_total,
    };
    Ok((out, meta))
}

/// Writes a segment file atomically (temporary, fsync, rename, fsync directory).
pub fn write<R: Borrow<LogRecord>>(
    fs: &dyn FileSystem,
    path: &Path,
    project: ProjectId,
    id: u64,
    rows: &[R],
    packing: &Packing,
) -> Result<SegmentMeta> {
    let (bytes, meta) = build(project, id, rows, packing)?;
    crate::fs::write_atomic_in(fs, path, &bytes)?;
    Ok(meta)
}

/// An open, checked segment: its header and block index in memory, blocks read on demand,
/// from the local file or, once evicted from the local cache, from object storage.
pub struct SegmentReader {
    pub path: PathBuf,
    /// The format version it was written in.
    pub version: u8,
    pub project: ProjectId,
    pub id: u64,
    pub blocks: Vec<BlockMeta>,
    pub rows: u64,
    pub raw_bytes: u64,
    pub file_len: u64,
    file: parking_lot::RwLock<Arc<dyn DataFile>>,
    local: std::sync::atomic::AtomicBool,
    /// When a block was last read (µs; the open time until then): least recently used
    /// segments leave the local cache first.
    last_read: std::sync::atomic::AtomicI64,
}

impl std::fmt::Debug for SegmentReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SegmentReader({})", self.path.display())
    }
}

impl SegmentReader {
    /// Opens a segment and checks its header, trailer and index checksum.
    pub fn open(fs: &dyn FileSystem, path: &Path) -> Result<Arc<SegmentReader>> {
        let file = fs.open(path).map_err(|e| EngineError::io(path, e))?;
        SegmentReader::open_file(file, path, true)
    }

    /// [`SegmentReader::open`] over a handle already open: a local file, or the segment's
    /// bytes in object storage (`local` false), read by byte range.
    pub fn open_file(
        file: Arc<dyn DataFile>,
        path: &Path,
        local: bool,
    ) -> Result<Arc<SegmentReader>> {
        let corrupt = |off: u64, what: &str| EngineError::corrupt(path, off, what);
        let file_len = file.size().map_err(|e| EngineError::io(path, e))?;
        if file_len < (HEADER_LEN + TRAILER_LEN) as u64 {
            return Err(corrupt(0, "file shorter than a segment header and trailer"));
        }
        let mut header = [0u8; HEADER_LEN];
        file.read_at(&mut header, 0)
            .map_err(|e| EngineError::io(path, e))?;
        if &header[..VERSION_OFFSET] != MAGIC {
            return Err(corrupt(0, "not a Ledger segment (bad magic)"));
        }
        let version = header[VERSION_OFFSET];
        if !(OLDEST_READABLE_VERSION..=VERSION).contains(&version) {
            return Err(corrupt(
                VERSION_OFFSET as u64,
                "unsupported segment version",
            ));
        }
        if header[COMPRESSION_OFFSET] != COMPRESSION_ZSTD {
            return Err(corrupt(COMPRESSION_OFFSET as u64, "unknown compression"));
        }
        let mut r = Reader::new(&header[PROJECT_OFFSET..]);
        let project = r.u64().map_err(|e| corrupt(e.offset as u64, e.what))?;
        let id = r.u64().map_err(|e| corrupt(e.offset as u64, e.what))?;
        let trailer_at = file_len - TRAILER_LEN as u64;
        let mut trailer = [0u8; TRAILER_LEN];
        file.read_at(&mut trailer, trailer_at)
            .map_err(|e| EngineError::io(path, e))?;
        if &trailer[TRAILER_LEN - 8..] != TRAILER_MAGIC {
            return Err(corrupt(
                trailer_at + 32,
                "bad trailer magic (truncated file?)",
            ));
        }
        let mut r = Reader::new(&trailer);
        let tr = |e: crate::codec::DecodeError| corrupt(trailer_at + e.offset as u64, e.what);
        let index_offset = r.u64().map_err(tr)?;
        let count = r.u32().map_err(tr)? as u64;
        let crc = r.u32().map_err(tr)?;
        let rows = r.u64().map_err(tr)?;
        let raw_bytes = r.u64().map_err(tr)?;
        let index_end = index_offset.checked_add(count * INDEX_ENTRY_LEN as u64);
        if index_offset < HEADER_LEN as u64 || index_end.is_none_or(|end| end > trailer_at) {
            return Err(corrupt(trailer_at, "index offset and block count disagree"));
        }
        // The index and the filters after it run to the trailer; the checksum covers both.
        let mut index = vec![0u8; (trailer_at - index_offset) as usize];
        file.read_at(&mut index, index_offset)
            .map_err(|e| EngineError::io(path, e))?;
        if index_crc(id, project, &index, rows, raw_bytes) != crc {
            return Err(corrupt(index_offset, "block index checksum mismatch"));
        }
        let entries_len = count as usize * INDEX_ENTRY_LEN;
        let mut r = Reader::new(&index[..entries_len]);
        let mut blocks = Vec::with_capacity(count as usize);
        let mut at = HEADER_LEN as u64;
        let mut filter_at = entries_len;
        for i in 0..count {
            let entry_at = index_offset + i * INDEX_ENTRY_LEN as u64;
            let (mut m, filter_len) = BlockMeta::decode(&mut r)
                .map_err(|e| corrupt(index_offset + e.offset as u64, e.what))?;
            if m.offset != at || m.len > MAX_BLOCK || m.raw_len > MAX_BLOCK || m.rows == 0 {
                return Err(corrupt(entry_at, "block index entry out of range"));
            }
            let filter_len = filter_len as usize;
            let filter_ok = if version == 1 {
                filter_len == 0
            } else {
                bloom::valid_len(filter_len)
            };
            if !filter_ok || index.len() - filter_at < filter_len {
                return Err(corrupt(
                    entry_at + 60,
                    "block keyword filter length out of range",
                ));
            }
            m.filter = index[filter_at..filter_at + filter_len].into();
            filter_at += filter_len;
            at = m.offset + u64::from(m.len);
            blocks.push(m);
        }
        if filter_at != index.len() {
            return Err(corrupt(
                index_offset + filter_at as u64,
                "keyword filters do not end where the trailer starts",
            ));
        }
        if at != index_offset {
            return Err(corrupt(
                index_offset,
                "blocks do not end where the index starts",
            ));
        }
        Ok(Arc::new(SegmentReader {
            path: path.to_owned(),
            version,
            project,
            id,
            blocks,
            rows,
            raw_bytes,
            file_len,
            file: parking_lot::RwLock::new(file),
            local: std::sync::atomic::AtomicBool::new(local),
            last_read: std::sync::atomic::AtomicI64::new(crate::db::now_micros()),
        }))
    }

    /// Whether the segment's bytes are on the local disk.
    pub fn is_local(&self) -> bool {
        self.local.load(std::sync::atomic::Ordering::Acquire)
    }

    /// When a block of it was last read (µs).
    pub fn last_read(&self) -> i64 {
        self.last_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Reads from `remote` from now on (the local file is about to be deleted; reads
    /// already under way finish on it).
    pub fn go_remote(&self, remote: Arc<dyn DataFile>) {
        *self.file.write() = remote;
        self.local
            .store(false, std::sync::atomic::Ordering::Release);
    }

    pub fn min_ts(&self) -> i64 {
        self.blocks.first().map_or(i64::MAX, |b| b.min_ts)
    }
    pub fn max_ts(&self) -> i64 {
        self.blocks.last().map_or(i64::MIN, |b| b.max_ts)
    }

    /// Reads, checks and decodes block `i`.
    pub fn read_block(&self, i: usize) -> Result<Vec<LogRecord>> {
        let m = self
            .blocks
            .get(i)
            .ok_or_else(|| EngineError::Internal(format!("block {i} out of range")))?;
        let mut buf = vec![0u8; m.len as usize];
        self.last_read.store(
            crate::db::now_micros(),
            std::sync::atomic::Ordering::Relaxed,
        );
        let file = self.file.read().clone();
        file.read_at(&mut buf, m.offset)
            .map_err(|e| EngineError::io(&self.path, e))?;
        if block_crc(self.id, m.offset, &buf) != m.crc {
            return Err(EngineError::corrupt(
                &self.path,
                m.offset,
                "block checksum mismatch",
            ));
        }
        let rows = if self.version >= 3 {
            block::unpack(&buf, m.raw_len as usize).map_err(|e| {
                EngineError::corrupt(
                    &self.path,
                    m.offset,
                    format!("block decodes badly at byte {}: {}", e.offset, e.what),
                )
            })?
        } else {
            let raw = crate::compression::decompress(&buf, m.raw_len as usize)
                .map_err(|e| EngineError::corrupt(&self.path, m.offset, format!("zstd: {e}")))?;
            block::decode(&raw).map_err(|e| {
                EngineError::corrupt(
                    &self.path,
                    m.offset,
                    format!("block decodes badly at raw byte {}: {}", e.offset, e.what),
                )
            })?
        };
        if rows.len() != m.rows as usize {
            return Err(EngineError::corrupt(
                &self.path,
                m.offset,
                "block row count disagrees with the index",
            ));
        }
        Ok(rows)
    }

    /// The catalog's view of this segment.
    pub fn meta(&self) -> SegmentMeta {
        SegmentMeta {
            project: self.project,
            id: self.id,
            min_ts: self.min_ts(),
            max_ts: self.max_ts(),
            min_seq: self.blocks.iter().map(|b| b.min_seq).min().unwrap_or(0),
            max_seq: self.blocks.iter().map(|b| b.max_seq).max().unwrap_or(0),
            rows: self.rows,
            bytes: self.file_len,
            raw_bytes: self.raw_bytes,
        }
    }

    /// Reads and checks every block; the first damage is the error.
    pub fn verify(&self) -> Result<u64> {
        let mut rows = 0;
        for i in 0..self.blocks.len() {
            rows += self.read_block(i)?.len() as u64;
        }
        if rows != self.rows {
            return Err(EngineError::corrupt(
                &self.path,
                self.file_len - TRAILER_LEN as u64,
                "trailer row count disagrees with the blocks",
            ));
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;
    use crate::model::{Field, Importance, Level, LogType, NewLog};

    fn pk(block_rows: usize, threads: usize) -> Packing {
        Packing {
            block_rows,
            zstd_level: 3,
            threads,
        }
    }

    fn rows(n: usize) -> Vec<LogRecord> {
        (0..n)
            .map(|i| LogRecord {
                seq: i as u64 + 1,
                ingested_at: 1000 + i as i64,
                log: NewLog::new(
                    i as i64 * 10,
                    Level::ALL[i % 5],
                    LogType::Logger,
                    Importance::Standard,
                )
                .with(Field::Message, format!("message number {i}")),
            })
            .collect()
    }

    #[test]
    fn segment_round_trips_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(file_name(5));
        let rs = rows(2500);
        let meta = write(&RealFs, &p, 3, 5, &rs, &pk(1000, 1)).unwrap();
        let seg = SegmentReader::open(&RealFs, &p).unwrap();
        assert_eq!(seg.blocks.len(), 3);
        assert_eq!(seg.meta(), meta);
        let mut back = Vec::new();
        for i in 0..3 {
            back.extend(seg.read_block(i).unwrap());
        }
        assert_eq!(back, rs);
        assert_eq!(seg.verify().unwrap(), 2500);
    }

    #[test]
    fn blocks_packed_on_several_threads_make_the_same_file() {
        let rs = rows(5000);
        let (one, meta) = build(4, 9, &rs, &pk(256, 1)).unwrap();
        for threads in [2, 3, 64] {
            let (many, m) = build(4, 9, &rs, &pk(256, threads)).unwrap();
            assert!(many == one, "{threads} threads");
            assert_eq!(m, meta);
        }
        // Fewer chunks than threads, and no rows at all.
        assert!(
            build(4, 9, &rs[..10], &pk(256, 4)).unwrap().0
                == build(4, 9, &rs[..10], &pk(256, 1)).unwrap().0
        );
        assert!(
            build::<LogRecord>(4, 9, &[], &pk(256, 4)).unwrap().0
                == build::<LogRecord>(4, 9, &[], &pk(256, 1)).unwrap().0
        );
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let rs = rows(30);
        let (bytes, _) = build(1, 2, &rs, &pk(10, 1)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.seg");
        // Flip one bit in each byte (stepping to keep the test quick); every flip must be
        // refused at open or at verify, never decode to different rows.
        for at in (0..bytes.len()).step_by(3) {
            let mut b = bytes.clone();
            b[at] ^= 0x04;
            std::fs::write(&p, &b).unwrap();
            let ok = SegmentReader::open(&RealFs, &p).and_then(|s| s.verify());
            // Reserved bytes are not covered by a checksum; everything else is.
            let reserved = (RESERVED_OFFSET..PROJECT_OFFSET).contains(&at);
            if !reserved {
                assert!(ok.is_err(), "flip at {at} went unnoticed");
            }
        }
    }

    #[test]
    fn truncated_segment_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(file_name(1));
        write(&RealFs, &p, 1, 1, &rows(100), &pk(10, 1)).unwrap();
        let len = std::fs::metadata(&p).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(len - 7).unwrap();
        let err = SegmentReader::open(&RealFs, &p).unwrap_err().to_string();
        assert!(err.contains(&p.display().to_string()), "{err}");
    }
}
