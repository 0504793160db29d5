//! The query-string parser (`http::query_pairs`) on arbitrary text. Invariants: it never
//! panics; every refusal is a 400 `invalid_query`; a query with no `%` always parses, to
//! its `&`-separated parts with `+` read as a space; and what it decodes, percent-encoded
//! again byte by byte, parses back to the same pairs.
//!
//! Non-UTF-8 inputs are skipped: hyper hands the router a `&str`, and bytes that are not
//! UTF-8 never reach a request line it accepts.
use ledger_server::http::query_pairs;

/// Every byte but ASCII letters and digits as `%XX`, so the result decodes to `s` exactly.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Checks one input; panics on a broken invariant.
pub fn run(data: &[u8]) {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    let parts = q.split('&').filter(|p| !p.is_empty()).count();
    match query_pairs(Some(q)) {
        Ok(pairs) => {
            assert_eq!(pairs.len(), parts, "a pair was lost or invented");
            if !q.contains('%') {
                let plain: Vec<(String, String)> = q
                    .split('&')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').unwrap_or((p, ""));
                        (k.replace('+', " "), v.replace('+', " "))
                    })
                    .collect();
                assert_eq!(pairs, plain, "a query without escapes decoded differently");
            }
            let again: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            let again = query_pairs(Some(&again.join("&"))).expect("a re-encoded query parses");
            assert_eq!(again, pairs, "decode → encode → decode is not the identity");
        }
        Err(e) => {
            assert!(q.contains('%'), "refused a query without escapes: {e}");
            assert_eq!(e.status(), 400);
            assert_eq!(e.code(), "invalid_query");
        }
    }
}
