//! The Log schema of docs/api.md, rule by rule: raw JSON text in, `ledger_engine::NewLog` out, or
//! the code and message of the first rule it breaks.

use ledger_engine::timefmt::parse_rfc3339;
use ledger_engine::{Field, Importance, Level, LogType, NewLog};
use serde_json::error::Category;
use serde_json::{Map, Value};

use super::attributes;
use super::log_object::LogObject;
use crate::error::ApiError;

pub const MAX_MESSAGE_CHARS: usize = 10_000;
pub const MAX_STACK_TRACE_CHARS: usize = 100_000;
pub const MAX_SHORT_CHARS: usize = 256;
/// `error_type` is a class or kind name; a longer one is a message in the wrong field.
pub const MAX_ERROR_TYPE_CHARS: usize = 1_000;
/// `error_message`, like `message`.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 10_000;
/// How far ahead of the server's clock a log's timestamp may be (clock skew). A log further
/// ahead would stay in storage past its project's retention (a segment goes when its newest
/// log expires), so it is refused.
pub const MAX_FUTURE_SKEW_MICROS: i64 = 3_600_000_000;
pub const MAX_ID_CHARS: usize = 128;
pub const MAX_ATTRIBUTES_BYTES: usize = 100 * 1024;
pub const MAX_ATTRIBUTES_DEPTH: usize = 16;

/// Why a log was refused: an API error code and a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
}

