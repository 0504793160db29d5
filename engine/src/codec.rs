//! Byte-level primitives shared by the WAL and segment formats: LEB128 varints, zigzag, a
//! bounds-checked reader, and the row encoding used inside WAL batch records.
//!
//! Every decoder here treats its input as untrusted: a short or malformed buffer yields
//! [`DecodeError`], never a panic.

use crate::model::{Importance, Level, LogRecord, LogType, NewLog, FIELD_COUNT};

/// Why a byte buffer could not be decoded. The offset is relative to the buffer given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}")]
pub struct DecodeError {
    pub offset: usize,
    pub what: &'static str,
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A cursor over untrusted bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn pos(&self) -> usize {
        self.pos
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn err(&self, what: &'static str) -> DecodeError {
        DecodeError {
            offset: self.pos,
            what,
        }
    }
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(self.err("unexpected end of data"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(
            self.bytes(4)?.try_into().expect("4 bytes"),
        ))
    }
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(
            self.bytes(8)?.try_into().expect("8 bytes"),
        ))
    }
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(self.u64()? as i64)
    }
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(self.err("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }
    pub fn str(&mut self, n: usize) -> Result<&'a str, DecodeError> {
        let start = self.pos;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|_| DecodeError {
            offset: start,
            what: "string is not UTF-8",
        })
    }
}

/// Encodes an optional string as `varint(len + 1)` then the bytes; `0` means absent.
pub fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            put_varint(out, s.len() as u64 + 1);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

pub fn get_opt_str(r: &mut Reader<'_>) -> Result<Option<String>, DecodeError> {
    let n = r.varint()?;
    if n == 0 {
        return Ok(None);
    }
    let n = n - 1;
    if n > r.remaining() as u64 {
        return Err(DecodeError {
            offset: r.pos(),
            what: "string length runs past the end of data",
        });
    }
    Ok(Some(r.str(n as usize)?.to_owned()))
}

/// Decodes the three enum bytes of a row.
pub fn enums(
    level: u8,
    log_type: u8,
    importance: u8,
    at: usize,
) -> Result<(Level, LogType, Importance), DecodeError> {
    let bad = |what| DecodeError { offset: at, what };
    Ok((
        Level::from_u8(level).ok_or_else(|| bad("unknown level byte"))?,
        LogType::from_u8(log_type).ok_or_else(|| bad("unknown log_type byte"))?,
        Importance::from_u8(importance).ok_or_else(|| bad("unknown importance byte"))?,
    ))
}

/// Appends one row (without its sequence number, which the WAL record header implies) in the
/// WAL row encoding: `timestamp i64 | ingested_at i64 | level u8 | log_type u8 |
/// importance u8 | 14 × optional string`.
pub fn encode_row(out: &mut Vec<u8>, ingested_at: i64, log: &NewLog) {
    out.extend_from_slice(&log.timestamp.to_le_bytes());
    out.extend_from_slice(&ingested_at.to_le_bytes());
    out.push(log.level as u8);
    out.push(log.log_type as u8);
    out.push(log.importance as u8);
    for f in &log.fields {
        put_opt_str(out, f.as_deref());
    }
}

/// Decodes one row written by [`encode_row`], giving it sequence number `seq`.
pub fn decode_row(r: &mut Reader<'_>, seq: u64) -> Result<LogRecord, DecodeError> {
    let timestamp = r.i64()?;
    let ingested_at = r.i64()?;
    let at = r.pos();
    let (a, b, c) = (r.u8()?, r.u8()?, r.u8()?);
    let (level, log_type, importance) = enums(a, b, c, at)?;
    let mut fields: [Option<String>; FIELD_COUNT] = Default::default();
    for f in fields.iter_mut() {
        *f = get_opt_str(r)?;
    }
    Ok(LogRecord {
        seq,
        ingested_at,
        log: NewLog {
            timestamp,
            level,
            log_type,
            importance,
            fields,
        },
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::Field;
    use proptest::prelude::*;

    pub fn arb_record() -> impl Strategy<Value = LogRecord> {
        (
            any::<i64>(),
            any::<u64>(),
            any::<i64>(),
            0u8..5,
            0u8..4,
            0u8..3,
            proptest::collection::vec(proptest::option::of(".{0,40}"), FIELD_COUNT),
        )
            .prop_map(|(ts, seq, ing, l, t, i, fs)| {
                let mut log = NewLog::new(
                    ts,
                    Level::from_u8(l).unwrap(),
                    LogType::from_u8(t).unwrap(),
                    Importance::from_u8(i).unwrap(),
                );
                for (k, v) in fs.into_iter().enumerate() {
                    log.fields[k] = v;
                }
                LogRecord {
                    seq,
                    ingested_at: ing,
                    log,
                }
            })
    }

    proptest! {
        #[test]
        fn varint_round_trips(v in any::<u64>()) {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut r = Reader::new(&b);
            prop_assert_eq!(r.varint().unwrap(), v);
            prop_assert_eq!(r.remaining(), 0);
        }

        #[test]
        fn zigzag_round_trips(v in any::<i64>()) {
            prop_assert_eq!(unzigzag(zigzag(v)), v);
        }

        #[test]
        fn row_round_trips(rec in arb_record()) {
            let mut b = Vec::new();
            encode_row(&mut b, rec.ingested_at, &rec.log);
            let mut r = Reader::new(&b);
            let back = decode_row(&mut r, rec.seq).unwrap();
            prop_assert_eq!(back, rec);
            prop_assert_eq!(r.remaining(), 0);
        }

        #[test]
        fn row_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut r = Reader::new(&bytes);
            let _ = decode_row(&mut r, 1);
        }
    }

    #[test]
    fn truncated_row_is_an_error() {
        let log = NewLog::new(1, Level::Info, LogType::Logger, Importance::Low)
            .with(Field::Message, "hello");
        let mut b = Vec::new();
        encode_row(&mut b, 2, &log);
        for cut in 0..b.len() {
            assert!(
                decode_row(&mut Reader::new(&b[..cut]), 1).is_err(),
                "cut {cut}"
            );
        }
    }
}
