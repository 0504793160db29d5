//! The part of ingest that every front door shares. A front door (native JSON, OTLP,
//! Elasticsearch `_bulk`, Loki push) owns only its decoding and its mapping onto the Log
//! schema; it hands [`Mapped`] items here, and from then on every door is the same:
//! validate → retention window → quota → append → one id per accepted log.

use ledger_engine::NewLog;
use serde_json::{Map, Value};

use super::validate::{self, Rejection, TimeWindow};
use crate::error::ItemError;

/// One item as a front door decoded and mapped it.
pub struct Mapped {
    /// The log, or why this item alone is refused (a message naming the field).
    pub log: Result<NewLog, Rejection>,
    /// What the item counts for in the project's daily usage bytes: its size as sent.
    pub bytes: u64,
}

impl Mapped {
    /// Validates a log already mapped onto the Log schema's field names (a JSON object),
    /// by the same rules as the native routes.
    pub fn from_schema(object: Map<String, Value>, bytes: u64) -> Mapped {
        Mapped {
            log: validate::validate_object(object),
            bytes,
        }
    }

    /// An item refused before it could be mapped.
    pub fn refused(code: &'static str, message: String, bytes: u64) -> Mapped {
        Mapped {
            log: Err(Rejection { code, message }),
            bytes,
        }
    }
}

/// The logs of a request that passed validation, with their size, and those that did not.
pub struct Checked {
    /// `(index in the request, log, usage bytes)`.
    pub valid: Vec<(usize, NewLog, u64)>,
    pub errors: Vec<ItemError>,
    pub total: usize,
}

impl Checked {
    /// Sorts mapped items into valid and refused, refusing timestamps outside `window`.
    pub fn from_mapped(items: Vec<Mapped>, window: &TimeWindow) -> Checked {
        let mut out = Checked {
            valid: Vec::with_capacity(items.len()),
            errors: Vec::new(),
            total: items.len(),
        };
        for (index, m) in items.into_iter().enumerate() {
            match m
                .log
                .and_then(|log| window.check(log.timestamp).map(|()| log))
            {
                Ok(log) => out.valid.push((index, log, m.bytes)),
                Err(r) => out.errors.push(ItemError {
                    index,
                    code: r.code,
                    message: r.message,
                }),
            }
        }
        out
    }
}
