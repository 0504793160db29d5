//! `ledger`: parses flags and environment, sets up logging and signals, and runs the server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ledger_engine::FsyncPolicy;
use ledger_server::config::{
    Role, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES_IN_FLIGHT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_PROJECTS_PER_ACCOUNT, DEFAULT_PBKDF2_ITERATIONS,
    MIN_PBKDF2_ITERATIONS,
};
use ledger_server::trace::LogFormat;
use ledger_server::Config;

/// Ledger: a multi-tenant log platform in one binary.
#[derive(Parser)]
#[command(name = "ledger", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default when no command is given).
    Serve(ServeArgs),
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Directory for logs, metadata and the server secret (created 0700 if missing).
    #[arg(long, env = "LEDGER_DATA_DIR", default_value = "./ledger-data")]
    data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (printed as `listening on <addr>`).
    #[arg(long, env = "LEDGER_LISTEN", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// WAL durability: `always` (group commit: nothing acknowledged is lost, even on power
    /// loss), `interval:<ms>` (a machine crash may lose the last interval), or `never`
    /// (a machine crash may lose anything not yet written back; process crashes lose nothing).
    #[arg(long, env = "LEDGER_FSYNC", default_value = "always", value_parser = parse_fsync)]
    fsync: FsyncPolicy,
    /// PBKDF2-HMAC-SHA256 iterations for new password hashes (minimum 10000).
    #[arg(long, env = "LEDGER_PBKDF2_ITERATIONS", default_value_t = DEFAULT_PBKDF2_ITERATIONS)]
    pbkdf2_iterations: u32,
    /// Largest request body in bytes, before and after decompression.
    #[arg(long, env = "LEDGER_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Most bytes of request bodies held in memory at once, all requests together (raw as
    /// they arrive, and decoded); past it, 503 `unavailable`. At least twice
    /// --max-body-bytes.
    #[arg(
        long,
        env = "LEDGER_MAX_BODY_BYTES_IN_FLIGHT",
        default_value_t = DEFAULT_MAX_BODY_BYTES_IN_FLIGHT
    )]
    max_body_bytes_in_flight: usize,
    /// Time a client has to send a request's head (request line and headers), in ms, from
    /// its first byte or the end of the previous answer; slower connections (and idle
    /// keep-alive ones) are closed.
    #[arg(long, env = "LEDGER_HEADER_TIMEOUT_MS", default_value_t = 30_000)]
    header_timeout_ms: u64,
    /// Time a client has to send a whole request body, in ms; slower is 408.
    #[arg(long, env = "LEDGER_BODY_TIMEOUT_MS", default_value_t = 60_000)]
    body_timeout_ms: u64,
    /// Largest request head (request line plus headers) in bytes; larger is 431.
    #[arg(long, env = "LEDGER_MAX_HEADER_BYTES", default_value_t = DEFAULT_MAX_HEADER_BYTES)]
    max_header_bytes: usize,
    /// Most client connections open at once; past it, new ones wait to be accepted.
    #[arg(long, env = "LEDGER_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Most projects one account may own; creating one more is 403 `forbidden`.
    #[arg(
        long,
        env = "LEDGER_MAX_PROJECTS_PER_ACCOUNT",
        default_value_t = DEFAULT_MAX_PROJECTS_PER_ACCOUNT
    )]
    max_projects_per_account: usize,
    /// How long an ingest request that finds the server under pressure (logs waiting to be
    /// sealed or indexed, or its project's queue full) is held, its body unread, waiting for
    /// capacity before it is answered 503 backpressure, in ms; 0 refuses at once.
    #[arg(long, env = "LEDGER_INGEST_MAX_WAIT_MS", default_value_t = 5_000)]
    ingest_max_wait_ms: u64,
    /// Most ingest requests held waiting for capacity at once; past it, 503 at once.
    #[arg(long, env = "LEDGER_INGEST_MAX_WAITING", default_value_t = 1_024)]
    ingest_max_waiting: usize,
    /// Most ingest requests decoding, validating and appending at once; the others wait
    /// their turn in arrival order, within --ingest-max-wait-ms. Default: twice the cores.
    #[arg(long, env = "LEDGER_INGEST_TURNS")]
    ingest_turns: Option<usize>,
    /// How long one live-tail stream lasts before the server ends it, in seconds (clients
    /// reconnect with Last-Event-ID and miss nothing).
    #[arg(long, env = "LEDGER_TAIL_MAX_AGE_SECS", default_value_t = 3_600)]
    tail_max_age_secs: u64,
    /// How often a quiet live-tail stream gets a `: keep-alive` comment, in seconds.
    #[arg(long, env = "LEDGER_TAIL_KEEPALIVE_SECS", default_value_t = 15)]
    tail_keepalive_secs: u64,
    /// Failed logins allowed per email within the login window; past it that email's logins
    /// answer 429 until the window passes.
    #[arg(long, env = "LEDGER_LOGIN_MAX_FAILURES", default_value_t = 10)]
    login_max_failures: usize,
    /// Failed logins allowed per client address (any emails) within the login window; past
    /// it every login from that address answers 429 until the window passes.
    #[arg(
        long,
        env = "LEDGER_LOGIN_MAX_FAILURES_PER_ADDRESS",
        default_value_t = 100
    )]
    login_max_failures_per_address: usize,
    /// The login throttling window, in seconds.
    #[arg(long, env = "LEDGER_LOGIN_WINDOW_SECS", default_value_t = 900)]
    login_window_secs: u64,
    /// How often expired segments are dropped, in seconds.
    #[arg(long, env = "LEDGER_RETENTION_INTERVAL_SECS", default_value_t = 60)]
    retention_interval_secs: u64,
    /// Memory for logs waiting to be sealed, all projects together, in MiB; past it, ingest
    /// answers 503 backpressure.
    #[arg(long, env = "LEDGER_MEMTABLE_LIMIT_MB", default_value_t = 256)]
    memtable_limit_mb: usize,
    /// A project's logs are sealed into a segment at this many rows...
    #[arg(long, env = "LEDGER_SEAL_ROWS", default_value_t = 50_000)]
    seal_rows: usize,
    /// ...or when the oldest unsealed one is this many seconds old.
    #[arg(long, env = "LEDGER_SEAL_AGE_SECS", default_value_t = 60)]
    seal_age_secs: u64,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish, in seconds.
    #[arg(long, env = "LEDGER_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    shutdown_grace_secs: u64,
    /// How log lines are written on stderr: json (one object per line) or text. The level
    /// comes from LEDGER_LOG (e.g. `info`, `debug`, `ledger_server=debug`).
    #[arg(long, env = "LEDGER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
    /// Export Ledger's own spans (request, append, fsync group, seal, search) over
    /// OTLP/HTTP to this collector, e.g. http://127.0.0.1:4318 (plain HTTP). Off when unset.
    #[arg(long, env = "LEDGER_OTEL_ENDPOINT")]
    otel_endpoint: Option<String>,
    /// Also keep sealed data in an S3-compatible bucket: s3://bucket/prefix. Credentials,
    /// region and endpoint come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
    /// AWS_ENDPOINT_URL and AWS_ALLOW_HTTP. An empty data directory is rebuilt from the
    /// bucket at start. Off when unset: everything stays local.
    #[arg(long, env = "LEDGER_OBJECT_STORE")]
    object_store: Option<String>,
    /// How often newly sealed data is uploaded to the bucket, in seconds.
    #[arg(long, env = "LEDGER_UPLOAD_INTERVAL_SECS", default_value_t = 5)]
    upload_interval_secs: u64,
    /// Sealed data that may wait for an unreachable bucket, in MiB; past it, ingest answers
    /// 503 backpressure until uploads catch up. 0: no limit.
    #[arg(long, env = "LEDGER_UPLOAD_BACKLOG_MB", default_value_t = 4_096)]
    upload_backlog_mb: u64,
    /// writer: takes writes (and, with --object-store, uploads what it seals). reader:
    /// serves every read route for all projects from --object-store, following the writer's
    /// newest manifest; answers writes with 403 naming the role. Any number of readers may
    /// share a bucket; its data directory is only a cache.
    #[arg(long, env = "LEDGER_ROLE", value_enum, default_value_t = Role::Writer)]
    role: Role,
    /// Local disk for segment files, in MiB, with --object-store: past it the least
    /// recently read segments already in the bucket are deleted locally and read from the
    /// bucket by byte range. 0: no limit.
    #[arg(long, env = "LEDGER_CACHE_SIZE_MB", default_value_t = 10_240)]
    cache_size_mb: u64,
    /// How often a reader looks for a newer manifest in the bucket, in seconds.
    #[arg(long, env = "LEDGER_FOLLOW_INTERVAL_SECS", default_value_t = 2)]
    follow_interval_secs: u64,
}

