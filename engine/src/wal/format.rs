//! The WAL's bytes: the file header, the record frame, and the batch payload.
//! FORMAT.md, "Write-ahead log", is the prose version of this file.

use crate::codec::{self, DecodeError, Reader};
use crate::model::{LogRecord, ProjectId};

pub const MAGIC: &[u8; 8] = b"LDGRWAL\0";
pub const VERSION: u8 = 1;

pub const MAGIC_OFFSET: usize = 0;
pub const VERSION_OFFSET: usize = MAGIC_OFFSET + MAGIC.len();
pub const RESERVED_OFFSET: usize = VERSION_OFFSET + 1;
pub const FILE_NO_OFFSET: usize = RESERVED_OFFSET + 7;
pub const HEADER_LEN: usize = FILE_NO_OFFSET + 8;

/// Frame: `len u32 | crc32c u32 | payload[len]`.
pub const FRAME_LEN_OFFSET: usize = 0;
pub const FRAME_CRC_OFFSET: usize = FRAME_LEN_OFFSET + 4;
pub const FRAME_HEADER_LEN: usize = FRAME_CRC_OFFSET + 4;

/// Batch payload header: `kind u8 | flags u8 | project u64 | first_seq u64 | count u32`.
pub const KIND_OFFSET: usize = 0;
pub const FLAGS_OFFSET: usize = KIND_OFFSET + 1;
pub const PROJECT_OFFSET: usize = FLAGS_OFFSET + 1;
pub const FIRST_SEQ_OFFSET: usize = PROJECT_OFFSET + 8;
pub const COUNT_OFFSET: usize = FIRST_SEQ_OFFSET + 8;
pub const BATCH_HEADER_LEN: usize = COUNT_OFFSET + 4;
/// Length of the usage field that follows the header when [`FLAG_USAGE`] is set.
pub const USAGE_LEN: usize = 8;

pub const KIND_BATCH: u8 = 1;
/// Flag bit: the body after the batch header is one zstd frame.
pub const FLAG_ZSTD: u8 = 1;
/// Flag bit: a `u64` of usage bytes (what the client sent for these logs) follows the batch
/// header, before the body. Batches with it count towards their project's daily usage on
/// replay; batches written before usage lived in the WAL lack it and are not counted.
pub const FLAG_USAGE: u8 = 2;
/// Flag bits a reader understands; any other bit is damage.
pub const KNOWN_FLAGS: u8 = FLAG_ZSTD | FLAG_USAGE;

/// Larger lengths are damage, not records.
pub const MAX_PAYLOAD: usize = 256 << 20;

/// The file's header bytes.
pub fn file_header(file_no: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[MAGIC_OFFSET..VERSION_OFFSET].copy_from_slice(MAGIC);
    h[VERSION_OFFSET] = VERSION;
    h[FILE_NO_OFFSET..HEADER_LEN].copy_from_slice(&file_no.to_le_bytes());
    h
}

/// Checks a file header and returns its file number.
pub fn parse_header(buf: &[u8]) -> Result<u64, DecodeError> {
    let bad = |offset, what| DecodeError { offset, what };
    if buf.len() < HEADER_LEN {
        return Err(bad(buf.len(), "file shorter than the WAL header"));
    }
    if &buf[MAGIC_OFFSET..VERSION_OFFSET] != MAGIC {
        return Err(bad(MAGIC_OFFSET, "not a Ledger WAL file (bad magic)"));
    }
    if buf[VERSION_OFFSET] != VERSION {
        return Err(bad(VERSION_OFFSET, "unsupported WAL version"));
    }
    Ok(u64::from_le_bytes(
        buf[FILE_NO_OFFSET..HEADER_LEN].try_into().expect("8 bytes"),
    ))
}

/// The checksum of a frame: crc32c over the file number, the length and the payload, so a
/// record copied from another WAL file, or read at a stale length, fails verification.
pub fn frame_crc(file_no: u64, payload: &[u8]) -> u32 {
    let c = crc32c::crc32c(&file_no.to_le_bytes());
    let c = crc32c::crc32c_append(c, &(payload.len() as u32).to_le_bytes());
    crc32c::crc32c_append(c, payload)
}