impl Rejection {
    pub(super) fn invalid(message: String) -> Rejection {
        Rejection {
            code: "invalid_field",
            message,
        }
    }
    fn missing(field: &str) -> Rejection {
        Rejection {
            code: "missing_field",
            message: format!("{field}: required"),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> ApiError {
        match r.code {
            "invalid_json" => ApiError::InvalidJson(r.message),
            "missing_field" => ApiError::MissingField(r.message),
            _ => ApiError::invalid_field(r.message),
        }
    }
}

/// The timestamps a project accepts now: `[now − retention, now + skew]`.
#[derive(Debug, Clone, Copy)]
pub struct TimeWindow {
    pub oldest: i64,
    pub newest: i64,
    pub retention_days: u64,
}

impl TimeWindow {
    /// The window for a project with `retention_days`, at `now` (µs).
    pub fn new(now: i64, retention_days: u64) -> TimeWindow {
        let keep = i64::try_from(retention_days)
            .unwrap_or(i64::MAX)
            .saturating_mul(86_400_000_000);
        TimeWindow {
            oldest: now.saturating_sub(keep),
            newest: now.saturating_add(MAX_FUTURE_SKEW_MICROS),
            retention_days,
        }
    }

    /// Refuses a timestamp outside the window, naming the bound.
    pub fn check(&self, timestamp: i64) -> Result<(), Rejection> {
        use ledger_engine::timefmt::format_micros;
        if timestamp < self.oldest {
            return Err(Rejection::invalid(format!(
                "timestamp: {} is older than the project's retention of {} days allows (earliest accepted now: {})",
                format_micros(timestamp),
                self.retention_days,
                format_micros(self.oldest)
            )));
        }
        if timestamp > self.newest {
            return Err(Rejection::invalid(format!(
                "timestamp: {} is more than 1 hour ahead of the server's clock (latest accepted now: {})",
                format_micros(timestamp),
                format_micros(self.newest)
            )));
        }
        Ok(())
    }
}

/// Parses and checks one log, and that its timestamp falls in `window`.
pub fn validate_in(raw: &str, window: &TimeWindow) -> Result<NewLog, Rejection> {
    let log = validate(raw)?;
    window.check(log.timestamp)?;
    Ok(log)
}

/// Parses and checks one log. The object is read in one pass into its fields in order
/// (see [`LogObject`]), not into a `Map`; its attributes are checked and compacted on the
/// text as sent where that gives the same answer ([`attributes::of_text`]), else parsed.
pub fn validate(raw: &str) -> Result<NewLog, Rejection> {
    match validate_lent(raw) {
        Some(answer) => answer,
        None => validate_parsed(raw),
    }
}

/// [`validate`] with the attributes lent as text, parsed on their own only where the text
/// cannot decide; `None` when the log is not well-formed (the parsed path then gives the
/// error as it always has).
fn validate_lent(raw: &str) -> Option<Result<NewLog, Rejection>> {
    let object = LogObject::read_lending_attributes(raw).ok()?;
    let attrs = match object.attributes {
        Some(text) => Some(attributes::of_raw(text.get())?),
        None => None,
    };
    let fields = object.fields.iter().map(|(k, v)| (k.as_str(), v));
    Some(check_fields(fields, attrs).map(|checked| build(object.fields, checked)))
}

/// [`validate`] with every value parsed.
fn validate_parsed(raw: &str) -> Result<NewLog, Rejection> {
    let object = LogObject::read(raw).map_err(|e| match e.classify() {
        // Well-formed JSON of another type: an array, a string, …
        Category::Data => Rejection::invalid("a log must be a JSON object".into()),
        _ => Rejection {
            code: "invalid_json",
            message: format!("log is not valid JSON: {e}"),
        },
    })?;
    let fields = object.fields.iter().map(|(k, v)| (k.as_str(), v));
    let checked = check_fields(fields, None)?;
    Ok(build(object.fields, checked))
}

/// Checks a log given as a JSON object with the Log schema's field names (what a front
/// door maps its items onto). A refused object comes back whole with the reason, so the
/// rejected-logs list can keep it.
pub fn validate_object(map: Map<String, Value>) -> Result<NewLog, (Rejection, Map<String, Value>)> {
    match check_fields(map.iter().map(|(k, v)| (k.as_str(), v)), None) {
        Ok(checked) => Ok(build(map, checked)),
        Err(r) => Err((r, map)),
    }
}

/// What an optional field may hold.
pub(super) enum Rule {
    Chars(usize),
    Hex,
}

pub(super) fn optional_field(name: &str) -> Option<(Field, Rule)> {
    Some(match name {
        "message" => (Field::Message, Rule::Chars(MAX_MESSAGE_CHARS)),
        "error_type" => (Field::ErrorType, Rule::Chars(MAX_ERROR_TYPE_CHARS)),
        "error_message" => (Field::ErrorMessage, Rule::Chars(MAX_ERROR_MESSAGE_CHARS)),
        "stack_trace" => (Field::StackTrace, Rule::Chars(MAX_STACK_TRACE_CHARS)),
        "service" => (Field::Service, Rule::Chars(MAX_SHORT_CHARS)),
        "source" => (Field::Source, Rule::Chars(MAX_SHORT_CHARS)),
        "environment" => (Field::Environment, Rule::Chars(MAX_SHORT_CHARS)),
        "release" => (Field::Release, Rule::Chars(MAX_SHORT_CHARS)),
        "platform" => (Field::Platform, Rule::Chars(MAX_SHORT_CHARS)),
        "language" => (Field::Language, Rule::Chars(MAX_SHORT_CHARS)),
        "trace_id" => (Field::TraceId, Rule::Hex),
        "span_id" => (Field::SpanId, Rule::Hex),
        _ => return None,
    })
}

fn too_long(s: &str, max: usize) -> bool {
    // A string of at most `max` bytes has at most `max` characters: skip the count.
    s.len() > max && s.chars().count() > max
}

fn string<'v>(name: &str, v: &'v Value) -> Result<Option<&'v str>, Rejection> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(Rejection::invalid(format!("{name}: expected a string"))),
    }
}

/// What the checking pass parsed: the required fields and the attributes' compact text.
struct Parsed {
    timestamp: i64,
    level: Level,
    log_type: LogType,
    importance: Importance,
    attributes: Option<String>,
}

