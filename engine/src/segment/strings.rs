//! How one string column of a block is laid out before compression (segment version 3;
//! FORMAT.md, "String column").
//!
//! Two layouts, chosen per column per block:
//!
//! - **Plain**: `n × varint(len + 1, 0 = absent)` then the present strings' bytes, as
//!   versions 1 and 2 store every column.
//! - **Templated**: each value is split by the column's [`Lexer`] into a *skeleton* (its
//!   fixed text, with a `0x00` byte where each variable piece was) and the variable pieces.
//!   The block keeps each distinct skeleton once, each row the number of its skeleton, and
//!   the pieces grouped by (skeleton, position), so that zstd sees all the user ids of one
//!   attribute side by side instead of scattered through JSON text. A column of few
//!   distinct values (a service name, a release) is the same layout with no pieces: a
//!   dictionary. With a zstd frame per column, this stores the generator's logs in a fifth
//!   fewer bytes than version 2's single frame of plain columns (`LEDGER_BENCH_BLOCKS_ONLY=1
//!   cargo bench -p ledger-benches --bench engine` prints both).
//!
//! The lexer only decides where a value is cut; any cut reassembles to exactly the bytes
//! given (a value holding a `0x00` byte is stored whole, as *raw*), so decoding never
//! depends on the lexer and the lexers may change without a format version.

use std::collections::HashMap;

use foldhash::fast::FixedState;

use crate::codec::{put_varint, DecodeError, Reader};

/// Layout byte of a string column.
const PLAIN: u8 = 0;
const TEMPLATED: u8 = 1;

/// Row entries of a templated column: absent, raw, or skeleton `i` as `i + FIRST_SKELETON`.
const ABSENT: u64 = 0;
const RAW: u64 = 1;
const FIRST_SKELETON: u64 = 2;

/// Where a variable piece was cut out of a skeleton.
const MARKER: u8 = 0;

/// Most bytes a column may decode to (what the plain layout's block limit implied).
pub const MAX_DECODED: usize = 64 << 20;

/// How a column's values are cut into skeleton and variable pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lexer {
    /// The whole value is the skeleton: a dictionary of the block's distinct values.
    Whole,
    /// Free text: a run of letters, digits, `_`, `-` and `.` holding a digit is variable
    /// (`user 4211 took 12ms` → `user \0 took \0`).
    Words,
    /// JSON: every string or scalar that is not an object key is variable, so the skeleton
    /// is the document's shape and keys (`{"id":"u_7","n":3}` → `{"id":\0,"n":\0}`).
    Json,
}

/// Byte classes for the lexers, one table lookup per byte.
const WORD: u8 = 1;
const DIGIT: u8 = 2;
/// Ends a JSON scalar.
const END: u8 = 4;

static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.' {
            t[c] |= WORD;
        }
        if b.is_ascii_digit() {
            t[c] |= DIGIT;
        }
        if b.is_ascii_whitespace() || matches!(b, b',' | b'}' | b']' | b':' | b'"') {
            t[c] |= END;
        }
        c += 1;
    }
    t
}

