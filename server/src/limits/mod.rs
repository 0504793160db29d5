//! Per-project limits: request rates, daily quotas, and admission of ingest under pressure.
//! (Queue depth is the engine's to enforce; the server passes each project's limit with
//! every append, and asks the engine before reading a body.)

pub mod admission;
pub mod quota;
pub mod rate;

pub use admission::Admission;
pub use quota::UsageBook;
pub use rate::{RateLimiter, RateStatus};

/// The UTC day number (days since the Unix epoch) of a time in µs.
pub fn day_of(micros: i64) -> i64 {
    micros.div_euclid(86_400_000_000)
}

/// Seconds from `micros` until the next UTC midnight, when daily quotas reset.
pub fn secs_to_midnight(micros: i64) -> u64 {
    let next = (day_of(micros) + 1) * 86_400_000_000;
    ((next - micros) as u64).div_ceil(1_000_000).max(1)
}
