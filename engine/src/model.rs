//! The log record: what the engine stores and returns, and the small enums it is made of.

use std::fmt;

/// A project's id inside the engine. The server maps its own identifiers onto these.
pub type ProjectId = u64;

/// Severity of a log. Stored as one byte; the order is the severity order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warning = 2,
    Error = 3,
    Critical = 4,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Debug,
        Level::Info,
        Level::Warning,
        Level::Error,
        Level::Critical,
    ];

    /// The stored, lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Critical => "critical",
        }
    }

    /// Parses a level case-insensitively, accepting the aliases `warn` and `fatal`.
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warning" | "warn" => Some(Level::Warning),
            "error" => Some(Level::Error),
            "critical" | "fatal" => Some(Level::Critical),
            _ => None,
        }
    }

    pub fn from_u8(b: u8) -> Option<Level> {
        Level::ALL.get(b as usize).copied()
    }

    /// True for `error` and `critical`, the levels the error rate counts.
    pub fn is_error(self) -> bool {
        matches!(self, Level::Error | Level::Critical)
    }
}

/// Where a log came from in the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LogType {
    Console = 0,
    Logger = 1,
    Exception = 2,
    Custom = 3,
}

impl LogType {
    pub const ALL: [LogType; 4] = [
        LogType::Console,
        LogType::Logger,
        LogType::Exception,
        LogType::Custom,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            LogType::Console => "console",
            LogType::Logger => "logger",
            LogType::Exception => "exception",
            LogType::Custom => "custom",
        }
    }
    pub fn parse(s: &str) -> Option<LogType> {
        LogType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
    pub fn from_u8(b: u8) -> Option<LogType> {
        LogType::ALL.get(b as usize).copied()
    }
}

/// How much the sender cares about a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Importance {
    Low = 0,
    Standard = 1,
    High = 2,
}

impl Importance {
    pub const ALL: [Importance; 3] = [Importance::Low, Importance::Standard, Importance::High];
    pub fn as_str(self) -> &'static str {
        match self {
            Importance::Low => "low",
            Importance::Standard => "standard",
            Importance::High => "high",
        }
    }
    pub fn parse(s: &str) -> Option<Importance> {
        Importance::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
    pub fn from_u8(b: u8) -> Option<Importance> {
        Importance::ALL.get(b as usize).copied()
    }
}

/// The optional string fields of a log, in their stored column order.
///
/// The order is part of the on-disk format (FORMAT.md, "string columns"): append only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Message = 0,
    ErrorType = 1,
    ErrorMessage = 2,
    StackTrace = 3,
    Service = 4,
    Source = 5,
    Environment = 6,
    Release = 7,
    Platform = 8,
    Language = 9,
    TraceId = 10,
    SpanId = 11,
    Attributes = 12,
    ErrorFingerprint = 13,
}

/// Number of optional string fields (columns) a record carries.
pub const FIELD_COUNT: usize = 14;

impl Field {
    pub const ALL: [Field; FIELD_COUNT] = [
        Field::Message,
        Field::ErrorType,
        Field::ErrorMessage,
        Field::StackTrace,
        Field::Service,
        Field::Source,
        Field::Environment,
        Field::Release,
        Field::Platform,
        Field::Language,
        Field::TraceId,
        Field::SpanId,
        Field::Attributes,
        Field::ErrorFingerprint,
    ];
    /// The JSON name of the field.
    pub fn name(self) -> &'static str {
        match self {
            Field::Message => "message",
            Field::ErrorType => "error_type",
            Field::ErrorMessage => "error_message",
            Field::StackTrace => "stack_trace",
            Field::Service => "service",
            Field::Source => "source",
            Field::Environment => "environment",
            Field::Release => "release",
            Field::Platform => "platform",
            Field::Language => "language",
            Field::TraceId => "trace_id",
            Field::SpanId => "span_id",
            Field::Attributes => "attributes",
            Field::ErrorFingerprint => "error_fingerprint",
        }
    }
}

/// A log as a client sends it, already validated by the caller. Times are microseconds since
/// the Unix epoch, UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLog {
    pub timestamp: i64,
    pub level: Level,
    pub log_type: LogType,
    pub importance: Importance,
    /// Optional string fields indexed by [`Field`]. `attributes` holds the object's compact
    /// JSON text; `error_fingerprint` is ignored on input (the engine computes it).
    pub fields: [Option<String>; FIELD_COUNT],
}

impl NewLog {
    /// A log with the required fields and no optional ones.
    pub fn new(timestamp: i64, level: Level, log_type: LogType, importance: Importance) -> Self {
        NewLog {
            timestamp,
            level,
            log_type,
            importance,
            fields: Default::default(),
        }
    }
    pub fn get(&self, f: Field) -> Option<&str> {
        self.fields[f as usize].as_deref()
    }
    pub fn set(&mut self, f: Field, v: impl Into<String>) -> &mut Self {
        self.fields[f as usize] = Some(v.into());
        self
    }
    pub fn with(mut self, f: Field, v: impl Into<String>) -> Self {
        self.set(f, v);
        self
    }
}

/// A stored log: what the client sent plus the id, the ingest time and the fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub seq: u64,
    pub ingested_at: i64,
    pub log: NewLog,
}

impl LogRecord {
    pub fn id(&self) -> LogId {
        LogId {
            timestamp: self.log.timestamp,
            seq: self.seq,
        }
    }
    pub fn key(&self) -> (i64, u64) {
        (self.log.timestamp, self.seq)
    }
    pub fn get(&self, f: Field) -> Option<&str> {
        self.log.get(f)
    }
    /// Rough in-memory size, used for memtable limits.
    pub fn approx_size(&self) -> usize {
        96 + self
            .log
            .fields
            .iter()
            .map(|f| f.as_ref().map_or(0, |s| s.len() + 24))
            .sum::<usize>()
    }
}

/// The id of a stored log: its timestamp and its node-wide sequence number. The timestamp is
/// part of the id so a lookup prunes segments by time exactly as a scan does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogId {
    pub timestamp: i64,
    pub seq: u64,
}

impl LogId {
    /// Parses the 32-hex-digit text form; anything else is `None`.
    pub fn parse(s: &str) -> Option<LogId> {
        let mut b = [0u8; 16];
        hex::decode_to_slice(s, &mut b).ok()?;
        let (ts, seq) = b.split_at(8);
        let ts = u64::from_be_bytes(ts.try_into().ok()?);
        let seq = u64::from_be_bytes(seq.try_into().ok()?);
        Some(LogId {
            timestamp: (ts ^ (1 << 63)) as i64,
            seq,
        })
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Flipping the sign bit makes the text sort like the timestamp.
        write!(
            f,
            "{:016x}{:016x}",
            (self.timestamp as u64) ^ (1 << 63),
            self.seq
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_id_text_round_trips_and_sorts_by_time() {
        let a = LogId {
            timestamp: -5,
            seq: 7,
        };
        let b = LogId {
            timestamp: 1_700_000_000_000_000,
            seq: 1,
        };
        assert_eq!(LogId::parse(&a.to_string()), Some(a));
        assert_eq!(LogId::parse(&b.to_string()), Some(b));
        assert!(a.to_string() < b.to_string());
        assert_eq!(LogId::parse("xyz"), None);
        assert_eq!(LogId::parse(&"g".repeat(32)), None);
    }

    #[test]
    fn level_aliases_parse() {
        assert_eq!(Level::parse("WARN"), Some(Level::Warning));
        assert_eq!(Level::parse("Fatal"), Some(Level::Critical));
        assert_eq!(Level::parse("nope"), None);
    }
}
