//! A block's keyword filter: a Bloom filter over the values of the fields a scan can match
//! exactly and that repeat from log to log (`service`, `environment`, `release`,
//! `error_fingerprint`, …), so a scan for a value that a block does not hold skips the block
//! without reading it. False positives cost a block read; there are no false negatives.
//!
//! `trace_id` and `span_id` are left out: nearly every log has its own, so covering them
//! would take 10 bits per log (about 2.5 bytes a log for the two, 4% of a segment).
//!
//! Byte layout and hash: FORMAT.md, "Block keyword filter".

use crate::model::{Field, LogRecord};

/// The fields a filter covers: every field `/logs` matches exactly but the per-log ids.
pub const FIELDS: [Field; 8] = [
    Field::ErrorType,
    Field::Service,
    Field::Source,
    Field::Environment,
    Field::Release,
    Field::Platform,
    Field::Language,
    Field::ErrorFingerprint,
];

/// Probes per value.
pub const PROBES: u32 = 7;
/// Bits per distinct value, before rounding up to a power of two (about 1% false positives).
const BITS_PER_VALUE: usize = 10;
/// Smallest and largest filter in bytes; both powers of two.
pub const MIN_BYTES: usize = 8;
pub const MAX_BYTES: usize = 1024;

/// True when `field` is one a filter covers.
pub fn covers(field: Field) -> bool {
    FIELDS.contains(&field)
}

/// The 64-bit hash of one value of one field: FNV-1a over `field id (u8) ‖ UTF-8 bytes`,
/// then the SplitMix64 finalizer to spread FNV's weak low bits.
pub fn hash(field: Field, value: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in std::iter::once(&(field as u8)).chain(value.as_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Bit positions of a hash in a filter of `bits` bits (a power of two): double hashing with
/// the low and high halves, the step forced odd.
fn positions(h: u64, bits: usize) -> impl Iterator<Item = usize> {
    let (h1, h2) = (h as u32, ((h >> 32) as u32) | 1);
    let mask = bits as u32 - 1;
    (0..PROBES).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) & mask) as usize)
}

/// Builds the filter bytes for a block's rows.
pub fn build(rows: &[&LogRecord]) -> Vec<u8> {
    let mut hashes = Vec::new();
    for f in FIELDS {
        let mut prev: Option<&str> = None;
        for r in rows {
            // Rows are in time order and neighbours often share a value: skip repeats cheaply.
            let v = r.get(f);
            if v.is_some() && v != prev {
                hashes.push(hash(f, v.unwrap_or_default()));
            }
            prev = v;
        }
    }
    hashes.sort_unstable();
    hashes.dedup();
    let want = (hashes.len() * BITS_PER_VALUE).div_ceil(8);
    let len = want.next_power_of_two().clamp(MIN_BYTES, MAX_BYTES);
    let mut out = vec![0u8; len];
    for h in hashes {
        for p in positions(h, len * 8) {
            out[p / 8] |= 1 << (p % 8);
        }
    }
    out
}

/// False when a block with this filter holds no row whose `field` is `value`. An empty
/// filter (a version 1 segment) or a field it does not cover may match anything.
pub fn may_contain(filter: &[u8], field: Field, value: &str) -> bool {
    if filter.is_empty() || !covers(field) {
        return true;
    }
    let bits = filter.len() * 8;
    positions(hash(field, value), bits).all(|p| filter[p / 8] & (1 << (p % 8)) != 0)
}

/// True when `len` is a filter length a reader accepts: 0 (no filter) or a power of two
/// between the bounds.
pub fn valid_len(len: usize) -> bool {
    len == 0 || (len.is_power_of_two() && (MIN_BYTES..=MAX_BYTES).contains(&len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Importance, Level, LogType, NewLog};
    use proptest::prelude::*;

    fn rec(i: usize, service: &str, release: &str) -> LogRecord {
        LogRecord {
            seq: i as u64 + 1,
            ingested_at: 0,
            log: NewLog::new(i as i64, Level::Info, LogType::Logger, Importance::Standard)
                .with(Field::Service, service.to_string())
                .with(Field::Release, release.to_string())
                .with(Field::TraceId, format!("{i:032x}")),
        }
    }

    #[test]
    fn the_hash_is_pinned() {
        // FORMAT.md documents this hash; segments on disk depend on it never changing.
        // FNV-1a of [4] ‖ "billing", then SplitMix64's finalizer (checked by hand in Python).
        assert_ne!(hash(Field::Service, "a"), hash(Field::Release, "a"));
        assert_eq!(hash(Field::Service, "billing"), 0xd73d_8607_4391_8a95);
    }

    #[test]
    fn absent_values_are_mostly_refused() {
        let rows: Vec<_> = (0..1024)
            .map(|i| rec(i, &format!("svc{}", i % 5), &format!("r{}", i % 512)))
            .collect();
        let refs: Vec<_> = rows.iter().collect();
        let f = build(&refs);
        let mut false_pos = 0;
        for i in 0..10_000 {
            if may_contain(&f, Field::Release, &format!("r{}", 1_000_000 + i)) {
                false_pos += 1;
            }
        }
        // About 1% is the design; allow noise.
        assert!(false_pos < 300, "{false_pos} false positives in 10000");
        assert!(!may_contain(&f, Field::Service, "svc9") || f.len() == MAX_BYTES);
        // A field a filter does not cover may always match.
        assert!(may_contain(&f, Field::Message, "anything"));
        assert!(may_contain(&f, Field::TraceId, "not there"));
        assert!(may_contain(&[], Field::Service, "x"));
    }

    proptest! {
        #[test]
        fn present_values_always_match(vals in proptest::collection::vec(("[a-c]{0,3}", "[0-9a-f]{0,6}"), 1..200)) {
            let rows: Vec<_> = vals.iter().enumerate().map(|(i, (s, t))| rec(i, s, t)).collect();
            let refs: Vec<_> = rows.iter().collect();
            let f = build(&refs);
            prop_assert!(valid_len(f.len()));
            for (s, t) in &vals {
                prop_assert!(may_contain(&f, Field::Service, s));
                prop_assert!(may_contain(&f, Field::Release, t));
            }
        }
    }
}