fn parse_fsync(s: &str) -> Result<FsyncPolicy, String> {
    s.parse()
}

impl ServeArgs {
    fn config(&self) -> Config {
        let mut c = Config::new(&self.data_dir).with_fsync(self.fsync);
        c.pbkdf2_iterations = self.pbkdf2_iterations;
        c.max_body_bytes = self.max_body_bytes;
        c.max_body_bytes_in_flight = self.max_body_bytes_in_flight;
        c.header_timeout = Duration::from_millis(self.header_timeout_ms);
        c.body_timeout = Duration::from_millis(self.body_timeout_ms);
        c.max_header_bytes = self.max_header_bytes;
        c.max_connections = self.max_connections;
        c.max_projects_per_account = self.max_projects_per_account;
        c.ingest_max_wait = Duration::from_millis(self.ingest_max_wait_ms);
        c.ingest_max_waiting = self.ingest_max_waiting;
        if let Some(n) = self.ingest_turns {
            c.ingest_turns = n.max(1);
        }
        c.tail_max_age = Duration::from_secs(self.tail_max_age_secs.max(1));
        c.tail_keepalive = Duration::from_secs(self.tail_keepalive_secs.max(1));
        c.login_max_failures = self.login_max_failures;
        c.login_max_failures_per_address = self.login_max_failures_per_address;
        c.login_window = Duration::from_secs(self.login_window_secs);
        c.retention_interval = Duration::from_secs(self.retention_interval_secs.max(1));
        c.shutdown_grace = Duration::from_secs(self.shutdown_grace_secs);
        c.engine.memtable_limit_bytes = self.memtable_limit_mb << 20;
        c.engine.seal_rows = self.seal_rows.max(1);
        c.engine.seal_age = Duration::from_secs(self.seal_age_secs.max(1));
        c.role = self.role;
        c.object_store =
            self.object_store
                .clone()
                .map(|url| ledger_server::config::ObjectStoreConfig {
                    url,
                    upload_interval: Duration::from_secs(self.upload_interval_secs.max(1)),
                    follow_interval: Duration::from_secs(self.follow_interval_secs.max(1)),
                    backlog_budget: self.upload_backlog_mb << 20,
                    cache_bytes: self.cache_size_mb << 20,
                });
        c
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("signal received: stopping");
}

/// mimalloc instead of glibc's malloc: under ingest glibc spent a quarter of the CPU in
/// malloc and free (arena locks, consolidation), and it rarely gives a burst's memory back
/// without a `malloc_trim` timer. mimalloc's per-thread heaps are contention-free and it
/// returns freed pages to the OS by itself (BENCHMARKS.md, "Memory").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(a)) => a,
        None => cli.serve,
    };
    // Outside the async runtime: the span exporter's HTTP client is a blocking one, made and
    // dropped (flushing what is queued) on this thread.
    let _spans = ledger_server::trace::init(args.log_format, args.otel_endpoint.as_deref())?;
    // Threads that answer requests take short scheduler slices, so a request finds a core
    // quickly while indexing and sealing keep both busy (ledger_engine::shorten_slice).
    ledger_engine::shorten_slice();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(|| {
            ledger_engine::shorten_slice();
        })
        .build()
        .context("starting the async runtime")?
        .block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Everything the server creates is private to its user: files 0600, directories 0700,
    // also where a library (tantivy's index files and lock files) creates them without an
    // explicit mode.
    // SAFETY: umask only swaps the process's file-creation mask; no memory is involved.
    unsafe {
        libc::umask(0o077);
    }
    if args.pbkdf2_iterations < MIN_PBKDF2_ITERATIONS {
        anyhow::bail!("--pbkdf2-iterations must be at least {MIN_PBKDF2_ITERATIONS}");
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    ledger_server::run(listener, args.config(), shutdown_signal()).await
}
