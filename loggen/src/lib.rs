//! The one seeded generator of realistic logs, shared by the engine benches and `ledgerctl
//! loadgen`/`generate`: mostly `info`, about 5% errors with Python or JavaScript stack traces,
//! messages from templates with variable ids, nested attributes. About 460 bytes of JSON each,
//! like the logs the performance targets were measured with. The same seed gives the same logs
//! on every machine (`StdRng` is ChaCha12).
//!
//! A log's JSON is [`ledger_engine::json::log_json`], the form clients send.

use ledger_engine::json::log_json;
use ledger_engine::{Field, Importance, Level, LogType, NewLog};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const SERVICES: [&str; 6] = [
    "billing",
    "checkout",
    "auth",
    "search",
    "inventory",
    "notifications",
];
const PATHS: [&str; 5] = [
    "/api/v1/orders",
    "/api/v1/users",
    "/api/v1/cart",
    "/api/v1/products",
    "/api/v1/payments",
];
const METHODS: [&str; 4] = ["GET", "GET", "POST", "PUT"];
const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "ap-south-1"];
const PLANS: [&str; 3] = ["free", "pro", "enterprise"];
const ENVIRONMENTS: [&str; 5] = ["prod", "prod", "prod", "staging", "dev"];

/// Seeded generator of realistic logs.
pub struct LogGen {
    rng: StdRng,
    /// The timestamp (Unix µs) [`LogGen::next_log`] moves forward.
    pub now: i64,
}

impl LogGen {
    /// A generator whose [`LogGen::next_log`] starts at `now` (Unix µs).
    pub fn new(seed: u64, now: i64) -> LogGen {
        LogGen {
            rng: StdRng::seed_from_u64(seed),
            now,
        }
    }

    /// The generator's random source, for callers that pick other things (queries, pauses)
    /// from the same seeded sequence.
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// One log, its timestamp up to 2 ms after the previous one's.
    pub fn next_log(&mut self) -> NewLog {
        self.now += self.rng.gen_range(0..2_000);
        self.log_at(self.now)
    }

    /// `n` logs from [`LogGen::next_log`].
    pub fn batch(&mut self, n: usize) -> Vec<NewLog> {
        (0..n).map(|_| self.next_log()).collect()
    }

    /// One log as a client sends it (the API's Log schema), stamped `timestamp` (Unix µs).
    pub fn json_at(&mut self, timestamp: i64) -> Value {
        Value::Object(log_json(&self.log_at(timestamp)))
    }

    /// One log stamped `timestamp` (Unix µs).
    pub fn log_at(&mut self, timestamp: i64) -> NewLog {
        let level = match self.rng.gen_range(0..100) {
            0..=9 => Level::Debug,
            10..=79 => Level::Info,
            80..=94 => Level::Warning,
            95..=98 => Level::Error,
            _ => Level::Critical,
        };
        let is_error = level.is_error();
        let (log_type, importance) = match level {
            _ if is_error => (LogType::Exception, Importance::High),
            Level::Debug => (LogType::Logger, Importance::Low),
            _ => (LogType::Logger, Importance::Standard),
        };
        let mut l = NewLog::new(timestamp, level, log_type, importance);
        let message = self.message();
        l.set(Field::Message, message);
        l.set(Field::Service, *self.pick(&SERVICES));
        l.set(Field::Environment, *self.pick(&ENVIRONMENTS));
        let release = format!(
            "2026.{}.{}",
            self.rng.gen_range(1..12),
            self.rng.gen_range(0..20)
        );
        l.set(Field::Release, release);
        l.set(Field::TraceId, format!("{:032x}", self.rng.gen::<u128>()));
        l.set(Field::SpanId, format!("{:016x}", self.rng.gen::<u64>()));
        let status = if is_error {
            500
        } else {
            *self.pick(&[200, 200, 200, 201, 404])
        };
        let attributes = json!({
            "http": {"method": self.pick(&METHODS), "path": self.pick(&PATHS), "status": status},
            "user": {"id": format!("usr_{}", self.rng.gen_range(0..50_000)), "plan": self.pick(&PLANS)},
            "duration_ms": self.rng.gen_range(0..1500),
            "region": self.pick(&REGIONS),
        });
        l.set(Field::Attributes, attributes.to_string());
        if is_error {
            let (ty, msg, trace, language) = self.error();
            l.set(Field::ErrorType, ty);
            l.set(Field::ErrorMessage, msg);
            l.set(Field::StackTrace, trace);
            l.set(Field::Language, language);
        }
        l
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        xs.choose(&mut self.rng).expect("a non-empty table")
    }

