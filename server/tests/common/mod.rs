//! Shared by the integration tests: start the real `ledger` binary on a free port with a
//! temporary data directory, and speak HTTP/1.1 to it over a plain `TcpStream`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// A running server; killed when dropped.
pub struct Server {
    pub addr: String,
    pub child: Child,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server on a fresh data directory with extra flags.
    pub fn start(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let mut s = Server::start_in(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on a fresh data directory with extra flags and environment
    /// variables (which override the defaults below, e.g. `LEDGER_LOG`).
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let mut s = Server::spawn(&dir, extra, env);
        s._tmp = Some(tmp);
        s
    }

    /// The server's log (its stderr) so far.
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.dir.with_extension("log")).unwrap_or_default())
            .into_owned()
    }

    /// Starts a server on `dir` (which may hold data from an earlier run).
    pub fn start_in(dir: &Path, extra: &[&str]) -> Server {
        Server::spawn(dir, extra, &[])
    }

    /// [`Server::start_in`] with environment variables.
    pub fn start_in_with_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn(dir, extra, env)
    }

    fn spawn(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.with_extension("log"))
            .expect("server log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ledger"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(["--pbkdf2-iterations", "10000", "--fsync", "always"])
            .args(extra)
            .env("LEDGER_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the ledger binary");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {line:?}; see {}",
                    dir.with_extension("log").display()
                )
            })
            .to_owned();
        Server {
            addr,
            child,
            dir: dir.to_owned(),
            _tmp: None,
        }
    }

    /// Sends one request and reads the whole answer.
    pub fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        request(&self.addr, method, path, headers, body)
    }

    /// A request with `Authorization: Bearer <cred>` (none when `cred` is empty).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        cred: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let b = format!("Bearer {cred}");
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        if !cred.is_empty() {
            h.push(("Authorization", &b));
        }
        self.req(method, path, &h, body)
    }

    pub fn get(&self, path: &str, cred: &str) -> Resp {
        self.send("GET", path, cred, &[], b"")
    }

    pub fn post(&self, path: &str, cred: &str, body: &Value) -> Resp {
        self.send(
            "POST",
            path,
            cred,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    }

    pub fn patch(&self, path: &str, cred: &str, body: &Value) -> Resp {
        self.send(
            "PATCH",
            path,
            cred,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    }

    pub fn delete(&self, path: &str, cred: &str) -> Resp {
        self.send("DELETE", path, cred, &[], b"")
    }

    /// Registers an account, creates a project and an ingest+query key.
    pub fn tenant(&self, email: &str) -> Tenant {
        let r = self.post(
            "/api/v1/auth/register",
            "",
            &json!({"email": email, "password": "correct horse battery"}),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let token = r.json()["token"].as_str().unwrap().to_owned();
        let r = self.post("/api/v1/projects", &token, &json!({"name": "app"}));
        assert_eq!(r.status, 201, "{}", r.text());
        let project = r.json()["id"].as_str().unwrap().to_owned();
        let r = self.post(
            &format!("/api/v1/projects/{project}/keys"),
            &token,
            &json!({"name": "k", "scopes": ["ingest", "query"]}),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let key = r.json()["key"].as_str().unwrap().to_owned();
        let key_id = r.json()["id"].as_str().unwrap().to_owned();
        Tenant {
            token,
            project,
            key,
            key_id,
        }
    }

    /// Stops with SIGTERM and returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        self.child.wait().expect("wait for the server")
    }

    /// Stops with SIGTERM and waits, keeping the data directory for inspection.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        self.child.wait().expect("wait for the server")
    }

    /// Kills with SIGKILL (no chance to flush anything).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An account with a project and an API key (scopes ingest and query).
pub struct Tenant {
    pub token: String,
    pub project: String,
    pub key: String,
    pub key_id: String,
}

/// An answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Asserts the status and the documented error shape and code.
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.text());
        let j = self.json();
        assert_eq!(j["error"]["code"], code, "body: {j}");
        assert!(j["error"]["message"].is_string(), "body: {j}");
    }
}

/// One HTTP/1.1 exchange on a new connection (`Connection: close`).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).expect("write head");
    // The server may answer (e.g. 413) before reading everything; keep what it said.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

/// Sends `raw` bytes as they are (a hand-made request) and reads the answer until the
/// server closes the connection.
pub fn exchange(addr: &str, raw: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse_response(&out)
}

/// Parses an HTTP/1.1 answer (status line, headers, body; chunked bodies are joined).
pub fn parse_response(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

/// A valid log with the given message, at a fixed time plus `i` milliseconds.
/// Yesterday's UTC date (`YYYY-MM-DD`): the day the tests' logs are stamped, so that they
/// are always inside a project's retention and never ahead of the server's clock.
pub fn day() -> String {
    let yesterday = ledger_engine::now_micros() - 86_400_000_000;
    ledger_engine::timefmt::format_micros(yesterday)[..10].to_owned()
}

pub fn log(i: u64, message: &str) -> Value {
    json!({
        "timestamp": format!("{}T12:00:{:02}.{:03}Z", day(), (i / 1000) % 60, i % 1000),
        "level": "info",
        "log_type": "logger",
        "importance": "standard",
        "message": message,
    })
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// A memory figure of a process from `/proc/<pid>/status`, in KiB (`VmRSS`: resident now;
/// `VmHWM`: the most it has been resident). Panics when it cannot be read: a memory
/// assertion against a made-up 0 would hold whatever the server did.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read {path} to measure the server's memory (Linux /proc needed): {e}")
    });
    let value = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("{path} has no {field} line:\n{status}"));
    value
        .trim()
        .strip_suffix("kB")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{path}: cannot parse {field}:{value}"))
}

/// True when `python3` can import `module`. Otherwise the calling test skips, saying so, except
/// under `CI=true`, where a missing client library is a failure (`.ci/run` installs `package`).
#[allow(dead_code)]
pub fn python_module(module: &str, package: &str) -> bool {
    let importable = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !importable {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI needs the Python package: pip install {package}"
        );
        eprintln!("skipped: python3 cannot import {module} (pip install {package})");
    }
    importable
}
