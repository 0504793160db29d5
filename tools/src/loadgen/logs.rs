//! Seeded, realistic logs: mostly `info`, about 5% errors with Python or JavaScript stack
//! traces, messages from templates with variable ids, nested attributes. About 460 bytes of
//! JSON each, like the logs the performance targets were measured with.

use serde_json::{json, Value};

/// splitmix64: small, fast, and the same sequence for the same seed everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    fn hex(&mut self, digits: usize) -> String {
        let mut s = String::with_capacity(digits);
        while s.len() < digits {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(digits);
        s
    }
}

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

fn message(r: &mut Rng) -> String {
    let id = r.below(100_000);
    let ms = 1 + r.below(900);
    match r.below(8) {
        0 => format!("{} {}/{id} 200 in {ms}ms", r.pick(&METHODS), r.pick(&PATHS)),
        1 => format!(
            "user usr_{id} logged in from 10.{}.{}.{}",
            r.below(256),
            r.below(256),
            r.below(256)
        ),
        2 => format!("cache miss for key product:{id}, loading from database"),
        3 => format!(
            "payment pay_{id} authorized amount={}.{:02} currency=EUR",
            r.below(500),
            r.below(100)
        ),
        4 => format!("retrying job job_{id} attempt {} of 5", 1 + r.below(5)),
        5 => format!("slow query took {ms}ms: SELECT * FROM orders WHERE customer_id = {id}"),
        6 => format!("sent email template=order_confirmation to usr_{id} in {ms}ms"),
        _ => format!(
            "inventory reserved sku-{id} qty={} warehouse=wh-{}",
            1 + r.below(9),
            r.below(12)
        ),
    }
}

/// One error's type, message and stack trace, Python or JavaScript.
fn error(r: &mut Rng) -> (String, String, String, &'static str) {
    let id = r.below(100_000);
    if r.below(2) == 0 {
        let (ty, msg) = *r.pick(&[
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
            40 + r.below(200),
            10 + r.below(300)
        );
        (ty.to_owned(), msg, trace, "python")
    } else {
        let (ty, msg) = *r.pick(&[
            (
                "TypeError",
                "Cannot read properties of undefined (reading 'id{}')",
            ),
            ("RangeError", "Invalid array length {}"),
        ]);
        let msg = msg.replace("{}", &id.to_string());
        let trace = format!(
            "{ty}: {msg}\n    at renderCart (/app/src/cart.js:{}:17)\n    at processTicksAndRejections (node:internal/process/task_queues:95:5)\n    at async Router.handle (/app/src/router.js:{}:9)",
            10 + r.below(400),
            20 + r.below(100)
        );
        (ty.to_owned(), msg, trace, "javascript")
    }
}

/// A log with a timestamp `now_ms` (Unix ms).
pub fn log(r: &mut Rng, now_ms: u64) -> Value {
    let roll = r.below(100);
    let level = match roll {
        0..=9 => "debug",
        10..=79 => "info",
        80..=94 => "warning",
        95..=98 => "error",
        _ => "critical",
    };
    let secs = now_ms / 1000;
    let ts =
        ledger_engine::timefmt::format_micros((secs * 1_000_000 + (now_ms % 1000) * 1000) as i64);
    let status = if level == "error" || level == "critical" {
        500
    } else {
        *r.pick(&[200, 200, 200, 201, 404])
    };
    let mut l = json!({
        "timestamp": ts,
        "level": level,
        "log_type": "logger",
        "importance": if level == "debug" { "low" } else { "standard" },
        "message": message(r),
        "service": r.pick(&SERVICES),
        "environment": *r.pick(&["prod", "prod", "prod", "staging", "dev"]),
        "release": format!("2026.{}.{}", 1 + r.below(11), r.below(20)),
        "trace_id": r.hex(32),
        "span_id": r.hex(16),
        "attributes": {
            "http": {"method": r.pick(&METHODS), "path": r.pick(&PATHS), "status": status},
            "user": {"id": format!("usr_{}", r.below(50_000)), "plan": r.pick(&PLANS)},
            "duration_ms": r.below(1500),
            "region": r.pick(&REGIONS),
        },
    });
    if level == "error" || level == "critical" {
        let (ty, msg, trace, lang) = error(r);
        l["log_type"] = json!("exception");
        l["importance"] = json!("high");
        l["error_type"] = json!(ty);
        l["error_message"] = json!(msg);
        l["stack_trace"] = json!(trace);
        l["language"] = json!(lang);
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_seeded_and_about_460_bytes() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(
            log(&mut a, 1_700_000_000_000),
            log(&mut b, 1_700_000_000_000)
        );
        let mut r = Rng::new(1);
        let n = 2_000;
        let logs: Vec<Value> = (0..n).map(|_| log(&mut r, 1_700_000_000_000)).collect();
        let avg = logs.iter().map(|l| l.to_string().len()).sum::<usize>() / n;
        assert!((380..=560).contains(&avg), "average {avg} bytes");
        let errors = logs
            .iter()
            .filter(|l| l.get("stack_trace").is_some())
            .count();
        assert!((50..=150).contains(&errors), "{errors} errors in {n}");
    }
}
