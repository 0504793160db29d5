//! A real S3-protocol server for tests: Moto's standalone server (`moto_server`, from PyPI
//! `moto[server]`, which `.ci/run` installs), started as a child process on a free port.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bucket::Bucket;

pub struct S3Server {
    child: Child,
    pub endpoint: String,
}

impl S3Server {
    /// Starts a server. Without `moto_server` on the PATH this returns `None` (the test
    /// skips and says why), except under CI (`CI` set), where it panics: a test that cannot
    /// run must fail there, not pass quietly.
    pub fn start() -> Option<S3Server> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = match Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                let why = format!("moto_server (pip install 'moto[server]') not runnable: {e}");
                if std::env::var_os("CI").is_some() {
                    panic!("{why}");
                }
                eprintln!("skipping: {why}");
                return None;
            }
        };
        let s = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not start in 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(s)
    }

    /// The AWS variables that point a client at this server.
    pub fn vars(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Creates a bucket (Moto accepts an unsigned `PUT /<bucket>`).
    pub fn create_bucket(&self, name: &str) {
        use std::io::{Read, Write};
        let addr = self.endpoint.trim_start_matches("http://");
        // moto_server has been seen to reset a connection made just after it started
        // answering: retry the request a few times before failing.
        let put = || -> std::io::Result<String> {
            let mut c = std::net::TcpStream::connect(addr)?;
            write!(
                c,
                "PUT /{name} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
            let mut answer = String::new();
            c.read_to_string(&mut answer)?;
            Ok(answer)
        };
        let mut tries = 0;
        let answer = loop {
            match put() {
                Ok(a) => break a,
                Err(e) if tries < 20 => {
                    tries += 1;
                    eprintln!("create bucket {name}: {e}; retrying");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => panic!("create bucket {name} at {addr}: {e}"),
            }
        };
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "create bucket: {answer}"
        );
    }

    /// A new bucket on this server, opened at `prefix`.
    pub fn bucket(&self, name: &str, prefix: &str) -> Bucket {
        self.create_bucket(name);
        Bucket::open_with(&format!("s3://{name}/{prefix}"), &self.vars()).unwrap()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
