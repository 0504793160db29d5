//! Login throttling: failed attempts per email and per source address in a sliding window.
//!
//! Kept in memory: a restart forgets failures, which costs an attacker a restart per window,
//! not a bypass. The map is pruned periodically and capped, so a flood of distinct emails
//! cannot grow it without bound.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Distinct emails and addresses tracked at most; beyond it the oldest-looking entries go.
const MAX_TRACKED: usize = 100_000;

pub struct LoginThrottle {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginThrottle {
    pub fn new(max_failures: usize, window: Duration) -> LoginThrottle {
        LoginThrottle {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` when any of `subjects` (e.g. `email:x`, `addr:y`) has used up
    /// its failures in the window.
    pub fn check(&self, subjects: &[&str], now: Instant) -> Result<(), u64> {
        let mut map = self.failures.lock();
        let mut wait = None::<Duration>;
        for s in subjects {
            if let Some(q) = map.get_mut(*s) {
                while q
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    q.pop_front();
                }
                if q.len() >= self.max_failures {
                    // Unblocked when enough of the oldest failures leave the window.
                    let idx = q.len() - self.max_failures;
                    let until = q[idx] + self.window;
                    let w = until.saturating_duration_since(now);
                    wait = Some(wait.map_or(w, |x| x.max(w)));
                }
            }
        }
        match wait {
            Some(w) => Err((w.as_secs() + u64::from(w.subsec_nanos() > 0)).max(1)),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, subjects: &[&str], now: Instant) {
        let mut map = self.failures.lock();
        if map.len() >= MAX_TRACKED {
            let window = self.window;
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        for s in subjects {
            let q = map.entry((*s).to_owned()).or_default();
            q.push_back(now);
            // Older failures than the limit needs are never consulted again.
            while q.len() > self.max_failures {
                q.pop_front();
            }
        }
    }

    /// Forgets the failures of one subject (an email after a successful login).
    pub fn clear(&self, subject: &str) {
        self.failures.lock().remove(subject);
    }

    /// Drops subjects whose failures all left the window.
    pub fn prune(&self, now: Instant) {
        let window = self.window;
        self.failures
            .lock()
            .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_passes() {
        let t = LoginThrottle::new(3, Duration::from_secs(60));
        let now = Instant::now();
        for _ in 0..3 {
            assert!(t.check(&["email:a"], now).is_ok());
            t.record_failure(&["email:a", "addr:x"], now);
        }
        assert_eq!(t.check(&["email:a"], now), Err(60));
        assert!(t.check(&["addr:x"], now).is_err());
        assert!(t.check(&["email:b"], now).is_ok());
        assert!(t.check(&["email:a"], now + Duration::from_secs(61)).is_ok());
        t.clear("email:a");
        assert!(t.check(&["email:a"], now).is_ok());
    }
}
