//! `ledgerctl loadgen`: HTTP load against a running Ledger server.
//!
//! Without `--key` it registers an account, creates a project with limits high enough not to
//! interfere, and makes an ingest key. Bodies are generated up front from `--seed` (so the
//! generator does not compete with the server for CPU during the run) and reused in turn.
//! With `--rate`, latency is measured from each request's scheduled start, so a stalled
//! server shows up in the percentiles instead of silently lowering the rate (coordinated
//! omission). With `--protocol`, the same logs go through one of the shipper front doors
//! (OTLP/HTTP, Elasticsearch `_bulk`, Loki push) instead, encoded as those shippers send them,
//! so each door can be compared with native ingest.

mod mixed;
mod protocol;
mod stamps;
mod tails;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use ledger_loggen::LogGen;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use protocol::{Log, Protocol};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `POST /api/v1/ingest/batch` with `--batch-size` logs each.
    Batch,
    /// `POST /api/v1/ingest/single`, one log each.
    Single,
    /// The soak: ingest, queries, lookups, searches and metrics at once, plus a project
    /// whose logs outlive their retention; checks every acknowledged id at the end.
    Mixed,
}

/// Options of `ledgerctl loadgen`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// An API key with the ingest scope; without one, an account, project and key are made.
    #[arg(long, env = "LEDGER_KEY")]
    key: Option<String>,
    #[arg(long, value_enum, default_value = "batch")]
    mode: Mode,
    /// The ingest protocol of batch and single mode: Ledger's own JSON, or a shipper front
    /// door. Every protocol sends the same generated logs, encoded once before the run; in
    /// single mode a door gets one log per request.
    #[arg(long, value_enum, default_value = "native")]
    protocol: Protocol,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Target requests per second over all connections; 0 sends as fast as answers come.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// How long to run: `30s`, `2m`, `500ms`, `1h 30m` (humantime's format), up to a week.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Logs per request in batch mode (1 to 1000).
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Seed of the generated logs: the same seed sends the same logs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Live tails to hold open beside the load (native batch mode): reports how long a log
    /// takes from its 202 to its event on every tail (at most 10 per project).
    #[arg(long, default_value_t = 0)]
    tails: usize,
    /// Retry a 429 or 503 at once instead of pausing 100 ms first, as a load tool or a
    /// misbehaving shipper would: the overload benchmark.
    #[arg(long)]
    no_backoff: bool,
    /// Stamp each log with the time its request is sent (native batch mode): the bodies are
    /// made once and their timestamps rewritten in place, so stored logs advance in time as a
    /// live service's do instead of repeating the same few seconds (the query benchmarks
    /// fill with this).
    #[arg(long)]
    live_timestamps: bool,
    /// The server's process id, to sample its resident memory each second (mixed mode).
    #[arg(long)]
    pid: Option<u32>,
    /// Send the logs of this NDJSON file (one log a line, as `ledgerctl generate` writes)
    /// instead of generated ones; repeat for more files. Native batch mode: each log is sent
    /// once, in `--batch-size` batches, a refused batch again until it is taken, and the run
    /// ends when every batch is acknowledged (`--duration` only caps it). So a comparison can
    /// feed Ledger exactly the logs another store was fed.
    #[arg(long, value_name = "PATH")]
    file: Vec<std::path::PathBuf>,
    /// Ask Linux 6.12+ for short scheduler slices (0.2 ms) on this tool's threads, as the
    /// server's request threads have, so that on a machine the tool shares with a busy
    /// server it sends and reads on time. A diagnostic: it tells the server's latency from
    /// the tool's own waits for a core; benchmark figures are taken without it.
    #[arg(long)]
    short_slice: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d =
        humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (e.g. 30s, 2m, 500ms)"))?;
    if d.is_zero() || d > Duration::from_secs(7 * 86_400) {
        return Err(format!("{s:?}: between 1ms and a week"));
    }
    Ok(d)
}

