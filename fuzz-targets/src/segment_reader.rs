//! The segment reader on arbitrary bytes. Invariants: `SegmentReader::open`, `verify` and
//! `read_block` return errors, never panic; a segment that verifies has the row count its
//! trailer claims; `block::decode` (versions 1 and 2) and `block::unpack` (version 3) never
//! panic, and what they decode re-encodes to a block that decodes to the same rows.
//!
//! Every block and the index are guarded by crc32c, so random bytes rarely get past `open`.
//! Each input is therefore also tried with its checksums recomputed (the layout of
//! engine/FORMAT.md, "Segment file"), which lets the fuzzer reach zstd and the block decoder
//! through the real reader.
use std::path::PathBuf;
use std::sync::OnceLock;

use ledger_engine::fs::RealFs;
use ledger_engine::segment::{
    block, SegmentReader, HEADER_LEN, INDEX_ENTRY_LEN, PROJECT_OFFSET, SEGMENT_ID_OFFSET,
    TRAILER_LEN,
};
use ledger_engine::Field;

/// Offset of an index entry's crc32c (after offset, len, raw_len, rows, masks, four ts/seqs).
const ENTRY_CRC_OFFSET: usize = 8 + 4 + 4 + 4 + 4 + 8 * 4;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let d = tempfile::tempdir().expect("temp dir");
        let p = d.path().join("0000000000000001.seg");
        (d, p)
    })
    .1
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Rewrites every checksum the reader checks so that they match the bytes; leaves inputs
/// whose trailer cannot locate an index alone.
fn fix_checksums(b: &mut [u8]) -> bool {
    if b.len() < HEADER_LEN + TRAILER_LEN {
        return false;
    }
    let project = u64_at(b, PROJECT_OFFSET);
    let id = u64_at(b, SEGMENT_ID_OFFSET);
    let t = b.len() - TRAILER_LEN;
    let index_offset = u64_at(b, t) as usize;
    let count = u32_at(b, t + 8) as usize;
    let Some(index_end) = count
        .checked_mul(INDEX_ENTRY_LEN)
        .and_then(|n| n.checked_add(index_offset))
    else {
        return false;
    };
    // The keyword filters (version 2) lie between the index entries and the trailer.
    if index_offset < HEADER_LEN || index_end > t {
        return false;
    }
    for i in 0..count {
        let e = index_offset + i * INDEX_ENTRY_LEN;
        let off = u64_at(b, e) as usize;
        let len = u32_at(b, e + 8) as usize;
        if off.checked_add(len).is_some_and(|end| end <= b.len()) {
            let c = crc32c::crc32c(&id.to_le_bytes());
            let c = crc32c::crc32c_append(c, &(off as u64).to_le_bytes());
            let c = crc32c::crc32c_append(c, &b[off..off + len]);
            b[e + ENTRY_CRC_OFFSET..e + ENTRY_CRC_OFFSET + 4].copy_from_slice(&c.to_le_bytes());
        }
    }
    let c = crc32c::crc32c(&id.to_le_bytes());
    let c = crc32c::crc32c_append(c, &project.to_le_bytes());
    let c = crc32c::crc32c_append(c, &b[index_offset..t]);
    let c = crc32c::crc32c_append(c, &b[t + 16..t + 24]);
    let c = crc32c::crc32c_append(c, &b[t + 24..t + 32]);
    b[t + 12..t + 16].copy_from_slice(&c.to_le_bytes());
    true
}

fn read_segment(bytes: &[u8]) {
    let path = scratch();
    std::fs::write(path, bytes).expect("write the scratch segment");
    let Ok(seg) = SegmentReader::open(&RealFs, path) else {
        return;
    };
    assert!(seg.file_len == bytes.len() as u64);
    let mut rows = 0u64;
    let mut all_ok = true;
    for i in 0..seg.blocks.len() {
        match seg.read_block(i) {
            Ok(r) => {
                assert_eq!(r.len(), seg.blocks[i].rows as usize);
                // A fuzzed keyword filter's answer means nothing, but it must not panic.
                for row in &r {
                    if let Some(v) = row.get(Field::Service) {
                        let _ = seg.blocks[i].may_contain(Field::Service, v);
                    }
                }
                rows += r.len() as u64;
            }
            Err(_) => all_ok = false,
        }
    }
    assert!(
        seg.read_block(seg.blocks.len()).is_err(),
        "block past the end read"
    );
    match seg.verify() {
        Ok(n) => {
            assert!(all_ok, "verify passed a segment with an unreadable block");
            assert_eq!(n, rows);
            assert_eq!(n, seg.rows);
        }
        Err(_) => assert!(
            !all_ok || rows != seg.rows,
            "verify refused a readable segment"
        ),
    }
    let _ = seg.meta();
}

/// Checks one input; panics on a broken invariant.
pub fn run(data: &[u8]) {
    // The block decoder directly.
    if let Ok(rows) = block::decode(data) {
        let again = block::decode(&block::encode(&rows)).expect("a re-encoded block decodes");
        assert_eq!(again, rows, "block changed on re-encode");
    }

    // The version 3 block decoder directly, its columns allowed a megabyte in all.
    if let Ok(rows) = block::unpack(data, 1 << 20) {
        let p = block::pack(&rows, 1).expect("a decoded block packs");
        let again = block::unpack(&p.bytes, p.raw_len).expect("a re-packed block unpacks");
        assert_eq!(again, rows, "block changed on re-pack");
    }

    // The reader on the file as given, then with its checksums made to match.
    read_segment(data);
    let mut fixed = data.to_vec();
    if fix_checksums(&mut fixed) && fixed != data {
        read_segment(&fixed);
    }
}