/// Cuts `v` into `skel` (cleared first) and the pieces' byte ranges (cleared first).
/// `false` when `v` holds a `0x00` byte and must be stored raw.
///
/// This runs for every value of the templated columns when a segment is sealed, so it
/// makes one pass with a table lookup per byte and copies each run of fixed text into the
/// skeleton at once: `lit` is where the run not yet copied starts.
fn cut(lexer: Lexer, v: &[u8], skel: &mut Vec<u8>, pieces: &mut Vec<(u32, u32)>) -> bool {
    skel.clear();
    pieces.clear();
    if v.contains(&MARKER) {
        return false;
    }
    let mut lit = 0;
    let mut piece = |skel: &mut Vec<u8>, lit: &mut usize, from: usize, to: usize| {
        skel.extend_from_slice(&v[*lit..from]);
        skel.push(MARKER);
        pieces.push((from as u32, to as u32));
        *lit = to;
    };
    let mut i = 0;
    match lexer {
        Lexer::Whole => {}
        Lexer::Words => {
            while i < v.len() {
                if CLASS[v[i] as usize] & WORD == 0 {
                    i += 1;
                    continue;
                }
                let start = i;
                let mut digit = 0;
                while i < v.len() && CLASS[v[i] as usize] & WORD != 0 {
                    digit |= CLASS[v[i] as usize] & DIGIT;
                    i += 1;
                }
                if digit != 0 {
                    piece(skel, &mut lit, start, i);
                }
            }
        }
        Lexer::Json => {
            while i < v.len() {
                let c = v[i];
                if c == b'"' {
                    let start = i;
                    i += 1;
                    while i < v.len() && v[i] != b'"' {
                        i += if v[i] == b'\\' { 2 } else { 1 };
                    }
                    i = (i + 1).min(v.len());
                    let mut j = i;
                    while j < v.len() && v[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    if v.get(j) != Some(&b':') {
                        piece(skel, &mut lit, start, i);
                    }
                } else if c == b'-' || c.is_ascii_alphanumeric() {
                    let start = i;
                    while i < v.len() && CLASS[v[i] as usize] & END == 0 {
                        i += 1;
                    }
                    piece(skel, &mut lit, start, i);
                } else {
                    i += 1;
                }
            }
        }
    }
    skel.extend_from_slice(&v[lit..]);
    true
}

/// Appends column `values` (one per row) to `out`, templated by `lexer` when the block has
/// few enough distinct skeletons for that to pay (at most half as many as rows), plain
/// otherwise.
pub fn encode(values: &[Option<&str>], lexer: Lexer, out: &mut Vec<u8>) {
    if !encode_templated(values, lexer, out) {
        encode_plain(values, out);
    }
}

fn encode_plain(values: &[Option<&str>], out: &mut Vec<u8>) {
    out.push(PLAIN);
    for v in values {
        match v {
            None => out.push(0),
            Some(s) => put_varint(out, s.len() as u64 + 1),
        }
    }
    for s in values.iter().flatten() {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Writes the templated layout, or nothing and `false` if the column should be plain.
fn encode_templated(values: &[Option<&str>], lexer: Lexer, out: &mut Vec<u8>) -> bool {
    let limit = values.len() / 2;
    // Skeletons by first appearance (their bytes as written), their markers, and each
    // row's entry and pieces.
    let mut ids: HashMap<Box<[u8]>, u32, FixedState> = HashMap::default();
    let mut written = Vec::new();
    let mut markers: Vec<u32> = Vec::new();
    let mut entries: Vec<u64> = Vec::with_capacity(values.len());
    let mut pieces: Vec<(u32, u32)> = Vec::new();
    let mut first_piece: Vec<u32> = Vec::with_capacity(values.len());
    let mut skel = Vec::new();
    let mut cuts = Vec::new();
    for v in values {
        first_piece.push(pieces.len() as u32);
        let entry = match v {
            None => ABSENT,
            Some(s) if !cut(lexer, s.as_bytes(), &mut skel, &mut cuts) => RAW,
            Some(_) => {
                pieces.extend_from_slice(&cuts);
                let id = match ids.get(skel.as_slice()) {
                    Some(&id) => id,
                    None => {
                        // Give up as soon as the skeletons so far are too many, so that a
                        // column of unique values (trace ids) costs a few dozen rows.
                        if markers.len() >= limit || markers.len() > entries.len() / 2 + 32 {
                            return false;
                        }
                        let id = markers.len() as u32;
                        ids.insert(skel.as_slice().into(), id);
                        markers.push(cuts.len() as u32);
                        put_varint(&mut written, skel.len() as u64);
                        written.extend_from_slice(&skel);
                        id
                    }
                };
                id as u64 + FIRST_SKELETON
            }
        };
        entries.push(entry);
    }
    out.push(TEMPLATED);
    put_varint(out, markers.len() as u64);
    out.extend_from_slice(&written);
    for &e in &entries {
        put_varint(out, e);
    }
    // Pieces by skeleton, then by position in it, then by row.
    let mut rows_of: Vec<Vec<u32>> = vec![Vec::new(); markers.len()];
    for (row, &e) in entries.iter().enumerate() {
        if e >= FIRST_SKELETON && markers[(e - FIRST_SKELETON) as usize] > 0 {
            rows_of[(e - FIRST_SKELETON) as usize].push(row as u32);
        }
    }
    for (s, rows) in rows_of.iter().enumerate() {
        for k in 0..markers[s] {
            for &row in rows {
                let (from, to) = pieces[(first_piece[row as usize] + k) as usize];
                let v = values[row as usize].unwrap_or_default().as_bytes();
                let text = &v[from as usize..to as usize];
                put_varint(out, text.len() as u64);
                out.extend_from_slice(text);
            }
        }
    }
    for (v, &e) in values.iter().zip(&entries) {
        if e == RAW {
            let s = v.unwrap_or_default();
            put_varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
    }
    true
}

/// Decodes a column of `n` rows from the whole of `buf`. Never panics on any input, and
/// never decodes to more than [`MAX_DECODED`] bytes.
pub fn decode(buf: &[u8], n: usize) -> Result<Vec<Option<String>>, DecodeError> {
    let mut r = Reader::new(buf);
    let out = match r.u8()? {
        PLAIN => decode_plain(&mut r, n)?,
        TEMPLATED => decode_templated(&mut r, n)?,
        _ => {
            return Err(DecodeError {
                offset: 0,
                what: "unknown string column layout",
            })
        }
    };
    if r.remaining() != 0 {
        return Err(DecodeError {
            offset: r.pos(),
            what: "trailing bytes after a string column",
        });
    }
    Ok(out)
}

fn err(r: &Reader<'_>, what: &'static str) -> DecodeError {
    DecodeError {
        offset: r.pos(),
        what,
    }
}

/// A length read from the data, checked against what remains (`Reader::len_checked`).
fn len(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    let l = r.varint()?;
    r.len_checked(l)
}

fn decode_plain(r: &mut Reader<'_>, n: usize) -> Result<Vec<Option<String>>, DecodeError> {
    if n > r.remaining() {
        return Err(err(r, "row count larger than the column"));
    }
    let mut lens = Vec::with_capacity(n);
    for _ in 0..n {
        lens.push(r.varint()?);
    }
    let mut out = Vec::with_capacity(n);
    for l in lens {
        out.push(match l {
            0 => None,
            l => {
                let l = r.len_checked(l - 1)?;
                Some(r.str(l)?.to_owned())
            }
        });
    }
    Ok(out)
}

fn decode_templated(r: &mut Reader<'_>, n: usize) -> Result<Vec<Option<String>>, DecodeError> {
    let d = r.varint()?;
    // Every skeleton takes at least a byte, and every row one.
    if d > r.remaining() as u64 || n > r.remaining() {
        return Err(err(r, "skeleton or row count larger than the column"));
    }
    let mut skeletons = Vec::with_capacity(d as usize);
    for _ in 0..d {
        let l = len(r)?;
        skeletons.push(r.bytes(l)?);
    }
    let mut entries = Vec::with_capacity(n);
    let mut count = vec![0usize; skeletons.len()];
    for _ in 0..n {
        let e = r.varint()?;
        if e >= FIRST_SKELETON {
            let s = e - FIRST_SKELETON;
            if s >= d {
                return Err(err(r, "row names a skeleton the column does not have"));
            }
            count[s as usize] += 1;
        }
        entries.push(e);
    }
    // Each skeleton's pieces: position-major, `count[s]` rows per position.
    let mut first_piece = Vec::with_capacity(skeletons.len());
    let mut pieces: Vec<&[u8]> = Vec::new();
    let mut decoded = 0usize;
    for (s, skel) in skeletons.iter().enumerate() {
        first_piece.push(pieces.len());
        let markers = skel.iter().filter(|&&b| b == MARKER).count();
        // The skeleton's fixed text is repeated in every row that uses it.
        decoded = decoded.saturating_add((skel.len() - markers).saturating_mul(count[s]));
        if decoded > MAX_DECODED {
            return Err(err(r, "column decodes to more than the block limit"));
        }
        for _ in 0..markers.saturating_mul(count[s]) {
            let l = len(r)?;
            decoded += l;
            pieces.push(r.bytes(l)?);
        }
    }
    // Each skeleton's fixed text, cut at its markers.
    let parts: Vec<Vec<&[u8]>> = skeletons
        .iter()
        .map(|s| s.split(|&b| b == MARKER).collect())
        .collect();
    let mut seen = vec![0usize; skeletons.len()];
    let mut out = Vec::with_capacity(n);
    for e in entries {
        let at = r.pos();
        let bytes = match e {
            ABSENT => {
                out.push(None);
                continue;
            }
            RAW => {
                let l = len(r)?;
                decoded += l;
                if decoded > MAX_DECODED {
                    return Err(err(r, "column decodes to more than the block limit"));
                }
                r.bytes(l)?.to_vec()
            }
            e => {
                let s = (e - FIRST_SKELETON) as usize;
                let (j, rows) = (seen[s], count[s]);
                seen[s] += 1;
                let first = first_piece[s];
                let piece = |k: usize| pieces[first + k * rows + j];
                let len = (1..parts[s].len())
                    .map(|k| piece(k - 1).len())
                    .sum::<usize>()
                    + parts[s].iter().map(|p| p.len()).sum::<usize>();
                let mut text = Vec::with_capacity(len);
                for (k, part) in parts[s].iter().enumerate() {
                    if k > 0 {
                        text.extend_from_slice(piece(k - 1));
                    }
                    text.extend_from_slice(part);
                }
                text
            }
        };
        out.push(Some(String::from_utf8(bytes).map_err(|_| DecodeError {
            offset: at,
            what: "string is not UTF-8",
        })?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: &[Option<&str>], lexer: Lexer) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(values, lexer, &mut buf);
        let back = decode(&buf, values.len()).unwrap();
        let back: Vec<Option<&str>> = back.iter().map(|v| v.as_deref()).collect();
        assert_eq!(back, values, "{lexer:?}");
        buf
    }

    fn cut_of(lexer: Lexer, v: &str) -> (String, Vec<&str>) {
        let (mut skel, mut pieces) = (Vec::new(), Vec::new());
        assert!(cut(lexer, v.as_bytes(), &mut skel, &mut pieces));
        let skel = String::from_utf8(skel).unwrap().replace('\0', "#");
        let pieces = pieces
            .iter()
            .map(|&(a, b)| &v[a as usize..b as usize])
            .collect();
        (skel, pieces)
    }

    #[test]
    fn words_cut_out_what_holds_a_digit() {
        let (skel, pieces) = cut_of(Lexer::Words, "GET /users/42 took 12ms (usr_7, v1.2)");
        assert_eq!(skel, "GET /users/# took # (#, #)");
        assert_eq!(pieces, ["42", "12ms", "usr_7", "v1.2"]);
    }

    #[test]
    fn json_cuts_out_every_value_and_keeps_the_keys() {
        let (skel, pieces) = cut_of(
            Lexer::Json,
            r#"{"http":{"status":200,"path":"/a \"b\""},"ok":true, "tags" : ["x", -1.5e3]}"#,
        );
        assert_eq!(
            skel,
            r#"{"http":{"status":#,"path":#},"ok":#, "tags" : [#, #]}"#
        );
        assert_eq!(pieces, ["200", r#""/a \"b\"""#, "true", r#""x""#, "-1.5e3"]);
    }

    #[test]
    fn few_distinct_skeletons_are_templated_and_many_are_plain() {
        let rows: Vec<String> = (0..100).map(|i| format!("user {i} logged in")).collect();
        let values: Vec<Option<&str>> = rows.iter().map(|s| Some(s.as_str())).collect();
        assert_eq!(round_trip(&values, Lexer::Words)[0], TEMPLATED);
        // As a dictionary every value is distinct: plain.
        assert_eq!(round_trip(&values, Lexer::Whole)[0], PLAIN);
        let services = ["api", "billing", "api", "worker", "api", "api"].map(Some);
        assert_eq!(round_trip(&services, Lexer::Whole)[0], TEMPLATED);
    }

    #[test]
    fn a_value_holding_a_nul_byte_is_stored_raw() {
        let values = [Some("a 1"), Some("a \0 2"), None, Some("a 3"), Some("a 4")];
        assert_eq!(round_trip(&values, Lexer::Words)[0], TEMPLATED);
    }

    #[test]
    fn templating_stores_the_generators_attributes_in_fewer_bytes() {
        let rows: Vec<String> = (0..1000)
            .map(|i| {
                format!(
                    r#"{{"http":{{"method":"GET","status":{}}},"user":{{"id":"usr_{}"}},"duration_ms":{}}}"#,
                    [200, 404, 500][i % 3],
                    (i * 7919) % 5000,
                    (i * 31) % 1500
                )
            })
            .collect();
        let values: Vec<Option<&str>> = rows.iter().map(|s| Some(s.as_str())).collect();
        let templated = zstd::bulk::compress(&round_trip(&values, Lexer::Json), 3).unwrap();
        let mut plain = Vec::new();
        encode_plain(&values, &mut plain);
        let plain = zstd::bulk::compress(&plain, 3).unwrap();
        assert!(
            templated.len() * 10 < plain.len() * 9,
            "templated {} bytes, plain {}",
            templated.len(),
            plain.len()
        );
    }

    fn arb_values() -> impl Strategy<Value = Vec<Option<String>>> {
        let value = prop_oneof![
            Just(None),
            "[a-c0-2 \"{}:,\\\\.\u{0}é-]{0,12}".prop_map(Some),
            (0u8..4).prop_map(|i| Some(format!(r#"{{"k":{i},"s":"v{i}"}}"#))),
        ];
        proptest::collection::vec(value, 0..40)
    }

    proptest! {
        #[test]
        fn every_lexer_round_trips(values in arb_values()) {
            let values: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
            for lexer in [Lexer::Whole, Lexer::Words, Lexer::Json] {
                round_trip(&values, lexer);
            }
        }

        #[test]
        fn the_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), n in 0usize..20) {
            let _ = decode(&bytes, n);
        }

        #[test]
        fn a_truncated_column_is_an_error(values in arb_values(), cut in 0usize..1000) {
            let values: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
            for lexer in [Lexer::Whole, Lexer::Words, Lexer::Json] {
                let mut buf = Vec::new();
                encode(&values, lexer, &mut buf);
                let cut = cut % buf.len();
                prop_assert!(decode(&buf[..cut], values.len()).is_err());
            }
        }
    }
}
