//! The search query language on arbitrary text. Invariants: `search::parse` returns a query
//! or a `ParseError` whose position lies inside the query, never panics (nesting, regex
//! size and odd Unicode included); a parsed query evaluates against sample logs without
//! panicking, and `NOT q` matches exactly when `q` does not.
use std::sync::OnceLock;

use ledger_engine::search::{eval::matches, parse, Expr};
use ledger_engine::{Field, Importance, Level, LogRecord, LogType, NewLog};

fn samples() -> &'static [LogRecord] {
    static S: OnceLock<Vec<LogRecord>> = OnceLock::new();
    S.get_or_init(|| {
        let full = NewLog::new(1_795_000_000_000, Level::Error, LogType::Exception, Importance::High)
            .with(Field::Message, "Payment failed for order 1234: card_declined (retry 3/5) über")
            .with(Field::ErrorType, "PaymentError")
            .with(Field::ErrorMessage, "card declined by issuer")
            .with(Field::StackTrace, "at pay (checkout.js:10:5)\nat main (index.js:1:1)")
            .with(Field::Service, "checkout")
            .with(Field::Source, "web-01")
            .with(Field::Environment, "production")
            .with(Field::Release, "v1.2.3")
            .with(Field::Platform, "linux")
            .with(Field::Language, "javascript")
            .with(Field::TraceId, "4bf92f3577b34da6a3ce929d0e0e4736")
            .with(Field::SpanId, "00f067aa0ba902b7")
            .with(
                Field::Attributes,
                r#"{"user":{"id":42,"name":"ann","tags":["a","b"]},"latency_ms":250.5,"ok":false,"n":null}"#,
            );
        let bare = NewLog::new(0, Level::Debug, LogType::Console, Importance::Low);
        let odd = NewLog::new(-1, Level::Info, LogType::Custom, Importance::Standard)
            .with(Field::Message, "")
            .with(Field::Attributes, "not json {");
        [full, bare, odd]
            .into_iter()
            .enumerate()
            .map(|(i, log)| LogRecord {
                seq: i as u64 + 1,
                ingested_at: 1_795_000_000_000,
                log,
            })
            .collect()
    })
}

/// Checks one input; panics on a broken invariant.
pub fn run(data: &[u8]) {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    match parse(q) {
        Ok(e) => {
            let not = Expr::Not(Box::new(e.clone()));
            for r in samples() {
                assert_ne!(matches(&e, r), matches(&not, r), "NOT q agrees with q");
            }
        }
        Err(err) => assert!(
            err.position <= q.len(),
            "error position {} past the end of a {}-byte query",
            err.position,
            q.len()
        ),
    }
}
