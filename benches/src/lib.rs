//! Shared pieces of Ledger's benches: a seeded generator of realistic logs (about 460 bytes
//! of JSON each, 5% errors with stack traces, nested attributes) and a results table that
//! prints each figure beside its target.

use ledger_engine::{timefmt, Field, Importance, Level, LogType, NewLog};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SERVICES: &[&str] = &[
    "api", "billing", "auth", "search", "web", "worker", "notifier", "gateway",
];
const TEMPLATES: &[&str] = &[
    "user {id} logged in from {ip}",
    "GET /api/v2/orders/{id} completed in {ms}ms",
    "payment {hex} authorised for account {id}",
    "cache miss for key session:{hex}",
    "job {id} finished: {n} items processed, {n} skipped",
    "connection pool at {n}% capacity, {n} waiting",
    "retrying request to upstream {ip} (attempt {n})",
    "order {id} shipped to warehouse {n}",
];
const ERRORS: &[(&str, &str)] = &[
    (
        "ValueError",
        "invalid literal for int() with base 10: '{id}'",
    ),
    ("KeyError", "'user_{id}'"),
    ("TimeoutError", "database query timed out after {ms} ms"),
    ("ConnectionRefusedError", "connection refused by {ip}:5432"),
    (
        "TypeError",
        "Cannot read properties of undefined (reading 'id')",
    ),
];

/// Seeded generator of realistic logs.
pub struct LogGen {
    rng: StdRng,
    pub now: i64,
}

impl LogGen {
    pub fn new(seed: u64, now: i64) -> Self {
        LogGen {
            rng: StdRng::seed_from_u64(seed),
            now,
        }
    }

    fn fill(&mut self, t: &str) -> String {
        let mut out = String::with_capacity(t.len() + 32);
        let mut rest = t;
        while let Some(i) = rest.find('{') {
            out.push_str(&rest[..i]);
            let end = rest[i..].find('}').map_or(rest.len(), |e| i + e + 1);
            match &rest[i..end] {
                "{id}" => out.push_str(&self.rng.gen_range(1000..99_999).to_string()),
                "{ms}" => out.push_str(&self.rng.gen_range(1..5000).to_string()),
                "{n}" => out.push_str(&self.rng.gen_range(0..100).to_string()),
                "{hex}" => out.push_str(&format!("{:012x}", self.rng.gen::<u64>() >> 16)),
                "{ip}" => out.push_str(&format!(
                    "10.0.{}.{}",
                    self.rng.gen_range(0..255),
                    self.rng.gen_range(1..255)
                )),
                other => out.push_str(other),
            }
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }

    /// One log, its timestamp a little after the previous one's.
    pub fn next_log(&mut self) -> NewLog {
        self.now += self.rng.gen_range(0..2_000);
        let roll = self.rng.gen_range(0..100);
        let level = match roll {
            0..=9 => Level::Debug,
            10..=79 => Level::Info,
            80..=94 => Level::Warning,
            95..=98 => Level::Error,
            _ => Level::Critical,
        };
        let is_err = level.is_error();
        let mut l = NewLog::new(
            self.now,
            level,
            if is_err {
                LogType::Exception
            } else {
                LogType::Logger
            },
            if is_err {
                Importance::High
            } else {
                Importance::Standard
            },
        );
        let svc = SERVICES[self.rng.gen_range(0..SERVICES.len())];
        let t = TEMPLATES[self.rng.gen_range(0..TEMPLATES.len())];
        let msg = self.fill(t);
        l.set(Field::Message, msg);
        l.set(Field::Service, svc);
        l.set(
            Field::Environment,
            if self.rng.gen_bool(0.9) {
                "production"
            } else {
                "staging"
            },
        );
        l.set(
            Field::Release,
            format!("2026.11.{}", self.rng.gen_range(1..4)),
        );
        l.set(Field::Source, format!("{svc}-{}", self.rng.gen_range(0..4)));
        l.set(Field::Platform, "linux");
        l.set(Field::Language, "python");
        l.set(Field::TraceId, format!("{:032x}", self.rng.gen::<u128>()));
        l.set(Field::SpanId, format!("{:016x}", self.rng.gen::<u64>()));
        let attrs = format!(
            r#"{{"http":{{"method":"{}","status":{},"path":"/api/v2/{}"}},"user_id":"usr_{}","duration_ms":{}}}"#,
            ["GET", "POST", "PUT"][self.rng.gen_range(0..3)],
            if is_err {
                500
            } else {
                [200, 200, 201, 404][self.rng.gen_range(0..4)]
            },
            ["orders", "users", "payments"][self.rng.gen_range(0..3)],
            self.rng.gen_range(1..5000),
            self.rng.gen_range(1..900)
        );
        l.set(Field::Attributes, attrs);
        if is_err {
            let (ty, m) = ERRORS[self.rng.gen_range(0..ERRORS.len())];
            let em = self.fill(m);
            l.set(Field::ErrorType, ty);
            l.set(Field::ErrorMessage, em);
            let mut st = String::from("Traceback (most recent call last):\n");
            for f in ["app/handlers.py", "app/services/orders.py", "app/db.py"] {
                st.push_str(&format!(
                    "  File \"/srv/{f}\", line {}, in handle\n    result = process(request)\n",
                    self.rng.gen_range(10..400)
                ));
            }
            st.push_str(&format!(
                "{ty}: {}",
                l.get(Field::ErrorMessage).unwrap_or("")
            ));
            l.set(Field::StackTrace, st);
        }
        l
    }

    pub fn batch(&mut self, n: usize) -> Vec<NewLog> {
        (0..n).map(|_| self.next_log()).collect()
    }
}

/// The JSON a client would send for this log (to measure bytes on disk per byte ingested).
pub fn to_json(l: &NewLog) -> String {
    let mut m = serde_json::Map::new();
    m.insert(
        "timestamp".into(),
        timefmt::format_micros(l.timestamp).into(),
    );
    m.insert("level".into(), l.level.as_str().into());
    m.insert("log_type".into(), l.log_type.as_str().into());
    m.insert("importance".into(), l.importance.as_str().into());
    for f in Field::ALL {
        if f == Field::ErrorFingerprint {
            continue;
        }
        if let Some(v) = l.get(f) {
            let v = if f == Field::Attributes {
                serde_json::from_str(v).unwrap_or(serde_json::Value::Null)
            } else {
                v.into()
            };
            m.insert(f.name().into(), v);
        }
    }
    serde_json::Value::Object(m).to_string()
}

/// A row of the results table.
pub struct Row {
    pub figure: String,
    pub target: String,
    pub measured: String,
    pub met: Option<bool>,
}

pub fn print_table(rows: &[Row]) {
    println!("\n| figure | target | measured | met |\n| --- | --- | --- | --- |");
    for r in rows {
        let met = match r.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "-",
        };
        println!("| {} | {} | {} | {} |", r.figure, r.target, r.measured, met);
    }
}

/// The value of an environment knob, or a default.
pub fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
