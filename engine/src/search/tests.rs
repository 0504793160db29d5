use super::eval::matches;
use super::parser::{parse, Expr};
use super::tokenize::tokenize;
use crate::model::{Field, Importance, Level, LogRecord, LogType, NewLog};

fn rec(msg: &str) -> LogRecord {
    LogRecord {
        seq: 1,
        ingested_at: 0,
        log: NewLog::new(0, Level::Error, LogType::Exception, Importance::High)
            .with(Field::Message, msg)
            .with(Field::Service, "billing")
            .with(Field::ErrorType, "ValueError")
            .with(
                Field::Attributes,
                r#"{"user_id":"usr_123","http":{"status":500},"duration_ms":300.5}"#,
            ),
    }
}

fn m(q: &str, msg: &str) -> bool {
    matches(&parse(q).unwrap_or_else(|e| panic!("{q}: {e}")), &rec(msg))
}

fn err_at(q: &str) -> usize {
    match parse(q) {
        Err(e) => e.position,
        Ok(e) => panic!("{q} parsed as {e:?}"),
    }
}

#[test]
fn words_are_anded_across_text_fields() {
    assert!(m("timeout database", "Database timeout after 5s"));
    assert!(!m("timeout database", "timeout only"));
    assert!(
        m("valueerror timeout", "timeout"),
        "error_type is searched too"
    );
    assert!(!m("time", "timeout"), "whole tokens only");
}

#[test]
fn phrases_need_consecutive_tokens() {
    assert!(m(
        "\"connection refused\"",
        "error: Connection refused by host"
    ));
    assert!(!m("\"connection refused\"", "refused connection"));
    assert!(m(r#""say \"hi\"""#, "they say hi"));
}

#[test]
fn or_not_minus_and_parentheses() {
    assert!(m("foo OR timeout", "timeout"));
    assert!(!m("foo OR bar", "timeout"));
    assert!(m("NOT foo", "timeout"));
    assert!(!m("-timeout", "timeout"));
    assert!(m("(foo OR timeout) AND -bar", "timeout"));
    assert!(m("a b OR timeout", "timeout"), "OR binds looser than AND");
    assert!(!m("timeout (foo OR bar)", "timeout"));
}

#[test]
fn field_terms() {
    assert!(m("level:error", "x"));
    assert!(m("level:ERROR", "x"));
    assert!(!m("level:info", "x"));
    assert!(m("service:billing", "x"));
    assert!(!m("service:bill", "x"));
    assert!(m("error_type:ValueError", "x"));
    assert!(m("message:timeout", "a timeout"));
    assert!(!m("message:valueerror", "a timeout"));
    assert!(m("log_type:exception importance:high", "x"));
}

#[test]
fn attribute_terms_and_ranges() {
    assert!(m("attributes.user_id:\"usr_123\"", "x"));
    assert!(m("attributes.user_id:usr_123", "x"));
    assert!(m("attributes.http.status:500", "x"));
    assert!(!m("attributes.http.status:404", "x"));
    assert!(m("attributes.duration_ms:>250", "x"));
    assert!(!m("attributes.duration_ms:>300.5", "x"));
    assert!(m("attributes.duration_ms:>=300.5", "x"));
    assert!(m("attributes.duration_ms:<1000", "x"));
    assert!(m("attributes.duration_ms:[300 TO 301]", "x"));
    assert!(!m("attributes.duration_ms:[1 TO 2]", "x"));
    assert!(!m("attributes.missing:>1", "x"));
}

#[test]
fn regex_over_the_whole_message() {
    assert!(m("message:/timeout|refused/", "connection refused"));
    assert!(m("message:/TIMEOUT/i", "a timeout"));
    assert!(!m("message:/TIMEOUT/", "a timeout"));
    assert!(m("message:/ti.*ut after \\d+s/", "timeout after 5s"));
}

#[test]
fn errors_name_the_position_and_what_was_expected() {
    assert_eq!(err_at(""), 0);
    assert_eq!(err_at("(timeout"), 8);
    assert_eq!(err_at("timeout)"), 7);
    assert_eq!(err_at("\"unclosed"), 0);
    assert_eq!(err_at("foo:bar"), 0);
    assert_eq!(err_at("x level:loud"), 8);
    assert_eq!(err_at("message:/(unclosed/"), 8);
    assert_eq!(err_at("message:/x/q"), 8);
    assert_eq!(err_at("attributes.d:>abc"), 14);
    assert_eq!(err_at("attributes.d:[1 2]"), 16);
    assert_eq!(err_at("a OR"), 4);
    assert_eq!(err_at("NOT"), 3);
    assert_eq!(err_at(":x"), 0);
    assert_eq!(err_at("service: x"), 8);
    assert_eq!(err_at("---"), 2);
    let e = parse("(a").unwrap_err();
    assert!(e.message.contains("expected ')'"), "{}", e.message);
    let e = parse("foo:bar").unwrap_err();
    assert!(e.message.contains("unknown field"), "{}", e.message);
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let q = "(".repeat(10_000) + "a" + &")".repeat(10_000);
    assert!(parse(&q).is_err());
    let q = "NOT ".repeat(10_000) + "a";
    assert!(parse(&q).is_err());
}

#[test]
fn tokenizer_splits_on_punctuation_and_lowercases() {
    assert_eq!(
        tokenize("User_42 not-found!"),
        vec!["user", "42", "not", "found"]
    );
    let e = parse("user_42").unwrap();
    assert!(matches!(e, Expr::Text { ref tokens, .. } if tokens.len() == 2));
}

proptest::proptest! {
    #[test]
    fn parser_never_panics(q in "\\PC{0,60}") {
        let _ = parse(&q);
    }

    #[test]
    fn parser_never_panics_on_query_like_input(q in "[a-z\"():/\\[\\]<>=. -]{0,40}|(NOT|OR|AND|TO|level:|attributes.x:|message:/| )+") {
        let _ = parse(&q);
    }
}
