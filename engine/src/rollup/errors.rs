//! Top errors: the error groups (by stored `error_fingerprint`) with the most logs in a window.

use super::groups::{Agg, Groups};
use crate::fingerprint;
use crate::model::{LogId, NewLog};

/// One error group's logs in a window: what `/metrics/top-errors` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopError {
    /// The stored `error_fingerprint` the logs share.
    pub fingerprint: String,
    /// The error type, trimmed (empty when the logs carry none).
    pub error_type: String,
    /// The message with its variable parts masked, as the fingerprint groups it (for
    /// example `user <num> not found`); the sample log has the raw text.
    pub error_message: String,
    /// Logs of the group in the window.
    pub count: u64,
    /// The earliest of those logs' timestamps (µs).
    pub first_seen_us: i64,
    /// The latest of those logs' timestamps (µs).
    pub last_seen_us: i64,
    /// The latest of those logs.
    pub sample_log_id: LogId,
}

/// An error group's name, taken from the first log the table counts for it. Every log of a
/// fingerprint has the same trimmed type and masked message (both are hashed into it).
///
/// Titles are held for as long as their group is counted, so they are cut to
/// [`MAX_TITLE_TYPE_BYTES`] and [`MAX_TITLE_MESSAGE_BYTES`]: the memory is bounded by the
/// server whatever a client sends (the sample log keeps the whole text).
pub struct ErrorTitle {
    pub error_type: Box<str>,
    pub message: Box<str>,
}

/// The longest error type an error group keeps as its title.
pub const MAX_TITLE_TYPE_BYTES: usize = 256;
/// The longest masked message an error group keeps as its title.
pub const MAX_TITLE_MESSAGE_BYTES: usize = 1024;

impl ErrorTitle {
    pub fn of(log: &NewLog) -> ErrorTitle {
        let (ty, msg) = fingerprint::title(log).unwrap_or(("", String::new()));
        ErrorTitle {
            error_type: super::cut_at_char(ty, MAX_TITLE_TYPE_BYTES).into(),
            message: super::cut_at_char(&msg, MAX_TITLE_MESSAGE_BYTES).into(),
        }
    }
}

/// The `limit` groups with the most logs in hours `[start_hour, end_hour)`, most first
/// (ties: latest log first, then fingerprint).
pub fn top(
    groups: &Groups<ErrorTitle>,
    start_hour: i64,
    end_hour: i64,
    limit: usize,
) -> Vec<TopError> {
    let mut found: Vec<(Agg, &str, &ErrorTitle)> = groups
        .entries()
        .filter_map(|e| {
            let a = e.window(start_hour, end_hour);
            (a.count > 0).then_some((a, &*e.key, &e.meta))
        })
        .collect();
    let order = |a: &(Agg, &str, &ErrorTitle), b: &(Agg, &str, &ErrorTitle)| {
        b.0.count
            .cmp(&a.0.count)
            .then_with(|| b.0.last.cmp(&a.0.last))
            .then_with(|| a.1.cmp(b.1))
    };
    if found.len() > limit && limit > 0 {
        found.select_nth_unstable_by(limit - 1, order);
        found.truncate(limit);
    }
    found.sort_unstable_by(order);
    found.truncate(limit);
    found
        .into_iter()
        .map(|(a, key, title)| TopError {
            fingerprint: key.to_string(),
            error_type: title.error_type.to_string(),
            error_message: title.message.to_string(),
            count: a.count,
            first_seen_us: a.first_ts,
            last_seen_us: a.last.timestamp,
            sample_log_id: a.last,
        })
        .collect()
}