/// Appends a whole frame around `payload`.
pub fn put_frame(out: &mut Vec<u8>, file_no: u64, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&frame_crc(file_no, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The encoded rows of a batch, built by the appending thread before the writer assigns
/// sequence numbers.
pub struct EncodedBody {
    pub flags: u8,
    pub bytes: Vec<u8>,
    /// The batch's usage bytes (see [`FLAG_USAGE`]); `None` writes a batch without them.
    pub usage_bytes: Option<u64>,
}

/// Encodes the rows of a batch; compresses them when that pays.
pub fn encode_body(records: &[LogRecord], compress: bool) -> EncodedBody {
    let mut raw = Vec::with_capacity(records.len() * 512);
    for r in records {
        codec::encode_row(&mut raw, r.ingested_at, &r.log);
    }
    if compress && raw.len() >= 2048 {
        if let Ok(z) = crate::compression::compress(&raw, 1) {
            if z.len() < raw.len() {
                return EncodedBody {
                    flags: FLAG_ZSTD,
                    bytes: z,
                    usage_bytes: None,
                };
            }
        }
    }
    EncodedBody {
        flags: 0,
        bytes: raw,
        usage_bytes: None,
    }
}

/// Builds a batch payload from a body and the sequence number of its first row.
pub fn batch_payload(
    out: &mut Vec<u8>,
    project: ProjectId,
    first_seq: u64,
    count: u32,
    body: &EncodedBody,
) {
    out.push(KIND_BATCH);
    let usage_flag = if body.usage_bytes.is_some() {
        FLAG_USAGE
    } else {
        0
    };
    out.push(body.flags | usage_flag);
    out.extend_from_slice(&project.to_le_bytes());
    out.extend_from_slice(&first_seq.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    if let Some(u) = body.usage_bytes {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out.extend_from_slice(&body.bytes);
}

/// A decoded batch record.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub project: ProjectId,
    pub first_seq: u64,
    pub records: Vec<LogRecord>,
    /// Usage bytes, for batches that count towards daily usage ([`FLAG_USAGE`]).
    pub usage_bytes: Option<u64>,
}

impl Batch {
    pub fn last_seq(&self) -> u64 {
        self.first_seq + self.records.len() as u64 - 1
    }
}

/// Reads only the header of a batch payload: `(project, first_seq, count)`.
pub fn peek_batch(payload: &[u8]) -> Result<(ProjectId, u64, u32), DecodeError> {
    let mut r = Reader::new(payload);
    let kind = r.u8()?;
    if kind != KIND_BATCH {
        return Err(DecodeError {
            offset: KIND_OFFSET,
            what: "unknown WAL record kind",
        });
    }
    let flags = r.u8()?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(DecodeError {
            offset: FLAGS_OFFSET,
            what: "unknown batch flags",
        });
    }
    let project = r.u64()?;
    let first_seq = r.u64()?;
    let count = r.u32()?;
    if count == 0 || first_seq.checked_add(u64::from(count)).is_none() {
        return Err(DecodeError {
            offset: COUNT_OFFSET,
            what: "batch row count out of range",
        });
    }
    Ok((project, first_seq, count))
}

/// Decodes a whole batch payload.
pub fn decode_batch(payload: &[u8]) -> Result<Batch, DecodeError> {
    let (project, first_seq, count) = peek_batch(payload)?;
    let flags = payload[FLAGS_OFFSET];
    let mut body_start = BATCH_HEADER_LEN;
    let usage_bytes = if flags & FLAG_USAGE != 0 {
        let mut r = Reader::new(&payload[BATCH_HEADER_LEN..]);
        let u = r.u64().map_err(|e| DecodeError {
            offset: BATCH_HEADER_LEN + e.offset,
            what: "batch usage bytes cut short",
        })?;
        body_start += USAGE_LEN;
        Some(u)
    } else {
        None
    };
    let body = &payload[body_start..];
    let unpacked;
    let body = if flags & FLAG_ZSTD != 0 {
        // A row is at least 20 bytes, so a count bounds the honest size; a bomb is refused.
        let cap = (count as usize)
            .saturating_mul(256 << 10)
            .min(MAX_PAYLOAD * 4);
        unpacked = crate::compression::decompress(body, cap).map_err(|_| DecodeError {
            offset: body_start,
            what: "batch body does not decompress",
        })?;
        &unpacked[..]
    } else {
        body
    };
    let mut r = Reader::new(body);
    let mut records = Vec::with_capacity((count as usize).min(body.len() / 20 + 1));
    for i in 0..u64::from(count) {
        records.push(
            codec::decode_row(&mut r, first_seq + i).map_err(|e| DecodeError {
                offset: body_start + e.offset,
                what: e.what,
            })?,
        );
    }
    if r.remaining() != 0 {
        return Err(DecodeError {
            offset: body_start + r.pos(),
            what: "trailing bytes after the last row",
        });
    }
    Ok(Batch {
        project,
        first_seq,
        records,
        usage_bytes,
    })
}

/// What is wrong at the first bad frame of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset in the file of the first bad frame.
    pub offset: u64,
    pub what: String,
    /// True when no valid frame follows the damage: the shape of a write torn by a crash.
    pub tail_only: bool,
}

/// The result of checking every frame of one WAL file.
#[derive(Debug)]
pub struct FileScan {
    pub file_no: u64,
    /// `(offset of frame, payload range)` for each valid frame before any damage.
    pub frames: Vec<(u64, std::ops::Range<usize>)>,
    pub damage: Option<Damage>,
}

/// Checks one frame at `pos`; returns the payload range when it is whole and its checksum
/// matches.
fn frame_at(buf: &[u8], pos: usize, file_no: u64) -> Result<std::ops::Range<usize>, String> {
    if buf.len() - pos < FRAME_HEADER_LEN {
        return Err("incomplete frame header".into());
    }
    let len = u32::from_le_bytes(buf[pos..pos + 4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(buf[pos + 4..pos + 8].try_into().expect("4 bytes"));
    if !(BATCH_HEADER_LEN..=MAX_PAYLOAD).contains(&len) {
        return Err(format!("implausible frame length {len}"));
    }
    let start = pos + FRAME_HEADER_LEN;
    if buf.len() - start < len {
        return Err(format!(
            "frame of {len} bytes runs past the end of the file"
        ));
    }
    let payload = &buf[start..start + len];
    if frame_crc(file_no, payload) != crc {
        return Err("frame checksum mismatch".into());
    }
    Ok(start..start + len)
}

/// Checks every frame of a WAL file held in `buf`. Never panics on any input.
pub fn scan_file(buf: &[u8]) -> Result<FileScan, DecodeError> {
    let file_no = parse_header(buf)?;
    let mut frames = Vec::new();
    let mut pos = HEADER_LEN;
    while pos < buf.len() {
        match frame_at(buf, pos, file_no) {
            Ok(range) => {
                frames.push((pos as u64, range.clone()));
                pos = range.end;
            }
            Err(what) => {
                // Is there any whole frame after this point? If so the damage is in the
                // middle of acknowledged data, not a torn tail.
                let tail_only = !(pos + 1..buf.len()).any(|p| frame_at(buf, p, file_no).is_ok());
                return Ok(FileScan {
                    file_no,
                    frames,
                    damage: Some(Damage {
                        offset: pos as u64,
                        what,
                        tail_only,
                    }),
                });
            }
        }
    }
    Ok(FileScan {
        file_no,
        frames,
        damage: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::arb_record;
    use proptest::prelude::*;

    fn file_with(batches: &[Batch], compress: bool) -> Vec<u8> {
        let mut f = file_header(7).to_vec();
        for b in batches {
            let mut body = encode_body(&b.records, compress);
            body.usage_bytes = b.usage_bytes;
            let mut p = Vec::new();
            batch_payload(
                &mut p,
                b.project,
                b.first_seq,
                b.records.len() as u32,
                &body,
            );
            put_frame(&mut f, 7, &p);
        }
        f
    }

    fn batches(n: usize) -> Vec<Batch> {
        (0..n)
            .map(|i| {
                let records = (0..3)
                    .map(|j| {
                        let mut log = crate::model::NewLog::new(
                            j,
                            crate::model::Level::Info,
                            crate::model::LogType::Logger,
                            crate::model::Importance::Low,
                        );
                        log.set(crate::model::Field::Message, format!("batch {i} row {j}"));
                        LogRecord {
                            seq: (i * 3) as u64 + j as u64 + 1,
                            ingested_at: 5,
                            log,
                        }
                    })
                    .collect();
                Batch {
                    project: 9,
                    first_seq: (i * 3) as u64 + 1,
                    records,
                    usage_bytes: (i % 2 == 0).then_some(i as u64 * 100),
                }
            })
            .collect()
    }

    proptest! {
        #[test]
        fn batch_round_trips(
            recs in proptest::collection::vec(arb_record(), 1..20),
            compress: bool,
            usage_bytes: Option<u64>,
        ) {
            let recs: Vec<LogRecord> = recs.into_iter().enumerate()
                .map(|(i, mut r)| { r.seq = 100 + i as u64; r }).collect();
            let b = Batch { project: 3, first_seq: 100, records: recs, usage_bytes };
            let f = file_with(std::slice::from_ref(&b), compress);
            let scan = scan_file(&f).unwrap();
            prop_assert!(scan.damage.is_none());
            prop_assert_eq!(scan.frames.len(), 1);
            let back = decode_batch(&f[scan.frames[0].1.clone()]).unwrap();
            prop_assert_eq!(back, b);
        }

        #[test]
        fn scanner_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut f = file_header(7).to_vec();
            f.extend_from_slice(&bytes);
            if let Ok(s) = scan_file(&f) {
                for (_, r) in s.frames { let _ = decode_batch(&f[r]); }
            }
        }
    }

    #[test]
    fn torn_tail_is_found_at_every_cut() {
        let f = file_with(&batches(4), false);
        let whole = scan_file(&f).unwrap();
        let last_start = whole.frames[3].0 as usize;
        for cut in last_start + 1..f.len() {
            let s = scan_file(&f[..cut]).unwrap();
            assert_eq!(s.frames.len(), 3);
            let d = s.damage.unwrap();
            assert_eq!(d.offset, last_start as u64);
            assert!(d.tail_only, "cut {cut}");
        }
    }

    #[test]
    fn bit_flip_in_the_middle_is_corruption_not_a_tail() {
        let f = file_with(&batches(4), false);
        let whole = scan_file(&f).unwrap();
        let second = whole.frames[1].1.start + 3;
        let mut g = f.clone();
        g[second] ^= 0x10;
        let s = scan_file(&g).unwrap();
        let d = s.damage.unwrap();
        assert_eq!(d.offset, whole.frames[1].0);
        assert!(!d.tail_only);
        assert_eq!(s.frames.len(), 1);
    }

    #[test]
    fn record_from_another_file_fails_its_checksum() {
        let f = file_with(&batches(1), false);
        let mut g = file_header(8).to_vec();
        g.extend_from_slice(&f[HEADER_LEN..]);
        assert!(scan_file(&g).unwrap().damage.is_some());
    }
}