    fn below(&mut self, n: u64) -> u64 {
        self.rng.gen_range(0..n)
    }

    fn message(&mut self) -> String {
        let id = self.below(100_000);
        let ms = 1 + self.below(900);
        match self.below(8) {
            0 => format!(
                "{} {}/{id} 200 in {ms}ms",
                self.pick(&METHODS),
                self.pick(&PATHS)
            ),
            1 => format!(
                "user usr_{id} logged in from 10.{}.{}.{}",
                self.below(256),
                self.below(256),
                self.below(256)
            ),
            2 => format!("cache miss for key product:{id}, loading from database"),
            3 => format!(
                "payment pay_{id} authorized amount={}.{:02} currency=EUR",
                self.below(500),
                self.below(100)
            ),
            4 => format!("retrying job job_{id} attempt {} of 5", 1 + self.below(5)),
            5 => format!("slow query took {ms}ms: SELECT * FROM orders WHERE customer_id = {id}"),
            6 => format!("sent email template=order_confirmation to usr_{id} in {ms}ms"),
            _ => format!(
                "inventory reserved sku-{id} qty={} warehouse=wh-{}",
                1 + self.below(9),
                self.below(12)
            ),
        }
    }

    /// One error's type, message, stack trace and language, Python or JavaScript.
    fn error(&mut self) -> (&'static str, String, String, &'static str) {
        let id = self.below(100_000);
        if self.below(2) == 0 {
            let (ty, msg) = *self.pick(&[
                ("KeyError", "user {} not found"),
                (
                    "ValueError",
                    "invalid literal for int() with base 10: 'abc{}'",
                ),
                (
                    "TimeoutError",
                    "database query timed out after 30s (order {})",
                ),
                (
                    "ConnectionRefusedError",
                    "connection refused to cache-{}:6379",
                ),
            ]);
            let msg = msg.replace("{}", &id.to_string());
            let trace = format!(
                "Traceback (most recent call last):\n  File \"/app/handlers/orders.py\", line {}, in handle\n    return service.load(order_id)\n  File \"/app/services/orders.py\", line {}, in load\n    raise {ty}(msg)\n{ty}: {msg}",
                40 + self.below(200),
                10 + self.below(300)
            );
            (ty, msg, trace, "python")
        } else {
            let (ty, msg) = *self.pick(&[
                (
                    "TypeError",
                    "Cannot read properties of undefined (reading 'id{}')",
                ),
                ("RangeError", "Invalid array length {}"),
            ]);
            let msg = msg.replace("{}", &id.to_string());
            let trace = format!(
                "{ty}: {msg}\n    at renderCart (/app/src/cart.js:{}:17)\n    at processTicksAndRejections (node:internal/process/task_queues:95:5)\n    at async Router.handle (/app/src/router.js:{}:9)",
                10 + self.below(400),
                20 + self.below(100)
            );
            (ty, msg, trace, "javascript")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_seeded_and_about_460_bytes_with_5_percent_errors() {
        let t = 1_700_000_000_000_000;
        assert_eq!(LogGen::new(7, 0).json_at(t), LogGen::new(7, 0).json_at(t));
        assert_ne!(LogGen::new(7, 0).json_at(t), LogGen::new(8, 0).json_at(t));
        let mut g = LogGen::new(1, t);
        let n = 2_000;
        let logs: Vec<Value> = (0..n)
            .map(|_| Value::Object(log_json(&g.next_log())))
            .collect();
        let avg = logs.iter().map(|l| l.to_string().len()).sum::<usize>() / n;
        assert!((380..=560).contains(&avg), "average {avg} bytes");
        let errors = logs
            .iter()
            .filter(|l| l.get("stack_trace").is_some())
            .count();
        assert!((50..=150).contains(&errors), "{errors} errors in {n}");
        assert!(logs
            .windows(2)
            .all(|w| w[0]["timestamp"].as_str() <= w[1]["timestamp"].as_str()));
    }
}
