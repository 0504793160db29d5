//! A segment block: up to `block_rows` rows laid out by column, then compressed with zstd.
//!
//! Layout before compression (FORMAT.md, "Block"):
//! `count varint | timestamps | seqs | ingested_at | levels | log_types | importances |
//! 14 string columns`, where the three integer columns are zigzag varint deltas from the
//! previous row (the first from 0), the enums are one byte per row, and a string column is
//! `count × varint(len + 1, 0 = absent)` followed by the concatenated bytes.

use std::borrow::Borrow;

use crate::codec::{self, put_varint, unzigzag, zigzag, DecodeError, Reader};
use crate::model::{LogRecord, NewLog, FIELD_COUNT};

/// Encodes rows (already in key order) into an uncompressed block.
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
