//! A segment block: up to `block_rows` rows laid out by column, compressed with zstd.
//!
//! Version 3 ([`pack`], [`unpack`]; FORMAT.md, "Block"): each column is its own zstd frame,
//! so that the statistics zstd learns from one column (hex trace ids, JSON, free text) do
//! not blur another's, and the string columns are laid out by [`strings`] (templated or
//! plain). Versions 1 and 2 ([`encode`], [`decode`]): one frame of
//! `count varint | timestamps | seqs | ingested_at | levels | log_types | importances |
//! 14 string columns`, where the three integer columns are zigzag varint deltas from the
//! previous row (the first from 0), the enums are one byte per row, and a string column is
//! `count × varint(len + 1, 0 = absent)` followed by the concatenated bytes.

use std::borrow::Borrow;

use crate::codec::{self, put_varint, unzigzag, zigzag, DecodeError, Reader};
use crate::model::{Field, LogRecord, NewLog, FIELD_COUNT};

use super::strings::{self, Lexer};

/// Encodes rows (already in key order) into an uncompressed block of the version 1 and 2
/// layout: what older segments hold, written now only by tests and fuzzing.
#[cfg(any(test, feature = "testing"))]
pub fn encode<R: Borrow<LogRecord>>(rows: &[R]) -> Vec<u8> {
    let rows: Vec<&LogRecord> = rows.iter().map(|r| r.borrow()).collect();
    let mut out = Vec::with_capacity(rows.len() * 300);
    put_varint(&mut out, rows.len() as u64);
    let mut prev = 0i64;
    for r in &rows {
        put_varint(&mut out, zigzag(r.log.timestamp.wrapping_sub(prev)));
        prev = r.log.timestamp;
    }
    let mut prev = 0i64;
    for r in &rows {
        put_varint(&mut out, zigzag((r.seq as i64).wrapping_sub(prev)));
        prev = r.seq as i64;
    }
    let mut prev = 0i64;
    for r in &rows {
        put_varint(&mut out, zigzag(r.ingested_at.wrapping_sub(prev)));
        prev = r.ingested_at;
    }
    out.extend(rows.iter().map(|r| r.log.level as u8));
    out.extend(rows.iter().map(|r| r.log.log_type as u8));
    out.extend(rows.iter().map(|r| r.log.importance as u8));
    for f in 0..FIELD_COUNT {
        for r in &rows {
            match &r.log.fields[f] {
                None => out.push(0),
                Some(s) => put_varint(&mut out, s.len() as u64 + 1),
            }
        }
        for r in &rows {
            if let Some(s) = &r.log.fields[f] {
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
    out
}

fn deltas(r: &mut Reader<'_>, n: usize) -> Result<Vec<i64>, DecodeError> {
    let mut prev = 0i64;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        prev = prev.wrapping_add(unzigzag(r.varint()?));
        out.push(prev);
    }
    Ok(out)
}

/// Decodes an uncompressed block. Never panics on any input.
pub fn decode(buf: &[u8]) -> Result<Vec<LogRecord>, DecodeError> {
    let mut r = Reader::new(buf);
    let n = r.varint()?;
    // Every row takes at least 17 bytes (3 enums + 14 absent markers): a count that cannot
    // fit is damage, and must not size an allocation.
    if n > (buf.len() / 17) as u64 {
        return Err(DecodeError {
            offset: 0,
            what: "row count larger than the block",
        });
    }
    let n = n as usize;
    let ts = deltas(&mut r, n)?;
    let seqs = deltas(&mut r, n)?;
    let ing = deltas(&mut r, n)?;
    let levels = r.bytes(n)?;
    let types = r.bytes(n)?;
    let imps = r.bytes(n)?;
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let at = r.pos();
        let (level, log_type, importance) = codec::enums(levels[i], types[i], imps[i], at)?;
        rows.push(LogRecord {
            seq: seqs[i] as u64,
            ingested_at: ing[i],
            log: NewLog {
                timestamp: ts[i],
                level,
                log_type,
                importance,
                fields: Default::default(),
            },
        });
    }
    let mut lens = vec![0u64; n];
    for f in 0..FIELD_COUNT {
        for l in lens.iter_mut() {
            *l = r.varint()?;
        }
        for (i, &l) in lens.iter().enumerate() {
            if l > 0 {
                let s = r.len_checked(l - 1)?;
                rows[i].log.fields[f] = Some(r.str(s)?.to_owned());
            }
        }
    }
    if r.remaining() != 0 {
        return Err(DecodeError {
            offset: r.pos(),
            what: "trailing bytes after the last column",
        });
    }
    Ok(rows)
}

/// Columns of a version 3 block: timestamps, seqs, ingested_at, the three enums, then the
/// 14 string columns.
const COLUMNS: usize = 4 + FIELD_COUNT;

/// How each string column is cut ([`strings::Lexer`]).
fn lexer(f: Field) -> Lexer {
    match f {
        Field::Message | Field::ErrorMessage | Field::StackTrace => Lexer::Words,
        Field::Attributes => Lexer::Json,
        _ => Lexer::Whole,
    }
}

/// The uncompressed columns of a version 3 block.
fn columns<R: Borrow<LogRecord>>(rows: &[R]) -> [Vec<u8>; COLUMNS] {
    let rows: Vec<&LogRecord> = rows.iter().map(|r| r.borrow()).collect();
    let mut cols: [Vec<u8>; COLUMNS] = Default::default();
    let ints: [fn(&LogRecord) -> i64; 3] =
        [|r| r.log.timestamp, |r| r.seq as i64, |r| r.ingested_at];
    for (col, get) in cols.iter_mut().zip(ints) {
        let mut prev = 0i64;
        for r in &rows {
            put_varint(col, zigzag(get(r).wrapping_sub(prev)));
            prev = get(r);
        }
    }
    cols[3].extend(rows.iter().map(|r| r.log.level as u8));
    cols[3].extend(rows.iter().map(|r| r.log.log_type as u8));
    cols[3].extend(rows.iter().map(|r| r.log.importance as u8));
    let mut values = Vec::with_capacity(rows.len());
    for (f, col) in Field::ALL.into_iter().zip(&mut cols[4..]) {
        values.clear();
        values.extend(rows.iter().map(|r| r.log.fields[f as usize].as_deref()));
        strings::encode(&values, lexer(f), col);
    }
    cols
}

/// The zstd level of column `i`: `level`, except for trace and span ids, mostly random hex,
/// in which level 3's slower match finding finds nothing level 1 misses (the generator's
/// blocks are the same size either way).
fn column_level(i: usize, level: i32) -> i32 {
    let ids = [4 + Field::TraceId as usize, 4 + Field::SpanId as usize];
    if ids.contains(&i) {
        level.min(1)
    } else {
        level
    }
}

/// A version 3 block as stored, and the bytes its columns decompress to.
pub struct Packed {
    pub bytes: Vec<u8>,
    pub raw_len: usize,
}

/// Encodes rows (already in key order) into a version 3 block, each column compressed at
/// `level` on its own (or stored as it is when zstd would not make it smaller):
/// `varint n | 18 × (varint raw_len | varint stored_len, 0 = stored uncompressed) |
/// the columns' bytes`.
pub fn pack<R: Borrow<LogRecord>>(rows: &[R], level: i32) -> std::io::Result<Packed> {
    let cols = columns(rows);
    let mut head = Vec::with_capacity(64);
    put_varint(&mut head, rows.len() as u64);
    let mut body = Vec::new();
    let mut raw_len = 0;
    for (i, col) in cols.iter().enumerate() {
        raw_len += col.len();
        put_varint(&mut head, col.len() as u64);
        let level = column_level(i, level);
        let z = crate::compression::compress(col, level)?;
        if z.len() < col.len() {
            put_varint(&mut head, z.len() as u64);
            body.extend_from_slice(&z);
        } else {
            put_varint(&mut head, 0);
            body.extend_from_slice(col);
        }
    }
    head.extend_from_slice(&body);
    Ok(Packed {
        bytes: head,
        raw_len,
    })
}

/// Decodes a version 3 block whose columns decompress to at most `raw_cap` bytes in all.
/// Never panics on any input.
pub fn unpack(buf: &[u8], raw_cap: usize) -> Result<Vec<LogRecord>, DecodeError> {
    let mut r = Reader::new(buf);
    let n = r.varint()?;
    // Every row takes at least 3 enum bytes, and the columns are at most `raw_cap`.
    if n > (raw_cap / 3) as u64 {
        return Err(DecodeError {
            offset: 0,
            what: "row count larger than the block",
        });
    }
    let n = n as usize;
    let mut sizes = [(0usize, 0usize); COLUMNS];
    let mut total = 0usize;
    for s in &mut sizes {
        let raw = r.varint()?;
        let stored = r.varint()?;
        total = total.saturating_add(raw.min(u64::MAX >> 1) as usize);
        if total > raw_cap {
            return Err(DecodeError {
                offset: r.pos(),
                what: "columns larger than the block says",
            });
        }
        *s = (raw as usize, stored.min(usize::MAX as u64) as usize);
    }
    let mut cols: Vec<std::borrow::Cow<'_, [u8]>> = Vec::with_capacity(COLUMNS);
    for (raw, stored) in sizes {
        let at = r.pos();
        let col = if stored == 0 {
            std::borrow::Cow::Borrowed(r.bytes(raw)?)
        } else {
            let z = r.bytes(stored)?;
            let col = crate::compression::decompress(z, raw).map_err(|_| DecodeError {
                offset: at,
                what: "column does not decompress",
            })?;
            if col.len() != raw {
                return Err(DecodeError {
                    offset: at,
                    what: "column decompresses to another length than its header says",
                });
            }
            std::borrow::Cow::Owned(col)
        };
        cols.push(col);
    }
    if r.remaining() != 0 {
        return Err(DecodeError {
            offset: r.pos(),
            what: "trailing bytes after the last column",
        });
    }
    // Offsets below are within the column named.
    let column = |i: usize, e: DecodeError| DecodeError {
        offset: e.offset,
        what: match i {
            0 => "timestamps column: bad varint",
            1 => "seqs column: bad varint",
            2 => "ingested_at column: bad varint",
            3 => "enums column: bad enum or length",
            _ => e.what,
        },
    };
    let mut ints = [Vec::new(), Vec::new(), Vec::new()];
    for (i, out) in ints.iter_mut().enumerate() {
        let mut cr = Reader::new(&cols[i]);
        *out = deltas(&mut cr, n).map_err(|e| column(i, e))?;
        if cr.remaining() != 0 {
            return Err(column(
                i,
                DecodeError {
                    offset: cr.pos(),
                    what: "",
                },
            ));
        }
    }
    let enums = &cols[3];
    if enums.len() != 3 * n {
        return Err(column(
            3,
            DecodeError {
                offset: 0,
                what: "",
            },
        ));
    }
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let (level, log_type, importance) =
            codec::enums(enums[i], enums[n + i], enums[2 * n + i], i)?;
        rows.push(LogRecord {
            seq: ints[1][i] as u64,
            ingested_at: ints[2][i],
            log: NewLog {
                timestamp: ints[0][i],
                level,
                log_type,
                importance,
                fields: Default::default(),
            },
        });
    }
    for f in 0..FIELD_COUNT {
        let values = strings::decode(&cols[4 + f], n)?;
        for (row, v) in rows.iter_mut().zip(values) {
            row.log.fields[f] = v;
        }
    }
    Ok(rows)
}

