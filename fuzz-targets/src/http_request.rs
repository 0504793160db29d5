//! Arbitrary bytes as a raw HTTP/1.1 request to the real server. Invariants: the server
//! never panics (libfuzzer-sys aborts on a panic in any thread, so a handler panic the app's
//! guard would turn into a 500 still counts as a crash) and never answers 500.
//!
//! One server per fuzz process, started in-process with `ledger_server::run` on
//! 127.0.0.1:0 over a temporary data directory, with an account, a project and an API key
//! made at start. The placeholders `$JWT`, `$KEY`, `$PROJECT` and `$KEYID` in an input are
//! replaced by those, so the seed corpus reaches the authenticated routes.
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use ledger_engine::FsyncPolicy;
use ledger_server::config::{Config, MIN_PBKDF2_ITERATIONS};

struct Server {
    addr: SocketAddr,
    subst: Vec<(&'static [u8], Vec<u8>)>,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

/// Sends a whole request that asks for `Connection: close` and reads to the end.
fn exchange(addr: SocketAddr, req: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect to the in-process server");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    s.write_all(req).expect("send a bootstrap request");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// How long the server may stay quiet before the client gives up waiting for more: an
/// input is often an incomplete request (the server waits for the rest) or a complete
/// keep-alive one (the server waits for the next).
const IDLE: Duration = Duration::from_millis(100);

/// Sends arbitrary bytes and returns what the server answered. The write side stays open
/// until the server goes quiet: the server does not support half-closed connections, and
/// would drop a request still being handled if it saw EOF early.
fn fuzz_exchange(addr: SocketAddr, req: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect to the in-process server");
    s.set_write_timeout(Some(Duration::from_secs(2))).ok();
    // The server may answer (and close) before reading everything: keep what it said.
    let _ = s.write_all(req);
    let mut out = Vec::new();
    let mut buf = [0u8; 16 << 10];
    s.set_read_timeout(Some(IDLE)).ok();
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    // Quiet: say we are done and take whatever the server still sends before it closes.
    let _ = s.shutdown(Shutdown::Write);
    s.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    out.extend_from_slice(&rest);
    out
}

/// One JSON string field of a small JSON response.
fn field(resp: &[u8], name: &str) -> String {
    let text = String::from_utf8_lossy(resp);
    let (start, end) = (text.find('{'), text.rfind('}'));
    let v: serde_json::Value = match (start, end) {
        (Some(s), Some(e)) => serde_json::from_str(&text[s..=e]).unwrap_or_default(),
        _ => serde_json::Value::Null,
    };
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name:?} in bootstrap response {text:?}"))
        .to_owned()
}

fn post(addr: SocketAddr, path: &str, auth: &str, body: &str) -> Vec<u8> {
    let auth = if auth.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {auth}\r\n")
    };
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    exchange(addr, req.as_bytes())
}

fn server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let mut config = Config::new(dir.path().join("data")).with_fsync(FsyncPolicy::Never);
        config.pbkdf2_iterations = MIN_PBKDF2_ITERATIONS;
        // Limits would turn most inputs into 429s; the fuzzer wants the handlers.
        config.login_max_failures = usize::MAX / 2;
        let d = &mut config.project_defaults;
        d.daily_quota = u64::MAX / 4;
        d.rate_limit_per_minute = u64::MAX / 4;
        d.rate_limit_per_hour = u64::MAX / 4;
        rt.spawn(async move {
            if let Err(e) = ledger_server::run(listener, config, std::future::pending()).await {
                panic!("the fuzzed server stopped: {e:#}");
            }
        });

        let r = post(
            addr,
            "/api/v1/auth/register",
            "",
            r#"{"email":"fuzz@example.com","password":"correct horse battery"}"#,
        );
        let jwt = field(&r, "token");
        let project = field(
            &post(addr, "/api/v1/projects", &jwt, r#"{"name":"fuzz"}"#),
            "id",
        );
        let r = post(
            addr,
            &format!("/api/v1/projects/{project}/keys"),
            &jwt,
            r#"{"name":"k","scopes":["ingest","query"]}"#,
        );
        let (key, key_id) = (field(&r, "key"), field(&r, "id"));
        Server {
            addr,
            subst: vec![
                (b"$JWT", jwt.into_bytes()),
                (b"$KEYID", key_id.into_bytes()),
                (b"$KEY", key.into_bytes()),
                (b"$PROJECT", project.into_bytes()),
            ],
            _rt: rt,
            _dir: dir,
        }
    })
}

/// Replaces each placeholder in `data` with its value (longest names first).
fn substitute(data: &[u8], subst: &[(&[u8], Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut i = 0;
    'next: while i < data.len() {
        if data[i] == b'$' {
            for (name, value) in subst {
                if data[i..].starts_with(name) {
                    out.extend_from_slice(value);
                    i += name.len();
                    continue 'next;
                }
            }
        }
        out.push(data[i]);
        i += 1;
    }
    out
}

/// The status codes of the responses in `raw`, in order (pipelined requests get several).
/// Stops at the first response whose end it cannot find.
fn statuses(mut raw: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    while raw.starts_with(b"HTTP/1.") {
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
        let mut lines = head.split("\r\n");
        let status = lines.next().and_then(|l| l.split(' ').nth(1));
        out.push(status.and_then(|s| s.parse().ok()).unwrap_or(0));
        let mut rest = &raw[end + 4..];
        let header = |name: &str| {
            head.split("\r\n")
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().to_owned())
        };
        if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
                    return out;
                };
                let size = String::from_utf8_lossy(&rest[..eol]);
                let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
                    return out;
                };
                let skip = eol + 2 + size + 2;
                if rest.len() < skip {
                    return out;
                }
                rest = &rest[skip..];
                if size == 0 {
                    break;
                }
            }
        } else if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            if rest.len() < n {
                break;
            }
            rest = &rest[n..];
        } else {
            break;
        }
        raw = rest;
    }
    out
}

/// Checks one input; panics on a broken invariant.
pub fn run(data: &[u8]) {
    let s = server();
    let req = substitute(data, &s.subst);
    let resp = fuzz_exchange(s.addr, &req);
    assert!(
        !statuses(&resp).contains(&500),
        "the server answered 500 to {:?}:\n{}",
        String::from_utf8_lossy(&req),
        String::from_utf8_lossy(&resp)
    );
}
