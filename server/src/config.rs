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
    /// Failed logins allowed per email and per source address within `login_window`.
    pub login_max_failures: usize,
    pub login_window: Duration,
    /// How often retention drops expired segments.
    pub retention_interval: Duration,
    /// How long shutdown waits for in-flight requests before closing the engine anyway.
    pub shutdown_grace: Duration,
    /// Defaults for new projects.
    pub project_defaults: ProjectDefaults,
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
            login_max_failures: 10,
            login_window: Duration::from_secs(15 * 60),
            retention_interval: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
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
        if self.login_max_failures == 0 {
            return Err("--login-max-failures must be at least 1".into());
        }
        Ok(())
    }
}
