//! Login throttling: failed attempts per email and per source address in a sliding window,
//! each kind of subject with its own limit (an address is shared by every account signing in
//! from one office, proxy or test runner, so it gets a larger allowance than one email).
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
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginThrottle {
    pub fn new(window: Duration) -> LoginThrottle {
        LoginThrottle {
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` when any of `subjects` (e.g. `email:x`, `addr:y`, each with
    /// the failures it is allowed) has used up its failures in the window.
    pub fn check(&self, subjects: &[(&str, usize)], now: Instant) -> Result<(), u64> {
        let mut map = self.failures.lock();
        let mut wait = None::<Duration>;
        for &(s, max_failures) in subjects {
            if let Some(q) = map.get_mut(s) {
                while q
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    q.pop_front();
                }
                if q.len() >= max_failures {
                    // Unblocked when enough of the oldest failures leave the window.
                    let idx = q.len() - max_failures;
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

    pub fn record_failure(&self, subjects: &[(&str, usize)], now: Instant) {
        let mut map = self.failures.lock();
        if map.len() >= MAX_TRACKED {
            let window = self.window;
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        for &(s, max_failures) in subjects {
            let q = map.entry(s.to_owned()).or_default();
            q.push_back(now);
            // Older failures than the limit needs are never consulted again.
            while q.len() > max_failures {
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
        let t = LoginThrottle::new(Duration::from_secs(60));
        let now = Instant::now();
        for _ in 0..3 {
            assert!(t.check(&[("email:a", 3)], now).is_ok());
            t.record_failure(&[("email:a", 3), ("addr:x", 3)], now);
        }
        assert_eq!(t.check(&[("email:a", 3)], now), Err(60));
        assert!(t.check(&[("addr:x", 3)], now).is_err());
        assert!(t.check(&[("email:b", 3)], now).is_ok());
        assert!(t
            .check(&[("email:a", 3)], now + Duration::from_secs(61))
            .is_ok());
        t.clear("email:a");
        assert!(t.check(&[("email:a", 3)], now).is_ok());
    }

    #[test]
    fn each_subject_is_held_to_its_own_limit() {
        let t = LoginThrottle::new(Duration::from_secs(60));
        let now = Instant::now();
        // Failures for three emails from one address: each email is under its limit of 3,
        // the address under its 10.
        for e in ["email:a", "email:b", "email:c"] {
            for _ in 0..2 {
                t.record_failure(&[(e, 3), ("addr:x", 10)], now);
            }
        }
        assert!(t.check(&[("email:d", 3), ("addr:x", 10)], now).is_ok());
        for _ in 0..4 {
            t.record_failure(&[("email:d", 3), ("addr:x", 10)], now);
        }
        // The address has now failed 10 times: every email from it waits.
        assert!(t.check(&[("email:e", 3), ("addr:x", 10)], now).is_err());
        assert!(t.check(&[("email:e", 3), ("addr:y", 10)], now).is_ok());
    }
}
