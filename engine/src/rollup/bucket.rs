//! Bucket sizes and the time windows a metrics answer covers.
//!
//! Every window is aligned in UTC (Unix time has no leap seconds, so aligning microseconds
//! since the epoch to a multiple of the bucket size is aligning to UTC minutes, hours and
//! days).

use crate::error::{Invalid, Result};

pub const MINUTE_US: i64 = 60_000_000;
pub const HOUR_US: i64 = 60 * MINUTE_US;
pub const DAY_US: i64 = 24 * HOUR_US;

/// Most buckets one answer may hold (for example 1-minute buckets over 13 days); a request
/// for more is refused as invalid rather than answered slowly.
pub const MAX_BUCKETS: usize = 20_000;

/// The width of the buckets of a time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// `1m`
    Minute,
    /// `5m`
    FiveMinutes,
    /// `15m`
    FifteenMinutes,
    /// `1h`
    Hour,
    /// `1d`
    Day,
}

impl Bucket {
    pub const ALL: [Bucket; 5] = [
        Bucket::Minute,
        Bucket::FiveMinutes,
        Bucket::FifteenMinutes,
        Bucket::Hour,
        Bucket::Day,
    ];

    /// The width in microseconds.
    pub fn micros(self) -> i64 {
        match self {
            Bucket::Minute => MINUTE_US,
            Bucket::FiveMinutes => 5 * MINUTE_US,
            Bucket::FifteenMinutes => 15 * MINUTE_US,
            Bucket::Hour => HOUR_US,
            Bucket::Day => DAY_US,
        }
    }

    /// The API's name: `1m`, `5m`, `15m`, `1h` or `1d`.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Minute => "1m",
            Bucket::FiveMinutes => "5m",
            Bucket::FifteenMinutes => "15m",
            Bucket::Hour => "1h",
            Bucket::Day => "1d",
        }
    }

    /// Parses the API's name; anything else is `None`.
    pub fn parse(s: &str) -> Option<Bucket> {
        Bucket::ALL.into_iter().find(|b| b.as_str() == s)
    }
}

impl std::fmt::Display for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The UTC hour (hours since the epoch) a timestamp falls in.
pub fn hour_of(ts: i64) -> i64 {
    ts.div_euclid(HOUR_US)
}

/// The minute within its hour (0–59) a timestamp falls in.
pub fn minute_in_hour(ts: i64) -> usize {
    (ts.rem_euclid(HOUR_US) / MINUTE_US) as usize
}

/// The window `[start, end)` in µs that an answer for "the last `hours` hours before `now`"
/// covers with buckets of `size` µs: from the start of the bucket holding `now - hours`
/// through the end of the bucket holding `now`. So 24 hours in 1-hour buckets is 25 buckets,
/// the oldest and the newest partly outside `[now - hours, now]`; every log with a timestamp
/// in the window is counted, even one stamped a little after `now`.
pub fn window(now_us: i64, hours: u32, size: i64) -> Result<(i64, i64)> {
    if hours == 0 {
        return Err(Invalid::ZeroHours.into());
    }
    let span = i64::from(hours)
        .checked_mul(HOUR_US)
        .ok_or(Invalid::Hours(hours))?;
    let out = || Invalid::Window;
    let from = now_us.checked_sub(span).ok_or_else(out)?;
    let start = from.div_euclid(size).checked_mul(size).ok_or_else(out)?;
    let end = now_us
        .div_euclid(size)
        .checked_add(1)
        .and_then(|b| b.checked_mul(size))
        .ok_or_else(out)?;
    Ok((start, end))
}

/// [`window`] split into buckets, refusing more than [`MAX_BUCKETS`].
pub fn bucket_window(now_us: i64, hours: u32, bucket: Bucket) -> Result<(i64, i64, usize)> {
    let size = bucket.micros();
    let (start, end) = window(now_us, hours, size)?;
    let n = ((end - start) / size) as usize;
    if n > MAX_BUCKETS {
        return Err(Invalid::TooManyBuckets {
            hours,
            bucket,
            buckets: n,
            max: MAX_BUCKETS,
        }
        .into());
    }
    Ok((start, end, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_round_trip() {
        for b in Bucket::ALL {
            assert_eq!(Bucket::parse(b.as_str()), Some(b));
        }
        assert_eq!(Bucket::parse("2m"), None);
    }

    #[test]
    fn windows_are_aligned_and_cover_now() {
        let now = 10 * DAY_US + 3 * HOUR_US + 7 * MINUTE_US + 5;
        let (s, e) = window(now, 24, HOUR_US).unwrap();
        assert_eq!(s, 9 * DAY_US + 3 * HOUR_US);
        assert_eq!(e, 10 * DAY_US + 4 * HOUR_US);
        let (s, e, n) = bucket_window(now, 1, Bucket::FiveMinutes).unwrap();
        assert_eq!(s, 10 * DAY_US + 2 * HOUR_US + 5 * MINUTE_US);
        assert_eq!(e, 10 * DAY_US + 3 * HOUR_US + 10 * MINUTE_US);
        assert_eq!(n, 13);
        let (s, _, n) = bucket_window(now, 48, Bucket::Day).unwrap();
        assert_eq!((s, n), (8 * DAY_US, 3));
    }

    #[test]
    fn negative_times_align_down() {
        assert_eq!(hour_of(-1), -1);
        assert_eq!(minute_in_hour(-1), 59);
        let (s, e) = window(-1, 1, HOUR_US).unwrap();
        assert_eq!((s, e), (-2 * HOUR_US, 0));
    }

    #[test]
    fn absurd_windows_are_refused() {
        assert!(window(0, 0, HOUR_US).is_err());
        assert!(window(i64::MIN + 5, 1, HOUR_US).is_err());
        assert!(bucket_window(0, 24 * 365, Bucket::Minute).is_err());
    }
}
