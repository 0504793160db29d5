//! Message patterns: the templates of log messages with their variable tokens masked as
//! `<*>`, Drain-style, so "user 42 not found" and "user 97 not found" count as one pattern.
//!
//! Two stages, so that counts stay exact:
//!
//! 1. **Template, at append time** ([`template_into`]): a pure function of the message, so
//!    every log's template is known without history and counting can be undone. The
//!    message (`message`, else `error_message`; logs with neither, or with only whitespace,
//!    have no pattern) splits at ASCII whitespace into tokens. A token splits further at
//!    the separators `/ = : , ; ( ) [ ] { } < > |` into pieces, kept with their separators;
//!    a piece that holds a digit or an `@` is variable and becomes `<*>`. A quoted run
//!    (`"…"`, `'…'`, `` `…` ``) opening at the start of a piece and closed later in the
//!    message — even across spaces — is one `<*>`. A token longer than 64 bytes once masked
//!    becomes `<*>`. Only the first 32 tokens count; a longer message's template ends in
//!    `…`. Tokens join with one space. So `GET /users/42 took 12ms` → `GET /users/<*> took
//!    <*>` and `user_id=7 'bob smith' logged in` → `user_id=<*> <*> logged in`.
//! 2. **Clustering, at query time** ([`cluster`]): the templates seen in the window are
//!    merged the way Drain's parse tree does it, which catches variable words that hold no
//!    digit ("user alice not found", "user bob not found"). Templates are taken most
//!    frequent first (ties by text); each goes to a cluster with the same token count and
//!    the same first token whose template shares at least half of its positions with it
//!    (equal tokens other than `<*>`, counted over all positions), the most similar first;
//!    positions that differ become `<*>`. Otherwise it starts a cluster. A group of
//!    (token count, first token) compares with at most its first 64 clusters. Because
//!    clustering is a pure function of the window's per-template figures, the answer equals
//!    clustering the templates of the stored logs in the window.

use std::collections::HashMap;

use super::groups::Agg;
use crate::model::{Field, LogId, LogRecord, NewLog};

/// Tokens of a message that make up its template.
pub const MAX_TOKENS: usize = 32;
/// A token longer than this once masked is itself a variable part.
pub const MAX_TOKEN_BYTES: usize = 64;
/// Drain's similarity threshold: the share of positions that must agree to merge.
pub const SIMILARITY: f64 = 0.5;
/// Clusters one (token count, first token) group compares a template with.
pub const MAX_CLUSTERS_PER_GROUP: usize = 64;

const WILDCARD: &str = "<*>";

/// One message template's logs in a window, most frequent first: what `/logs/patterns`
/// answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The template, variable tokens as `<*>`.
    pub pattern: String,
    /// Logs in the window whose message fits the template.
    pub count: u64,
    /// Of those, how many at each level, indexed by `Level as usize` (debug … critical).
    pub levels: [u64; 5],
    /// The earliest of those logs' timestamps (µs).
    pub first_seen_us: i64,
    /// The latest of those logs' timestamps (µs).
    pub last_seen_us: i64,
    /// The latest of those logs (a sample to show).
    pub sample_log_id: LogId,
}

/// How much of a message its pattern is made from. A pattern is a key held in memory for
/// as long as its group is counted (up to the table's cap per project), so its size is
/// bounded by the server, not by what a client sends; two messages that share their first
/// this many bytes share a pattern.
pub const MAX_PATTERN_SOURCE_BYTES: usize = 1024;

/// The text a log's pattern is made from: `message`, else `error_message`, cut to
/// [`MAX_PATTERN_SOURCE_BYTES`] at a character boundary.
pub fn pattern_source(log: &NewLog) -> Option<&str> {
    let m = log
        .get(Field::Message)
        .or_else(|| log.get(Field::ErrorMessage))?;
    Some(crate::rollup::cut_at_char(m, MAX_PATTERN_SOURCE_BYTES))
}

/// The template of a log's message, or `None` when it has none (see the module doc).
#[cfg(test)]
pub fn template(log: &NewLog) -> Option<String> {
    let mut out = String::new();
    template_into(pattern_source(log)?, &mut out).then_some(out)
}

