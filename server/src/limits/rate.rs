//! Per-project request rate limits over sliding windows: the last minute (60 one-second
//! buckets) and the last hour (60 one-minute buckets).
//!
//! Buckets keep memory constant per project whatever the limit, at the cost of rounding a
//! window's edge to its bucket size (at most one second for the minute window).

use std::collections::HashMap;

use parking_lot::Mutex;

const BUCKETS: usize = 60;

/// A sliding window of `BUCKETS` buckets of `len` seconds each.
#[derive(Clone)]
struct Window {
    len: i64,
    /// The bucket number (time / len) each slot currently counts, and its count.
    stamps: [i64; BUCKETS],
    counts: [u64; BUCKETS],
}

impl Window {
    fn new(len: i64) -> Window {
        Window {
            len,
            stamps: [i64::MIN; BUCKETS],
            counts: [0; BUCKETS],
        }
    }

    fn live(&self, now: i64) -> impl Iterator<Item = (i64, u64)> + '_ {
        let cur = now.div_euclid(self.len);
        (0..BUCKETS)
            .map(|i| (self.stamps[i], self.counts[i]))
            .filter(move |(s, c)| *c > 0 && *s > cur - BUCKETS as i64 && *s <= cur)
    }

    fn used(&self, now: i64) -> u64 {
        self.live(now).map(|(_, c)| c).sum()
    }

    fn add(&mut self, now: i64) {
        let cur = now.div_euclid(self.len);
        let slot = cur.rem_euclid(BUCKETS as i64) as usize;
        if self.stamps[slot] != cur {
            self.stamps[slot] = cur;
            self.counts[slot] = 0;
        }
        self.counts[slot] += 1;
    }

    /// Seconds from `now` until bucket `stamp` leaves the window.
    fn expiry(&self, stamp: i64, now: i64) -> u64 {
        ((stamp + BUCKETS as i64) * self.len - now).max(1) as u64
    }

    /// Seconds until at most `limit - 1` requests remain in the window (room for one more).
    fn wait_for_room(&self, now: i64, limit: u64) -> u64 {
        let used = self.used(now);
        if used < limit {
            return 0;
        }
        let mut must_leave = used - limit + 1;
        let mut live: Vec<(i64, u64)> = self.live(now).collect();
        live.sort_unstable();
        for (stamp, c) in live {
            if c >= must_leave {
                return self.expiry(stamp, now);
            }
            must_leave -= c;
        }
        1
    }

    /// Seconds until every request now counted has left the window.
    fn full_reset(&self, now: i64) -> u64 {
        self.live(now)
            .map(|(s, _)| self.expiry(s, now))
            .max()
            .unwrap_or(0)
    }
}

struct Windows {
    minute: Window,
    hour: Window,
}

/// The outcome of a check, and the figures for the `X-RateLimit-*` headers: those of the
/// window closer to its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateStatus {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the window's current requests have all left it.
    pub reset: u64,
    /// Seconds to wait before a retry can succeed (0 when allowed).
    pub retry_after: u64,
}

/// The rate limiter of every project.
#[derive(Default)]
pub struct RateLimiter {
    projects: Mutex<HashMap<u64, Windows>>,
}

impl RateLimiter {
    /// Counts one request for `project` at `now` (Unix seconds) if both windows have room.
    pub fn check(&self, project: u64, per_minute: u64, per_hour: u64, now: i64) -> RateStatus {
        let mut map = self.projects.lock();
        let w = map.entry(project).or_insert_with(|| Windows {
            minute: Window::new(1),
            hour: Window::new(60),
        });
        let wait = w
            .minute
            .wait_for_room(now, per_minute)
            .max(w.hour.wait_for_room(now, per_hour));
        let allowed = wait == 0;
        if allowed {
            w.minute.add(now);
            w.hour.add(now);
        }
        let m = (
            per_minute,
            per_minute.saturating_sub(w.minute.used(now)),
            &w.minute,
        );
        let h = (per_hour, per_hour.saturating_sub(w.hour.used(now)), &w.hour);
        let (limit, remaining, win) = if h.1 < m.1 { h } else { m };
        RateStatus {
            allowed,
            limit,
            remaining,
            reset: win.full_reset(now),
            retry_after: wait,
        }
    }

    /// Forgets a deleted project.
    pub fn forget(&self, project: u64) {
        self.projects.lock().remove(&project);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minute_limit_refuses_then_recovers() {
        let r = RateLimiter::default();
        let t = 1_000_000;
        for i in 0..3 {
            let s = r.check(1, 3, 100, t);
            assert!(s.allowed);
            assert_eq!(s.remaining, 2 - i);
        }
        let s = r.check(1, 3, 100, t + 10);
        assert!(!s.allowed);
        assert_eq!(s.retry_after, 50);
        assert_eq!(s.remaining, 0);
        assert!(r.check(2, 3, 100, t + 10).allowed, "projects are separate");
        assert!(r.check(1, 3, 100, t + 60).allowed);
    }

    #[test]
    fn hour_limit_applies_across_minutes() {
        let r = RateLimiter::default();
        let t = 3_600 * 1_000;
        assert!(r.check(1, 10, 2, t).allowed);
        assert!(r.check(1, 10, 2, t + 120).allowed);
        let s = r.check(1, 10, 2, t + 240);
        assert!(!s.allowed);
        assert_eq!(s.limit, 2);
        assert_eq!(s.retry_after, 3_600 - 240);
    }
}
