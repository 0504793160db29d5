//! `loadgen --live-timestamps`: the bodies are made once, before the run, so that making
//! them does not compete with the server for CPU; without this, every repeat of a body sends
//! the same timestamps, and a long fill stores the same few seconds over and over (every
//! segment then spans the whole window, unlike a live service's logs). With it, each log's
//! timestamp text is rewritten in place as its body is sent: the send time, a microsecond
//! apart per log. Native JSON only (its timestamps are fixed-width RFC 3339 text).

use bytes::Bytes;
use ledger_engine::timefmt::format_micros;

/// Where each log's timestamp text sits in one body.
#[derive(Debug, Default, Clone)]
pub struct Stamps {
    at: Vec<usize>,
    width: usize,
}

impl Stamps {
    /// Finds the timestamps `stamps` (Unix µs, in the order the logs are in `body`) in a
    /// native JSON body. `None` if one is not found, or they are not all of one width.
    pub fn find(body: &[u8], stamps: &[i64]) -> Option<Stamps> {
        let mut at = Vec::with_capacity(stamps.len());
        let mut from = 0;
        let mut width = None;
        for &us in stamps {
            let needle = format!("\"timestamp\":\"{}\"", format_micros(us));
            let text = needle.len() - "\"timestamp\":\"\"".len();
            if *width.get_or_insert(text) != text {
                return None;
            }
            let found = memchr::memmem::find(&body[from..], needle.as_bytes())?;
            let start = from + found + "\"timestamp\":\"".len();
            at.push(start);
            from = start + text;
        }
        Some(Stamps {
            at,
            width: width.unwrap_or(0),
        })
    }

    /// A copy of `body` whose logs are stamped `first_us`, `first_us + 1`, ….
    pub fn restamp(&self, body: &Bytes, first_us: i64) -> Bytes {
        let mut b = body.to_vec();
        for (i, &at) in self.at.iter().enumerate() {
            let text = format_micros(first_us + i as i64);
            // Fixed width for years 1000-9999; a different width is left as it was.
            if text.len() == self.width {
                b[at..at + self.width].copy_from_slice(text.as_bytes());
            }
        }
        b.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_restamped_body_carries_the_new_times_and_nothing_else_changes() {
        let mut g = ledger_loggen::LogGen::new(5, 0);
        let t0 = 1_795_000_000_000_000;
        let logs: Vec<Value> = (0..50).map(|i| g.json_at(t0 + i * 1000)).collect();
        let body = Bytes::from(serde_json::json!({ "logs": logs }).to_string());
        let stamps: Vec<i64> = (0..50).map(|i| t0 + i * 1000).collect();
        let s = Stamps::find(&body, &stamps).expect("every timestamp found");
        let later = t0 + 86_400_000_000 + 7;
        let out = s.restamp(&body, later);
        let parsed: Value = serde_json::from_slice(&out).expect("still JSON");
        let sent = parsed["logs"].as_array().unwrap();
        assert_eq!(sent.len(), 50);
        for (i, (new, old)) in sent.iter().zip(&logs).enumerate() {
            assert_eq!(new["timestamp"], format_micros(later + i as i64));
            let (mut new, mut old) = (new.clone(), old.clone());
            new["timestamp"] = Value::Null;
            old["timestamp"] = Value::Null;
            assert_eq!(new, old, "log {i}: only the timestamp changes");
        }
    }

    #[test]
    fn a_body_without_the_timestamps_is_not_restamped() {
        let body = br#"{"logs":[{"timestamp":"2026-01-01T00:00:00.000000Z"}]}"#;
        assert!(Stamps::find(body, &[1_795_000_000_000_000]).is_none());
    }
}
