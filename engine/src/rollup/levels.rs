//! Log counts by level in 1-minute buckets: the data behind the error-rate and volume series.
//!
//! A project's counts live in one chunk per UTC hour that holds any log: 60 minutes × 5
//! levels of `u32` plus the hour's totals (1,240 bytes), in a `BTreeMap` by hour so a window
//! is one range walk. Coarser buckets (5m, 15m) add up minutes; 1h and 1d buckets add up the
//! hours' totals, so a 30-day series in daily buckets reads 720 totals, not 43,200 minutes.
//! A minute's count per level is a `u32` (at most 4.29 billion logs of one level in one
//! minute in one project, far past what one node ingests).

use std::collections::BTreeMap;

use super::bucket::{hour_of, minute_in_hour, HOUR_US, MINUTE_US};
use crate::model::Level;

/// Counts of one hour.
struct HourChunk {
    minutes: [[u32; 5]; 60],
    total: [u64; 5],
}

impl HourChunk {
    fn new() -> HourChunk {
        HourChunk {
            minutes: [[0; 5]; 60],
            total: [0; 5],
        }
    }
    fn is_empty(&self) -> bool {
        self.total.iter().all(|&n| n == 0)
    }
}

/// Bytes one hour of counts takes.
pub const HOUR_CHUNK_BYTES: usize = std::mem::size_of::<HourChunk>();

/// A project's log counts per minute and level.
#[derive(Default)]
pub struct LevelCounts {
    /// Hour → slot in `chunks`.
    index: BTreeMap<i64, usize>,
    chunks: Vec<HourChunk>,
    free: Vec<usize>,
    /// The hour the last log went to, and its slot: most logs go to the same hour as the
    /// one before, and then counting one is two array increments.
    hot: Option<(i64, usize)>,
}

impl LevelCounts {
    /// Counts one log.
    #[inline]
    pub fn add(&mut self, ts: i64, level: Level) {
        let h = hour_of(ts);
        let slot = match self.hot {
            Some((hot, slot)) if hot == h => slot,
            _ => self.slot(h),
        };
        let c = &mut self.chunks[slot];
        c.minutes[minute_in_hour(ts)][level as usize] += 1;
        c.total[level as usize] += 1;
    }

    fn slot(&mut self, h: i64) -> usize {
        let slot = match self.index.get(&h) {
            Some(&s) => s,
            None => {
                let s = match self.free.pop() {
                    Some(s) => s,
                    None => {
                        self.chunks.push(HourChunk::new());
                        self.chunks.len() - 1
                    }
                };
                self.index.insert(h, s);
                s
            }
        };
        self.hot = Some((h, slot));
        slot
    }

    /// Uncounts one log that was counted before. Empty hours are freed.
    pub fn remove(&mut self, ts: i64, level: Level) {
        let h = hour_of(ts);
        let Some(&slot) = self.index.get(&h) else {
            debug_assert!(false, "removing a log that was never counted");
            return;
        };
        let c = &mut self.chunks[slot];
        let m = &mut c.minutes[minute_in_hour(ts)][level as usize];
        debug_assert!(*m > 0, "removing a log that was never counted");
        *m = m.saturating_sub(1);
        c.total[level as usize] = c.total[level as usize].saturating_sub(1);
        if c.is_empty() {
            // All counts are zero again, so the chunk can be reused as it is.
            self.index.remove(&h);
            self.free.push(slot);
            if self.hot.is_some_and(|(hot, _)| hot == h) {
                self.hot = None;
            }
        }
    }

    /// Counts by level in `n` buckets of `size` µs from `start` (aligned to `size`), oldest
    /// first, zero where no log is.
    pub fn series(&self, start: i64, size: i64, n: usize) -> Vec<[u64; 5]> {
        let mut out = vec![[0u64; 5]; n];
        if n == 0 {
            return out;
        }
        let end = start + size * n as i64;
        let (first, last) = (hour_of(start), hour_of(end - 1));
        for (&h, &slot) in self.index.range(first..=last) {
            let c = &self.chunks[slot];
            let hour_start = h * HOUR_US;
            if size >= HOUR_US {
                // Buckets of whole hours: an hour lies in exactly one bucket.
                let b = &mut out[((hour_start - start) / size) as usize];
                for (sum, n) in b.iter_mut().zip(c.total) {
                    *sum += n;
                }
                continue;
            }
            for (m, counts) in c.minutes.iter().enumerate() {
                let ts = hour_start + m as i64 * MINUTE_US;
                if ts < start || ts >= end || counts.iter().all(|&x| x == 0) {
                    continue;
                }
                let b = &mut out[((ts - start) / size) as usize];
                for (sum, &n) in b.iter_mut().zip(counts) {
                    *sum += u64::from(n);
                }
            }
        }
        out
    }

    /// Hours that hold at least one log.
    pub fn hours(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollup::bucket::DAY_US;

    #[test]
    fn series_adds_minutes_and_hours() {
        let mut c = LevelCounts::default();
        let t0 = 100 * DAY_US;
        c.add(t0, Level::Info);
        c.add(t0 + 4 * MINUTE_US, Level::Error);
        c.add(t0 + 5 * MINUTE_US, Level::Error);
        c.add(t0 + HOUR_US + 1, Level::Critical);
        c.add(t0 - 1, Level::Debug);
        assert_eq!(
            c.series(t0, 5 * MINUTE_US, 2),
            vec![[0, 1, 0, 1, 0], [0, 0, 0, 1, 0]]
        );
        assert_eq!(
            c.series(t0 - HOUR_US, HOUR_US, 3),
            vec![[1, 0, 0, 0, 0], [0, 1, 0, 2, 0], [0, 0, 0, 0, 1]]
        );
        assert_eq!(
            c.series(t0 - DAY_US, DAY_US, 2),
            vec![[1, 0, 0, 0, 0], [0, 1, 0, 2, 1]]
        );
        c.remove(t0 + HOUR_US + 1, Level::Critical);
        assert_eq!(c.hours(), 2);
        assert_eq!(c.series(t0, HOUR_US, 2)[1], [0; 5]);
        // The freed hour is reused, from zero.
        c.add(t0 + 3 * HOUR_US, Level::Warning);
        assert_eq!(
            c.series(t0 + 3 * HOUR_US, HOUR_US, 1),
            vec![[0, 0, 1, 0, 0]]
        );
        assert_eq!(c.hours(), 3);
    }
}