/// Runs the load and prints the report.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.concurrency == 0 || !(1..=1000).contains(&args.batch_size) || args.rate < 0.0 {
        bail!("--concurrency must be at least 1, --batch-size 1 to 1000, --rate at least 0");
    }
    if args.mode == Mode::Mixed && args.protocol != Protocol::Native {
        bail!("--mode mixed speaks the native protocol only");
    }
    if !args.file.is_empty()
        && (args.mode != Mode::Batch
            || args.protocol != Protocol::Native
            || args.tails > 0
            || args.live_timestamps)
    {
        bail!("--file sends native batches only (no --tails, no --live-timestamps)");
    }
    let short_slice = args.short_slice;
    if short_slice && !ledger_engine::shorten_slice() {
        bail!("--short-slice: the kernel did not take the slice (Linux 6.12 or later needed)");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || {
            if short_slice {
                ledger_engine::shorten_slice();
            }
        })
        .build()
        .context("starting the runtime")?;
    rt.block_on(run_async(args))
}

/// A JSON request; the status and body of its answer.
async fn call(
    client: &HttpClient,
    method: &str,
    url: &str,
    auth: Option<&str>,
    body: Bytes,
) -> anyhow::Result<(u16, Bytes)> {
    send(client, method, url, "application/json", auth, body).await
}

/// A request with a body of `content_type`; the status and body of its answer.
async fn send(
    client: &HttpClient,
    method: &str,
    url: &str,
    content_type: &str,
    auth: Option<&str>,
    body: Bytes,
) -> anyhow::Result<(u16, Bytes)> {
    let mut req = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", content_type);
    if let Some(a) = auth {
        req = req.header("authorization", format!("Bearer {a}"));
    }
    let resp = client.request(req.body(Full::new(body))?).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Registers an account, creates a project with high limits and returns an ingest key.
async fn setup(client: &HttpClient, base: &str, seed: u64) -> anyhow::Result<String> {
    let token = mixed::session(client, base, seed).await?;
    let key = mixed::project(client, base, &token, 30).await?;
    println!("loadgen: made an account and a project");
    Ok(key)
}

/// Request bodies, generated and encoded once: enough distinct ones that the server sees
/// varied data. Also the average size of a log as native JSON and in the request bodies.
/// With `--tails`, the first log of each body is a probe (see `tails`): the position of its
/// number is in `probes`.
fn bodies(args: &Args) -> (Vec<Bytes>, usize, usize, Vec<usize>, Vec<stamps::Stamps>) {
    let mut r = LogGen::new(args.seed, 0);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let single = args.mode != Mode::Batch;
    let per = if single { 1 } else { args.batch_size };
    let count = if single { 2048 } else { 32 };
    let (mut json_bytes, mut body_bytes) = (0, 0);
    let mut stamps = Vec::new();
    let out: Vec<Bytes> = (0..count)
        .map(|i| {
            let mut batch: Vec<Log> = (0..per)
                .map(|j| {
                    let ms = now_ms + (i * per + j) as u64;
                    Log {
                        ms,
                        json: r.json_at(ms as i64 * 1000),
                    }
                })
                .collect();
            if args.tails > 0 {
                let message = batch[0].json["message"].as_str().unwrap_or("").to_owned();
                batch[0].json["message"] =
                    format!("{}{message}", tails::probe_placeholder()).into();
            }
            json_bytes += batch
                .iter()
                .map(|l| l.json.to_string().len())
                .sum::<usize>();
            let body = args.protocol.encode(&batch, single);
            body_bytes += body.len();
            if args.live_timestamps {
                let times: Vec<i64> = batch.iter().map(|l| l.ms as i64 * 1000).collect();
                stamps.push(stamps::Stamps::find(&body, &times).unwrap_or_default());
            }
            body
        })
        .collect();
    let probes = if args.tails > 0 {
        out.iter()
            .map(|b| {
                memchr::memmem::find(b, tails::PROBE.as_bytes())
                    .map_or(0, |at| at + tails::PROBE.len())
            })
            .collect()
    } else {
        Vec::new()
    };
    (
        out,
        json_bytes / (count * per),
        body_bytes / (count * per),
        probes,
        stamps,
    )
}

/// Request bodies of `per` logs each from NDJSON files, in the files' order, with the number
/// of logs in each and the average size of a log. Lines are copied as they are (blank lines
/// skipped): the server validates them.
fn file_bodies(
    files: &[std::path::PathBuf],
    per: usize,
) -> anyhow::Result<(Vec<Bytes>, Vec<u64>, usize)> {
    let (mut bodies, mut counts) = (Vec::new(), Vec::new());
    let (mut body, mut n, mut bytes, mut logs) = (Vec::new(), 0u64, 0usize, 0usize);
    let mut finish = |body: &mut Vec<u8>, n: &mut u64| {
        if *n > 0 {
            body.extend_from_slice(b"]}");
            bodies.push(Bytes::from(std::mem::take(body)));
            counts.push(std::mem::take(n));
        }
    };
    for path in files {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for line in text.split(|&b| b == b'\n') {
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            body.extend_from_slice(if n == 0 { b"{\"logs\":[" } else { b"," });
            body.extend_from_slice(line);
            (n, bytes, logs) = (n + 1, bytes + line.len(), logs + 1);
            if n as usize == per {
                finish(&mut body, &mut n);
            }
        }
    }
    finish(&mut body, &mut n);
    anyhow::ensure!(logs > 0, "--file: no logs in {files:?}");
    Ok((bodies, counts, bytes / logs))
}

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    logs: AtomicU64,
    failed: AtomicU64,
}