impl Reader<'_> {
    /// A length read elsewhere, checked against what remains.
    pub fn len_checked(&self, n: u64) -> Result<usize, DecodeError> {
        if n > self.remaining() as u64 {
            return Err(DecodeError {
                offset: self.pos(),
                what: "string length runs past the end of the block",
            });
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::arb_record;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn block_round_trips(mut rows in proptest::collection::vec(arb_record(), 0..50)) {
            rows.sort_by_key(|r| r.key());
            let enc = encode(&rows);
            prop_assert_eq!(decode(&enc).unwrap(), rows);
        }

        #[test]
        fn packed_block_round_trips(mut rows in proptest::collection::vec(arb_record(), 0..50), level in 1i32..4) {
            rows.sort_by_key(|r| r.key());
            let p = pack(&rows, level).unwrap();
            prop_assert_eq!(unpack(&p.bytes, p.raw_len).unwrap(), rows);
        }

        #[test]
        fn unpack_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), cap in 0usize..100_000) {
            let _ = unpack(&bytes, cap);
        }

        #[test]
        fn truncated_packed_block_is_an_error(mut rows in proptest::collection::vec(arb_record(), 1..10), cut in 0usize..1000) {
            rows.sort_by_key(|r| r.key());
            let p = pack(&rows, 3).unwrap();
            let cut = cut % p.bytes.len();
            prop_assert!(unpack(&p.bytes[..cut], p.raw_len).is_err());
        }

        #[test]
        fn block_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn truncated_block_is_an_error(rows in proptest::collection::vec(arb_record(), 1..10), cut in 0usize..1000) {
            let enc = encode(&rows);
            let cut = cut % enc.len();
            prop_assert!(decode(&enc[..cut]).is_err());
        }
    }
}
