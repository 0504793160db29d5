//! Every error is the documented JSON error, even those hyper answers by itself: a request
//! line with unencoded characters, an oversized head. Each is sent over a raw socket to the
//! real binary, and the answer must be the same status with `{"error": {"code",
//! "message"}}` as an `application/json` body of the length it declares; the connection is
//! then closed, and the server goes on serving new ones.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Resp, Server};
use serde_json::Value;

/// Sends `raw` as it is and reads every answer until the server closes the connection.
/// Panics if it is still open after 10 s: after a parse error the server must close it.
fn exchange_all(addr: &str, raw: &[u8]) -> Vec<Resp> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer and close before reading everything; keep what it said.
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    if let Err(e) = s.read_to_end(&mut out) {
        assert!(
            !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "the connection stayed open after {:?}",
            String::from_utf8_lossy(&out)
        );
    }
    split_answers(&out)
}

/// Splits a stream of HTTP/1.1 answers, each framed by its `content-length`.
fn split_answers(mut raw: &[u8]) -> Vec<Resp> {
    let mut answers = Vec::new();
    while !raw.is_empty() {
        let text = String::from_utf8_lossy(raw);
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no end of head in {text:?}"))
            + 4;
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = head.trim_end().split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or_else(|| panic!("no content-length in {head:?}"));
        assert!(
            raw.len() >= end + len,
            "body shorter than its content-length in {text:?}"
        );
        answers.push(Resp {
            status,
            headers,
            body: raw[end..end + len].to_vec(),
        });
        raw = &raw[end + len..];
    }
    answers
}

/// The one answer to `raw`, which must be the documented JSON error with this status and
/// code; returns its message.
fn expect_json_error(addr: &str, raw: &[u8], status: u16, code: &str) -> String {
    let what = String::from_utf8_lossy(&raw[..raw.len().min(80)]).into_owned();
    let answers = exchange_all(addr, raw);
    assert_eq!(answers.len(), 1, "{what}: {answers:?}");
    let r = &answers[0];
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8"),
        "{what}: {r:?}"
    );
    r.expect_error(status, code);
    let body: Value = r.json();
    body["error"]["message"].as_str().unwrap().to_owned()
}

/// A fresh connection is still served.
fn assert_serves(s: &Server) {
    let answers = exchange_all(
        &s.addr,
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].status, 200, "{}", answers[0].text());
}

fn get(path: &[u8], key: &str) -> Vec<u8> {
    let mut raw = b"GET ".to_vec();
    raw.extend_from_slice(path);
    raw.extend_from_slice(
        format!(" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    raw
}

#[test]
fn unencoded_characters_in_the_request_line_get_a_json_invalid_query() {
    let s = Server::start(&[]);
    let t = s.tenant("raw@example.com");
    for path in [
        &b"/api/v1/logs/search?q=attributes.duration_ms:>250"[..],
        b"/api/v1/logs/search?q=\"card declined\"",
        b"/api/v1/logs/search?q=<b>",
        b"/api/v1/logs?service=a b",
        // Bytes that are not UTF-8.
        b"/api/v1/logs?service=\xff\xfe",
    ] {
        let message = expect_json_error(&s.addr, &get(path, &t.key), 400, "invalid_query");
        assert!(message.contains("percent-encode"), "{message}");
        assert_serves(&s);
    }
    // The same queries, percent-encoded, are served.
    for path in [
        "/api/v1/logs/search?q=attributes.duration_ms%3A%3E250",
        "/api/v1/logs/search?q=%22card+declined%22",
        "/api/v1/logs?service=%FF%FE",
    ] {
        let answers = exchange_all(&s.addr, &get(path.as_bytes(), &t.key));
        let r = &answers[0];
        // Encoded, invalid UTF-8 reaches our decoder, which refuses it by name.
        if path.ends_with("%FF%FE") {
            r.expect_error(400, "invalid_query");
        } else {
            assert_eq!(r.status, 200, "{path}: {}", r.text());
        }
    }
    // hyper lets raw UTF-8 through; it is read as the text it is.
    let answers = exchange_all(
        &s.addr,
        &get("/api/v1/logs?service=über".as_bytes(), &t.key),
    );
    assert_eq!(answers[0].status, 200, "{}", answers[0].text());
}

#[test]
fn malformed_escapes_get_a_json_invalid_query() {
    let s = Server::start(&[]);
    let t = s.tenant("escapes@example.com");
    for path in [
        "/api/v1/logs?service=%+5",
        "/api/v1/logs?service=%4",
        "/api/v1/logs?service=%zz",
        "/api/v1/logs/search?q=%-1",
    ] {
        let message =
            expect_json_error(&s.addr, &get(path.as_bytes(), &t.key), 400, "invalid_query");
        assert!(message.contains("two hex digits"), "{path}: {message}");
    }
    for path in [
        "/api/v1/logs?service=a%20b",
        "/api/v1/logs?service=a+b",
        "/api/v1/logs?service=a%2Bb",
    ] {
        let answers = exchange_all(&s.addr, &get(path.as_bytes(), &t.key));
        assert_eq!(answers[0].status, 200, "{path}: {}", answers[0].text());
    }
}

#[test]
fn an_oversized_head_gets_a_json_431() {
    let s = Server::start(&["--max-header-bytes", "16384"]);
    let big = "a".repeat(20_000);
    let raw = format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    let message = expect_json_error(&s.addr, raw.as_bytes(), 431, "payload_too_large");
    assert!(message.contains("16384 bytes"), "{message}");
    assert_serves(&s);
    let many: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    let raw = format!("GET /health HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let message = expect_json_error(&s.addr, raw.as_bytes(), 431, "payload_too_large");
    assert!(message.contains("100 header fields"), "{message}");
    assert_serves(&s);
}

#[test]
fn a_bad_request_after_a_good_one_on_the_same_connection() {
    let s = Server::start(&[]);
    // Pipelined: the first answer must arrive intact, the second be the JSON error.
    let answers = exchange_all(
        &s.addr,
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health?a=> HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0].status, 200);
    assert_eq!(answers[0].json()["status"], "ok");
    answers[1].expect_error(400, "invalid_query");
    assert_serves(&s);
}

#[test]
fn an_unparsable_header_gets_a_json_400() {
    let s = Server::start(&[]);
    for raw in [
        &b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: \x01\r\n\r\n"[..],
        b"POST /api/v1/ingest/single HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
    ] {
        let message = expect_json_error(&s.addr, raw, 400, "invalid_query");
        assert!(message.contains("not valid HTTP/1.1"), "{message}");
    }
    assert_serves(&s);
}