fn new_hist() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant digits: constant, valid bounds.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

async fn run_async(args: Args) -> anyhow::Result<()> {
    let base = args.url.trim_end_matches('/').to_owned();
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency)
        .build(connector);
    if args.mode == Mode::Mixed {
        return mixed::run(&args, client, base).await;
    }
    let key = match &args.key {
        Some(k) => k.clone(),
        None => setup(&client, &base, args.seed).await?,
    };
    anyhow::ensure!(
        !args.live_timestamps || (args.protocol == Protocol::Native && args.mode == Mode::Batch),
        "--live-timestamps needs the native protocol in batch mode (it rewrites the JSON bodies)"
    );
    // From files: each body is sent once (`counts` logs each), taken in turn from `next`.
    let from_files = !args.file.is_empty();
    let (bodies, counts, avg, wire, probes, stamps) = if from_files {
        let (bodies, counts, avg) = file_bodies(&args.file, args.batch_size)?;
        let logs = counts.iter().sum::<u64>() as usize;
        let wire = bodies.iter().map(Bytes::len).sum::<usize>() / logs;
        (bodies, counts, avg, wire, Vec::new(), Vec::new())
    } else {
        let (bodies, avg, wire, probes, stamps) = bodies(&args);
        (bodies, Vec::new(), avg, wire, probes, stamps)
    };
    let file_logs = counts.iter().sum::<u64>();
    let next = Arc::new(AtomicU64::new(0));
    let counts = Arc::new(counts);
    let probes = Arc::new(probes);
    let stamps = Arc::new(stamps);
    let bodies = Arc::new(bodies);
    let per = if args.mode == Mode::Batch {
        args.batch_size as u64
    } else {
        1
    };
    let protocol = args.protocol;
    let path = format!("{base}{}", protocol.path(args.mode != Mode::Batch));
    let success = protocol.success();
    println!(
        "loadgen: {:?} mode, {:?} protocol, {} logs/request of ~{avg} bytes as JSON (~{wire} bytes sent per log), concurrency {}, rate {}, {:?}",
        args.mode,
        protocol,
        per,
        args.concurrency,
        if args.rate > 0.0 {
            format!("{} req/s", args.rate)
        } else {
            "unbounded".into()
        },
        args.duration
    );
    if from_files {
        println!(
            "loadgen: {file_logs} logs from {} file(s) in {} requests, each sent once",
            args.file.len(),
            bodies.len()
        );
    }
    let counters = Arc::new(Counters::default());
    let total = Arc::new(Mutex::new(new_hist()));
    let window = Arc::new(Mutex::new(new_hist()));
    let statuses = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    // How long the server took to say no: what a refusal costs a client.
    let refusals = Arc::new(Mutex::new(new_hist()));
    let book = if args.tails > 0 {
        anyhow::ensure!(
            args.protocol == Protocol::Native && args.mode == Mode::Batch,
            "--tails needs the native protocol in batch mode (its probes are found in the JSON bodies)"
        );
        let book = Arc::new(tails::Book::default());
        let until = Instant::now() + args.duration + Duration::from_secs(3);
        for _ in 0..args.tails {
            let (c, b, k, bk) = (client.clone(), base.clone(), key.clone(), book.clone());
            tokio::spawn(async move {
                if let Err(e) = tails::follow(c, b, k, bk, until).await {
                    eprintln!("loadgen: a tail failed: {e}");
                }
            });
        }
        // Let the tails open before the load starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Some(book)
    } else {
        None
    };
    let backoff = !args.no_backoff;
    let start = Instant::now();
    let deadline = start + args.duration;
    let slot = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..args.concurrency {
        let (client, bodies, probes, path, key, stamps) = (
            client.clone(),
            bodies.clone(),
            probes.clone(),
            path.clone(),
            key.clone(),
            stamps.clone(),
        );
        let (next, counts) = (next.clone(), counts.clone());
        let (counters, total, window, statuses, slot, refusals, book) = (
            counters.clone(),
            total.clone(),
            window.clone(),
            statuses.clone(),
            slot.clone(),
            refusals.clone(),
            book.clone(),
        );
        let rate = args.rate;
        workers.push(tokio::spawn(async move {
            let mut i = w;
            // A file's body that was refused, to send again.
            let mut again: Option<usize> = None;
            loop {
                let began = if rate > 0.0 {
                    let n = slot.fetch_add(1, Ordering::Relaxed);
                    let at = start + Duration::from_secs_f64(n as f64 / rate);
                    if at >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(at.into()).await;
                    at
                } else {
                    Instant::now()
                };
                if Instant::now() >= deadline {
                    break;
                }
                let (at, per) = if from_files {
                    let at = match again.take() {
                        Some(at) => at,
                        None => match usize::try_from(next.fetch_add(1, Ordering::Relaxed)) {
                            Ok(at) if at < bodies.len() => at,
                            _ => break,
                        },
                    };
                    (at, counts[at])
                } else {
                    (i % bodies.len(), per)
                };
                let mut body = bodies[at].clone();
                if let Some(s) = stamps.get(at) {
                    body = s.restamp(&body, ledger_engine::now_micros());
                }
                let mut probe = None;
                if let (Some(b), Some(&pos)) = (&book, probes.get(at)) {
                    let (numbered, n) = b.number(&body, pos);
                    body = numbered;
                    probe = Some(n);
                }
                i += 1;
                let res = send(
                    &client,
                    "POST",
                    &path,
                    protocol.content_type(),
                    Some(&key),
                    body,
                )
                .await;
                let us = began.elapsed().as_micros() as u64;
                let label = match &res {
                    Ok((st, answer)) if *st == success => {
                        let acked = protocol.acknowledged(answer, per);
                        if let (Some(b), Some(n)) = (&book, probe) {
                            b.acked(n);
                        }
                        counters.ok.fetch_add(1, Ordering::Relaxed);
                        counters.logs.fetch_add(acked, Ordering::Relaxed);
                        let _ = total.lock().record(us.max(1));
                        let _ = window.lock().record(us.max(1));
                        if acked < per {
                            let label = format!("{st} with some logs refused (logs)");
                            *statuses.lock().entry(label).or_default() += per - acked;
                        }
                        continue;
                    }
                    Ok((st @ (429 | 503), _)) => {
                        let _ = refusals.lock().record(us.max(1));
                        if from_files {
                            again = Some(at);
                        }
                        // Honour the server's pushback like a well-behaved shipper would,
                        // instead of spinning on refusals (unless told not to).
                        if backoff {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        st.to_string()
                    }
                    Ok((st, _)) => st.to_string(),
                    Err(e) => {
                        if from_files {
                            again = Some(at);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        format!("error: {e}")
                    }
                };
                counters.failed.fetch_add(1, Ordering::Relaxed);
                *statuses.lock().entry(label).or_default() += 1;
            }
        }));
    }
    let progress = {
        let (counters, window) = (counters.clone(), window.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let (mut last_ok, mut last_logs) = (0, 0);
            loop {
                tick.tick().await;
                let (ok, logs, failed) = (
                    counters.ok.load(Ordering::Relaxed),
                    counters.logs.load(Ordering::Relaxed),
                    counters.failed.load(Ordering::Relaxed),
                );
                let h = std::mem::replace(&mut *window.lock(), new_hist());
                println!(
                    "t={:>4.0}s  {:>7} req/s  {:>8} logs/s  p50 {:>7.2} ms  p99 {:>7.2} ms  failed {failed}",
                    start.elapsed().as_secs_f64(),
                    ok - last_ok,
                    logs - last_logs,
                    h.value_at_quantile(0.5) as f64 / 1e3,
                    h.value_at_quantile(0.99) as f64 / 1e3,
                );
                (last_ok, last_logs) = (ok, logs);
            }
        })
    };
    for w in workers {
        let _ = w.await;
    }
    progress.abort();
    let secs = start
        .elapsed()
        .as_secs_f64()
        .min(args.duration.as_secs_f64().max(1e-9))
        .max(1e-9);
    let h = total.lock().clone();
    let ok = counters.ok.load(Ordering::Relaxed);
    let logs = counters.logs.load(Ordering::Relaxed);
    println!("---");
    println!(
        "requests: {ok} accepted ({success}) in {secs:.1}s = {:.0} req/s",
        ok as f64 / secs
    );
    println!(
        "logs:     {logs} accepted = {:.0} logs/s",
        logs as f64 / secs
    );
    for (label, n) in statuses.lock().iter() {
        println!("refused:  {n} × {label}");
    }
    if from_files {
        println!(
            "files:    {logs} of {file_logs} logs acknowledged{}",
            if logs == file_logs {
                ""
            } else {
                " (the run ended before the rest)"
            }
        );
    }
    println!(
        "latency of {success}s (ms): p50 {:.2}  p90 {:.2}  p99 {:.2}  p999 {:.2}  max {:.2}",
        h.value_at_quantile(0.5) as f64 / 1e3,
        h.value_at_quantile(0.9) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
        h.value_at_quantile(0.999) as f64 / 1e3,
        h.max() as f64 / 1e3,
    );
    if let Some(b) = &book {
        // Give the last events time to arrive.
        tokio::time::sleep(Duration::from_secs(2)).await;
        b.report(args.tails);
    }
    let r = refusals.lock();
    if !r.is_empty() {
        println!(
            "latency of refusals (429/503, ms): p50 {:.2}  p99 {:.2}  max {:.2}",
            r.value_at_quantile(0.5) as f64 / 1e3,
            r.value_at_quantile(0.99) as f64 / 1e3,
            r.max() as f64 / 1e3,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("3").is_err(), "a unit is required");
        assert!(parse_duration("8d").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn files_become_batches_that_carry_every_line_once_in_order() {
        let dir = std::env::temp_dir().join(format!("loadgen-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.ndjson"), dir.join("b.ndjson"));
        let line = |i: usize| format!("{{\"message\":\"m{i}\",\"level\":\"info\"}}");
        let text = |r: std::ops::Range<usize>| r.map(|i| line(i) + "\n").collect::<String>();
        std::fs::write(&a, text(0..5) + "\n  \n").unwrap();
        std::fs::write(&b, text(5..7)).unwrap();
        let (bodies, counts, avg) = file_bodies(&[a, b], 3).unwrap();
        assert_eq!(counts, vec![3, 3, 1]);
        assert_eq!(avg, line(0).len());
        let sent: Vec<String> = bodies
            .iter()
            .flat_map(|b| {
                let v: serde_json::Value = serde_json::from_slice(b).unwrap();
                v["logs"].as_array().unwrap().clone()
            })
            .map(|l| l["message"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(sent, (0..7).map(|i| format!("m{i}")).collect::<Vec<_>>());
        let empty = dir.join("empty.ndjson");
        std::fs::write(&empty, "\n").unwrap();
        assert!(file_bodies(&[empty], 3).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