/// The template of a stored log, written into `out` (cleared first); false when there is none.
pub fn record_template(r: &LogRecord, out: &mut String) -> bool {
    match pattern_source(&r.log) {
        Some(m) => template_into(m, out),
        None => false,
    }
}

/// Byte classes for the tokenizer, one table lookup per byte.
const WS: u8 = 1;
const SEP: u8 = 2;
const QUOTE: u8 = 4;
/// A byte that makes its piece variable: a digit or `@`.
const VAR: u8 = 8;

static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let ws = b" \t\n\x0c\r";
    let mut i = 0;
    while i < ws.len() {
        t[ws[i] as usize] = WS;
        i += 1;
    }
    let sep = b"/=:,;()[]{}<>|";
    let mut i = 0;
    while i < sep.len() {
        t[sep[i] as usize] = SEP;
        i += 1;
    }
    t[b'"' as usize] = QUOTE;
    t[b'\'' as usize] = QUOTE;
    t[b'`' as usize] = QUOTE;
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = VAR;
        d += 1;
    }
    t[b'@' as usize] = VAR;
    t
}

/// Writes the template of `msg` into `out` (cleared first); false when `msg` has no tokens.
///
/// This runs for every log, so it makes one pass over the bytes (one table lookup each),
/// allocates nothing once `out` has grown, and copies the stretches of the message that the
/// template keeps unchanged with one copy each rather than piece by piece. `pend` is where
/// the stretch not yet copied starts: everything from it up to the scan position belongs in
/// the template as it is, so the template's length so far is `out.len() + (i - pend)`.
pub fn template_into(msg: &str, out: &mut String) -> bool {
    out.clear();
    let b = msg.as_bytes();
    // Copies the unchanged stretch `pend..to` (its ends are at ASCII bytes: char boundaries).
    let flush = |out: &mut String, pend: usize, to: usize| out.push_str(&msg[pend..to]);
    let mut i = 0;
    while i < b.len() && CLASS[b[i] as usize] & WS != 0 {
        i += 1;
    }
    let mut pend = i;
    let mut tokens = 0;
    while i < b.len() {
        // A token starts at `i`.
        tokens += 1;
        let token_len0 = out.len() + (i - pend);
        let mut piece = i;
        let mut variable = false;
        while i < b.len() {
            let c = b[i];
            let class = CLASS[c as usize];
            if class == 0 {
                i += 1;
                continue;
            }
            if class & WS != 0 {
                break;
            }
            if class & QUOTE != 0 && i == piece {
                if let Some(close) = b[i + 1..].iter().position(|&d| d == c) {
                    flush(out, pend, i);
                    out.push_str(WILDCARD);
                    i += close + 2;
                    pend = i;
                    piece = i;
                    continue;
                }
            }
            if class & SEP != 0 {
                if variable {
                    flush(out, pend, piece);
                    out.push_str(WILDCARD);
                    pend = i;
                }
                i += 1;
                piece = i;
                variable = false;
                continue;
            }
            variable |= class & VAR != 0;
            i += 1;
        }
        if variable {
            flush(out, pend, piece);
            out.push_str(WILDCARD);
            pend = i;
        }
        if out.len() + (i - pend) - token_len0 > MAX_TOKEN_BYTES {
            if token_len0 >= out.len() {
                flush(out, pend, pend + (token_len0 - out.len()));
            } else {
                out.truncate(token_len0);
            }
            out.push_str(WILDCARD);
            pend = i;
        }
        // The whitespace after the token, and whether another token follows.
        let gap = i;
        while i < b.len() && CLASS[b[i] as usize] & WS != 0 {
            i += 1;
        }
        if i >= b.len() {
            flush(out, pend, gap);
            break;
        }
        if tokens == MAX_TOKENS {
            flush(out, pend, gap);
            out.push_str(" …");
            break;
        }
        if i - gap != 1 || b[gap] != b' ' {
            flush(out, pend, gap);
            out.push(' ');
            pend = i;
        }
    }
    tokens > 0
}

struct Cluster {
    tokens: Vec<String>,
    agg: Agg,
}