/// Every rule, on an object's fields in order: the first one broken, or the parsed
/// required fields. `lent`: the attributes already checked on their text, to take at
/// their place in the order instead of the value there.
fn check_fields<'v>(
    fields: impl Iterator<Item = (&'v str, &'v Value)>,
    mut lent: Option<attributes::Checked>,
) -> Result<Parsed, Rejection> {
    let mut timestamp = None;
    let mut level = None;
    let mut log_type = None;
    let mut importance = None;
    let mut attrs = None;
    for (name, v) in fields {
        match name {
            "timestamp" => {
                if let Some(s) = string(name, v)? {
                    timestamp = Some(parse_rfc3339(s).ok_or_else(|| {
                        Rejection::invalid(format!(
                            "timestamp: expected an RFC 3339 time such as 2026-11-22T12:26:36.123Z, got {s:?}"
                        ))
                    })?);
                }
            }
            "level" => {
                if let Some(s) = string(name, v)? {
                    level = Some(Level::parse(s).ok_or_else(|| {
                        Rejection::invalid(
                            "level: expected one of debug, info, warning, error, critical".into(),
                        )
                    })?);
                }
            }
            "log_type" => {
                if let Some(s) = string(name, v)? {
                    log_type = Some(LogType::parse(s).ok_or_else(|| {
                        Rejection::invalid(
                            "log_type: expected one of console, logger, exception, custom".into(),
                        )
                    })?);
                }
            }
            "importance" => {
                if let Some(s) = string(name, v)? {
                    importance = Some(Importance::parse(s).ok_or_else(|| {
                        Rejection::invalid("importance: expected one of low, standard, high".into())
                    })?);
                }
            }
            "attributes" => {
                attrs = match lent.take() {
                    Some(checked) => checked?,
                    None => attributes::of_value(v)?,
                }
            }
            _ => {
                let Some((_, rule)) = optional_field(name) else {
                    return Err(Rejection::invalid(format!(
                        "{name}: unknown field (see the Log schema)"
                    )));
                };
                let Some(s) = string(name, v)? else {
                    continue;
                };
                match rule {
                    Rule::Chars(max) if too_long(s, max) => {
                        return Err(Rejection::invalid(format!(
                            "{name}: at most {max} characters"
                        )));
                    }
                    Rule::Hex
                        if s.is_empty()
                            || s.len() > MAX_ID_CHARS
                            || !s.bytes().all(|b| b.is_ascii_hexdigit()) =>
                    {
                        return Err(Rejection::invalid(format!(
                            "{name}: expected 1 to {MAX_ID_CHARS} hex digits"
                        )));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(Parsed {
        timestamp: timestamp.ok_or_else(|| Rejection::missing("timestamp"))?,
        level: level.ok_or_else(|| Rejection::missing("level"))?,
        log_type: log_type.ok_or_else(|| Rejection::missing("log_type"))?,
        importance: importance.ok_or_else(|| Rejection::missing("importance"))?,
        attributes: attrs,
    })
}

/// Moves the optional strings of a checked object into a log (no copies).
fn build<K: AsRef<str>>(fields: impl IntoIterator<Item = (K, Value)>, p: Parsed) -> NewLog {
    let mut log = NewLog::new(p.timestamp, p.level, p.log_type, p.importance);
    log.fields[Field::Attributes as usize] = p.attributes;
    for (name, v) in fields {
        if let (Some((field, _)), Value::String(s)) = (optional_field(name.as_ref()), v) {
            log.fields[field as usize] = Some(s);
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const OK: &str = r#"{"timestamp":"2026-11-22T12:26:36.123Z","level":"WARN","log_type":"logger","importance":"high"}"#;

    fn with(extra: &str) -> String {
        format!("{},{extra}}}", &OK[..OK.len() - 1])
    }

    fn code(raw: &str) -> &'static str {
        validate(raw).unwrap_err().code
    }

    #[test]
    fn a_minimal_log_passes_and_aliases_normalise() {
        let log = validate(OK).unwrap();
        assert_eq!(log.level, Level::Warning);
        assert_eq!(log.importance, Importance::High);
        let log = validate(&with(
            r#""attributes":{"a": {"b": [1, 2]}},"trace_id":"AbC123""#,
        ))
        .unwrap();
        assert_eq!(log.get(Field::Attributes), Some(r#"{"a":{"b":[1,2]}}"#));
        assert!(validate(&with(r#""message":null"#))
            .unwrap()
            .get(Field::Message)
            .is_none());
    }

    #[test]
    fn every_rule_has_its_code() {
        assert_eq!(code("{"), "invalid_json");
        assert_eq!(code("[1]"), "invalid_field");
        assert_eq!(
            code(r#"{"level":"info","log_type":"custom","importance":"low"}"#),
            "missing_field"
        );
        assert_eq!(code(&with(r#""levle":"info""#)), "invalid_field");
        assert_eq!(code(&OK.replace("WARN", "loud")), "invalid_field");
        assert_eq!(code(&OK.replace("logger", "syslog")), "invalid_field");
        assert_eq!(code(&OK.replace("high", "urgent")), "invalid_field");
        assert_eq!(
            code(&OK.replace("2026-11-22T12:26:36.123Z", "yesterday")),
            "invalid_field"
        );
        assert_eq!(code(&with(r#""service":5"#)), "invalid_field");
        assert_eq!(
            code(&with(&format!(r#""message":"{}""#, "é".repeat(10_001)))),
            "invalid_field"
        );
        assert!(validate(&with(&format!(r#""message":"{}""#, "é".repeat(10_000)))).is_ok());
        assert_eq!(
            code(&with(&format!(r#""service":"{}""#, "s".repeat(257)))),
            "invalid_field"
        );
        assert_eq!(code(&with(r#""trace_id":"xyz""#)), "invalid_field");
        assert_eq!(code(&with(r#""attributes":[1]"#)), "invalid_field");
        let deep = format!("{}1{}", r#"{"a":"#.repeat(17), "}".repeat(17));
        assert_eq!(
            code(&with(&format!(r#""attributes":{deep}"#))),
            "invalid_field"
        );
        let ok_deep = format!("{}1{}", r#"{"a":"#.repeat(16), "}".repeat(16));
        assert!(validate(&with(&format!(r#""attributes":{ok_deep}"#))).is_ok());
        let big = format!(
            r#""attributes":{{"x":"{}"}}"#,
            "a".repeat(MAX_ATTRIBUTES_BYTES)
        );
        assert_eq!(code(&with(&big)), "invalid_field");
    }

    #[test]
    fn typical_attributes_are_checked_on_their_text() {
        let raw =
            with(r#""attributes": {"http": {"method": "GET", "status": 502}, "user_id": "u-81"}"#);
        assert!(
            attributes::of_text(r#"{"http": {"method": "GET", "status": 502}, "user_id": "u-81"}"#)
                .is_some(),
            "decided without parsing the attributes"
        );
        let lent = validate_lent(&raw).expect("a well-formed log");
        assert_eq!(lent, validate_parsed(&raw));
        assert_eq!(
            lent.unwrap().get(Field::Attributes),
            Some(r#"{"http":{"method":"GET","status":502},"user_id":"u-81"}"#)
        );
        // A fraction is left to the parser, which may write it differently.
        assert_eq!(attributes::of_text(r#"{"f":2.50}"#), None);
        let fraction = with(r#""attributes":{"f":2.50}"#);
        assert_eq!(validate_lent(&fraction), Some(validate_parsed(&fraction)));
    }

    /// The way a log was read before [`LogObject`]: parsed into a `Map`, then checked.
    fn validate_by_map(raw: &str) -> Result<NewLog, Rejection> {
        let value: Value = serde_json::from_str(raw).map_err(|e| Rejection {
            code: "invalid_json",
            message: format!("log is not valid JSON: {e}"),
        })?;
        let Value::Object(map) = value else {
            return Err(Rejection::invalid("a log must be a JSON object".into()));
        };
        validate_object(map).map_err(|(r, _)| r)
    }

    /// A log object as text: schema names, unknown names, keys sent twice, values of every
    /// type and of the wrong type, sometimes not an object or not JSON at all.
    fn log_text() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "timestamp",
            "level",
            "log_type",
            "importance",
            "attributes",
            "message",
            "error_type",
            "service",
            "trace_id",
            "span_id",
            "release",
            "levle",
            "extra",
        ]);
        let value = prop::sample::select(vec![
            r#""2026-11-22T12:26:36.123Z""#,
            r#""yesterday""#,
            r#""WARN""#,
            r#""error""#,
            r#""logger""#,
            r#""high""#,
            r#""low""#,
            r#""abc123""#,
            r#""xyz""#,
            r#""a \"quoted\" \u00e9""#,
            "null",
            "5",
            "true",
            "[1]",
            r#"{"a":{"b":[1,2.5]},"c":"d"}"#,
            r#"{ "b": 1, "a": "x y", "n": [true, null, -3] }"#,
            "{}",
        ]);
        let object = prop::collection::vec((key, value), 0..12).prop_map(|fields| {
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
            format!("{{{}}}", body.join(","))
        });
        prop_oneof![
            8 => object,
            1 => Just("[1]".to_string()),
            1 => Just(r#"{"level":"#.to_string()),
        ]
    }

    proptest::proptest! {
        /// Reading the object in one pass accepts and refuses exactly what the `Map` did,
        /// with the same log or the same code and message.
        #[test]
        fn the_one_pass_reader_agrees_with_the_map(text in log_text()) {
            // Complete the required fields half the time, so that logs also pass.
            let full = format!(
                "{},{}",
                &OK[..OK.len() - 1],
                text.strip_prefix('{').unwrap_or("\"x\":1}")
            );
            for raw in [text.as_str(), full.as_str()] {
                proptest::prop_assert_eq!(validate(raw), validate_by_map(raw), "{}", raw);
            }
        }
    }
}
