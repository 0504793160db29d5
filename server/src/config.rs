//! Server configuration: everything `ledger serve` can be told, with the documented defaults.

use std::path::PathBuf;
use std::time::Duration;

use ledger_engine::{EngineConfig, FsyncPolicy};

/// PBKDF2 iterations below this are refused: fewer would make stolen hashes cheap to crack.
/// Low enough that tests can run quickly; production keeps the 600,000 default.
pub const MIN_PBKDF2_ITERATIONS: u32 = 10_000;

/// The default PBKDF2-HMAC-SHA256 iteration count (OWASP's 2023 recommendation).
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 600_000;

/// Default body limit, applied to the raw and to the decompressed size.
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 << 20;

/// Default time a client has to send a request's whole head (request line and headers),
/// counted from the connection's first byte or the end of the previous answer; an idle
/// keep-alive connection is closed after it too.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Default time a client has to send a whole request body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// Default limit on a request's head (request line plus headers); over it, 431.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 << 10;

/// The smallest `--max-header-bytes` accepted (hyper's read buffer cannot go lower).
pub const MIN_MAX_HEADER_BYTES: usize = 8 << 10;

/// Default cap on open client connections; past it, new ones wait in the listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Default budget for the bytes of request bodies held in memory, all requests together
/// (raw and decoded); past it, a request is refused with 503. Without it the only bound was
/// connections × body limit × 2: 10,000 × 20 MiB.
pub const DEFAULT_MAX_BODY_BYTES_IN_FLIGHT: usize = 256 << 20;

/// Default cap on the projects one account may own.
pub const DEFAULT_MAX_PROJECTS_PER_ACCOUNT: usize = 100;

/// How the server runs. `Config::new(data_dir)` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the engine, `meta.redb` and the server secret live.
    pub data_dir: PathBuf,
    /// The engine's tunables (fsync policy included).
    pub engine: EngineConfig,
    /// PBKDF2 iterations for new password hashes; existing hashes keep their own count.
    pub pbkdf2_iterations: u32,
    /// Largest request body, raw and after decompression.
    pub max_body_bytes: usize,
    /// Most bytes of request bodies held in memory at once, over all requests: raw bodies
    /// as they arrive and decoded ones as they inflate, until each request is answered.
    /// Past it, 503 `unavailable` (see `ingest::body::BodyBudget`).
    pub max_body_bytes_in_flight: usize,
    /// How long a client may take to send a request head (and how long a connection may
    /// sit idle between requests).
    pub header_timeout: Duration,
    /// How long a client may take to send a request body; slower is 408.
    pub body_timeout: Duration,
    /// Largest request head (request line plus headers) in bytes; larger is 431.
    pub max_header_bytes: usize,
    /// Most client connections open at once.
    pub max_connections: usize,
    /// Most projects one account may own; creating one more is 403.
    pub max_projects_per_account: usize,
    /// How long an ingest request that finds the engine under pressure is held, its body
    /// unread, waiting for capacity before it is answered 503 (zero: refused at once).
    pub ingest_max_wait: Duration,
    /// Most ingest requests held waiting at once; past it, 503 at once.
    pub ingest_max_waiting: usize,
    /// Most ingest requests decoding, validating and appending at once (the rest wait
    /// their turn, their bodies read, in arrival order).
    pub ingest_turns: usize,
    /// Live tails: how long one stream lasts before the server ends it (clients
    /// reconnect with `Last-Event-ID`), and how often a quiet one gets a keep-alive comment.
    pub tail_max_age: Duration,
    pub tail_keepalive: Duration,
    /// Failed logins allowed per email within `login_window`…
    pub login_max_failures: usize,
    /// …and per client address (every account signing in from one proxy, office or test
    /// runner shares it, so it allows more).
    pub login_max_failures_per_address: usize,
    pub login_window: Duration,
    /// How often retention drops expired segments.
    pub retention_interval: Duration,
    /// How long shutdown waits for in-flight requests before closing the engine anyway.
    pub shutdown_grace: Duration,
    /// Defaults for new projects.
    pub project_defaults: ProjectDefaults,
    /// Sealed data kept in an S3 bucket too (`--object-store`); `None`: local only.
    pub object_store: Option<ObjectStoreConfig>,
    /// A writer (the default) or a read-only node serving a bucket (`--role reader`).
    pub role: Role,
}

/// What a node does (`--role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Role {
    /// Takes writes; with `--object-store`, uploads what it seals.
    #[default]
    Writer,
    /// Serves every read route from the bucket's newest manifest, following it; refuses
    /// writes (403, naming the role).
    Reader,
}