/// Drain similarity: equal non-wildcard positions over all positions.
fn similarity(cluster: &[String], t: &[&str]) -> f64 {
    let same = cluster
        .iter()
        .zip(t)
        .filter(|(c, t)| c.as_str() == **t && c.as_str() != WILDCARD)
        .count();
    same as f64 / t.len() as f64
}

/// Merges per-template figures into Drain clusters (see the module doc) and returns the
/// `limit` largest, most frequent first (ties: latest log first, then template text).
pub fn cluster<S: AsRef<str>>(templates: Vec<(S, Agg)>, limit: usize) -> Vec<Pattern> {
    let mut templates = templates;
    templates.sort_by(|a, b| {
        b.1.count
            .cmp(&a.1.count)
            .then_with(|| a.0.as_ref().cmp(b.0.as_ref()))
    });
    let mut clusters: Vec<Cluster> = Vec::new();
    let mut groups: HashMap<(usize, String), Vec<usize>> = HashMap::new();
    for (text, agg) in &templates {
        let toks: Vec<&str> = text.as_ref().split(' ').collect();
        let members = groups.entry((toks.len(), toks[0].to_string())).or_default();
        let mut best: Option<(f64, usize)> = None;
        for &ci in members.iter().take(MAX_CLUSTERS_PER_GROUP) {
            let s = similarity(&clusters[ci].tokens, &toks);
            if s >= SIMILARITY && best.is_none_or(|(b, _)| s > b) {
                best = Some((s, ci));
            }
        }
        match best {
            Some((_, ci)) => {
                let c = &mut clusters[ci];
                for (have, t) in c.tokens.iter_mut().zip(&toks) {
                    if have != t {
                        *have = WILDCARD.to_string();
                    }
                }
                c.agg.merge(agg);
            }
            None => {
                members.push(clusters.len());
                clusters.push(Cluster {
                    tokens: toks.iter().map(|t| t.to_string()).collect(),
                    agg: *agg,
                });
            }
        }
    }
    let mut out: Vec<Pattern> = clusters
        .into_iter()
        .map(|c| Pattern {
            pattern: c.tokens.join(" "),
            count: c.agg.count,
            levels: c.agg.levels,
            first_seen_us: c.agg.first_ts,
            last_seen_us: c.agg.last.timestamp,
            sample_log_id: c.agg.last,
        })
        .collect();
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| b.sample_log_id.cmp(&a.sample_log_id))
            .then_with(|| a.pattern.cmp(&b.pattern))
    });
    out.truncate(limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Level;
    use proptest::prelude::*;

    /// The rules of the module doc written the plain way, piece by piece: the oracle the
    /// fast tokenizer must agree with.
    fn reference(msg: &str) -> Option<String> {
        let b = msg.as_bytes();
        let mut out = String::new();
        let mut i = 0;
        let mut tokens = 0;
        loop {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i >= b.len() {
                break;
            }
            if tokens == MAX_TOKENS {
                out.push_str(" …");
                break;
            }
            if tokens > 0 {
                out.push(' ');
            }
            tokens += 1;
            let start = out.len();
            let mut piece = i;
            let push = |out: &mut String, p: &str| {
                if p.bytes().any(|c| c.is_ascii_digit() || c == b'@') {
                    out.push_str(WILDCARD);
                } else {
                    out.push_str(p);
                }
            };
            while i < b.len() && !b[i].is_ascii_whitespace() {
                let c = b[i];
                if i == piece && matches!(c, b'"' | b'\'' | b'`') {
                    if let Some(close) = b[i + 1..].iter().position(|&d| d == c) {
                        out.push_str(WILDCARD);
                        i += close + 2;
                        piece = i;
                        continue;
                    }
                }
                if b"/=:,;()[]{}<>|".contains(&c) {
                    push(&mut out, &msg[piece..i]);
                    out.push(c as char);
                    i += 1;
                    piece = i;
                    continue;
                }
                i += 1;
            }
            push(&mut out, &msg[piece..i]);
            if out.len() - start > MAX_TOKEN_BYTES {
                out.truncate(start);
                out.push_str(WILDCARD);
            }
        }
        (tokens > 0).then_some(out)
    }

    proptest! {
        #[test]
        fn fast_tokenizer_agrees_with_the_rules(
            msg in proptest::string::string_regex("([a-z]{1,12}|[0-9]{1,4}|[ \t\n]{1,3}|[\"'`/=:,@<>|(]|é|x{60,70}){0,150}").unwrap()
        ) {
            let mut out = String::new();
            let got = template_into(&msg, &mut out).then_some(out);
            prop_assert_eq!(got, reference(&msg), "{:?}", msg);
        }
    }

    fn t(msg: &str) -> String {
        let mut s = String::new();
        template_into(msg, &mut s);
        s
    }

    #[test]
    fn numbers_ids_and_quotes_become_wildcards() {
        assert_eq!(t("user 42 not found"), "user <*> not found");
        assert_eq!(t("user 97 not found"), "user <*> not found");
        assert_eq!(
            t("GET /users/42/orders took 12ms"),
            "GET /users/<*>/orders took <*>"
        );
        assert_eq!(
            t("user_id=7 'bob smith' logged in"),
            "user_id=<*> <*> logged in"
        );
        assert_eq!(t("key=\"a b c\", retrying"), "key=<*>, retrying");
        assert_eq!(
            t("id 123e4567-e89b-12d3-a456-426614174000 from bob@corp.io"),
            "id <*> from <*>"
        );
        assert_eq!(
            t("connect 10.0.0.1:5432 (attempt 3)"),
            "connect <*>:<*> (attempt <*>)"
        );
        assert_eq!(t("  spaced\tout \n words  "), "spaced out words");
        assert_eq!(t("can't reach it's 'host'"), "can't reach it's <*>");
        assert_eq!(t("unclosed 'quote here"), "unclosed 'quote here");
    }

    #[test]
    fn empty_long_and_unicode_messages() {
        let mut s = String::new();
        assert!(!template_into("   ", &mut s));
        assert!(!template_into("", &mut s));
        let long = (0..40)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let tl = t(&long);
        assert_eq!(tl.split(' ').count(), MAX_TOKENS + 1);
        assert!(tl.ends_with(" …"));
        assert_eq!(t(&"x".repeat(100)), "<*>");
        assert_eq!(t("héllo wörld 5"), "héllo wörld <*>");
    }

    fn agg(count: u64, ts: i64) -> Agg {
        let mut a = Agg::empty();
        for i in 0..count {
            a.add_log(ts, ts as u64 * 1000 + i, Level::Info);
        }
        a
    }

    #[test]
    fn drain_merges_words_that_vary() {
        let out = cluster(
            vec![
                ("user alice not found", agg(3, 10)),
                ("user bob not found", agg(2, 20)),
                ("user <*> not found", agg(5, 5)),
                ("disk full", agg(1, 1)),
                ("disk empty", agg(1, 2)),
                ("cache warmed in <*>", agg(4, 3)),
            ],
            10,
        );
        let names: Vec<(&str, u64)> = out.iter().map(|p| (p.pattern.as_str(), p.count)).collect();
        assert_eq!(
            names,
            vec![
                ("user <*> not found", 10),
                ("cache warmed in <*>", 4),
                ("disk <*>", 2)
            ]
        );
        assert_eq!(out[0].first_seen_us, 5);
        assert_eq!(out[0].last_seen_us, 20);
        assert_eq!(out[0].levels[Level::Info as usize], 10);
    }

    #[test]
    fn different_shapes_stay_apart() {
        let out = cluster(
            vec![
                ("payment failed for <*>", agg(1, 1)),
                ("payment succeeded", agg(1, 1)),
                ("login failed for <*>", agg(1, 1)),
                ("a b c d", agg(1, 1)),
                ("a x y z", agg(1, 1)),
            ],
            10,
        );
        assert_eq!(out.len(), 5);
        let limited = cluster(vec![("a", agg(1, 1)), ("b", agg(2, 1))], 1);
        assert_eq!(limited.len(), 1);
        assert_eq!(limited[0].pattern, "b");
    }
}