/// Where and how sealed data goes to object storage (see `tiering`).
#[derive(Debug, Clone)]
pub struct ObjectStoreConfig {
    /// `s3://bucket/prefix`; credentials and endpoint come from the AWS variables.
    pub url: String,
    /// How often the uploader looks for newly sealed data (a writer), or the bucket for a
    /// newer manifest (a reader).
    pub upload_interval: Duration,
    pub follow_interval: Duration,
    /// Sealed bytes that may wait for the bucket before ingest is refused (503
    /// backpressure); 0: no limit.
    pub backlog_budget: u64,
    /// Bytes of segment files kept on the local disk; past it, the least recently read
    /// segments the bucket holds are evicted (and read from the bucket by byte range).
    /// 0: no limit.
    pub cache_bytes: u64,
}

/// The limits a project gets when its creator does not say otherwise.
#[derive(Debug, Clone, Copy)]
pub struct ProjectDefaults {
    pub retention_days: u64,
    pub daily_quota: u64,
    pub rate_limit_per_minute: u64,
    pub rate_limit_per_hour: u64,
    pub max_queue_depth: u64,
}

impl Default for ProjectDefaults {
    fn default() -> Self {
        ProjectDefaults {
            retention_days: 30,
            daily_quota: 1_000_000,
            rate_limit_per_minute: 1_000,
            rate_limit_per_hour: 50_000,
            max_queue_depth: 100_000,
        }
    }
}

impl Config {
    /// The defaults, with data kept in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            engine: EngineConfig::default(),
            pbkdf2_iterations: DEFAULT_PBKDF2_ITERATIONS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_body_bytes_in_flight: DEFAULT_MAX_BODY_BYTES_IN_FLIGHT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_projects_per_account: DEFAULT_MAX_PROJECTS_PER_ACCOUNT,
            ingest_max_wait: Duration::from_millis(5_000),
            ingest_max_waiting: 1_024,
            ingest_turns: std::thread::available_parallelism().map_or(2, |n| n.get() * 2),
            tail_max_age: Duration::from_secs(3_600),
            tail_keepalive: Duration::from_secs(15),
            login_max_failures: 10,
            login_max_failures_per_address: 100,
            login_window: Duration::from_secs(15 * 60),
            retention_interval: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            object_store: None,
            role: Role::Writer,
            project_defaults: ProjectDefaults::default(),
        }
    }

    /// Sets the WAL fsync policy.
    pub fn with_fsync(mut self, policy: FsyncPolicy) -> Config {
        self.engine.fsync = policy;
        self
    }

    /// Refuses settings that would make the server unsafe or unusable.
    pub fn check(&self) -> Result<(), String> {
        if self.pbkdf2_iterations < MIN_PBKDF2_ITERATIONS {
            return Err(format!(
                "--pbkdf2-iterations {} is below the minimum {MIN_PBKDF2_ITERATIONS}",
                self.pbkdf2_iterations
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err("--max-body-bytes must be at least 1024".into());
        }
        // A compressed body and its decoded bytes are held together: a budget below twice
        // the body limit would refuse the largest allowed body even on an idle server.
        if self.max_body_bytes_in_flight / 2 < self.max_body_bytes {
            return Err(format!(
                "--max-body-bytes-in-flight ({}) must be at least twice --max-body-bytes ({})",
                self.max_body_bytes_in_flight, self.max_body_bytes
            ));
        }
        if self.header_timeout.is_zero() || self.body_timeout.is_zero() {
            return Err("--header-timeout-ms and --body-timeout-ms must be at least 1".into());
        }
        if self.max_header_bytes < MIN_MAX_HEADER_BYTES {
            return Err(format!(
                "--max-header-bytes must be at least {MIN_MAX_HEADER_BYTES}"
            ));
        }
        if self.role == Role::Reader && self.object_store.is_none() {
            return Err("--role reader needs --object-store: a reader serves a bucket".into());
        }
        if self.max_connections == 0 {
            return Err("--max-connections must be at least 1".into());
        }
        if self.max_projects_per_account == 0 {
            return Err("--max-projects-per-account must be at least 1".into());
        }
        if self.login_max_failures == 0 {
            return Err("--login-max-failures must be at least 1".into());
        }
        if self.login_max_failures_per_address == 0 {
            return Err("--login-max-failures-per-address must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_their_own_check() {
        assert_eq!(Config::new("data").check(), Ok(()));
    }

    #[test]
    fn a_body_budget_below_twice_the_body_limit_is_refused() {
        // A compressed body and its decoded bytes are held together.
        let mut c = Config::new("data");
        c.max_body_bytes = 10 << 20;
        c.max_body_bytes_in_flight = 20 << 20;
        assert_eq!(c.check(), Ok(()));
        c.max_body_bytes_in_flight -= 1;
        let e = c.check().unwrap_err();
        assert!(e.contains("--max-body-bytes-in-flight"), "{e}");
    }

    #[test]
    fn an_account_must_be_allowed_a_project() {
        let mut c = Config::new("data");
        c.max_projects_per_account = 0;
        assert!(c.check().is_err());
    }
}
