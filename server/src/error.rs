//! The API's error type and its one mapping to HTTP: status, code, message, details and the
//! `Retry-After` header. Every non-2xx answer is built here.

use ledger_engine::EngineError;
use serde_json::{json, Value};

/// One rejected item of a batch: where it was and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    pub index: usize,
    pub code: &'static str,
    pub message: String,
}

impl ItemError {
    pub fn to_json(&self) -> Value {
        json!({"index": self.index, "code": self.code, "message": self.message})
    }
}

/// Everything a request can be refused with. The variant decides the status and the code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidJson(String),
    #[error("{message}")]
    InvalidField {
        message: String,
        details: Vec<Value>,
    },
    #[error("{0}")]
    MissingField(String),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("{0}")]
    BatchTooLarge(String),
    /// No log of a batch was accepted because each was invalid; `errors` says why, per item.
    #[error("no log in the batch was accepted")]
    BatchRejected { errors: Vec<ItemError> },
    /// One message for every kind of credential failure, so callers learn nothing from it.
    #[error("missing or invalid credential")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("{0}")]
    Conflict(String),
    /// The body arrived too slowly (408 `request_timeout` in docs/api.md's table).
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    RateLimited { message: String, retry_after: u64 },
    /// The daily quota has no room for any log of the request; `errors` lists them (may be
    /// empty for a single log).
    #[error("daily quota exceeded")]
    QuotaExceeded {
        retry_after: u64,
        errors: Vec<ItemError>,
    },
    #[error("{message}")]
    Backpressure { message: String, retry_after: u64 },
    #[error("{message}")]
    Unavailable { message: String, retry_after: u64 },
    /// A bug (a panic caught at the edge). Never for anything a client sent.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    pub fn invalid_field(message: impl Into<String>) -> ApiError {
        ApiError::InvalidField {
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::NotFound(format!("{what} not found"))
    }

    pub fn unavailable(message: impl Into<String>, retry_after: u64) -> ApiError {
        ApiError::Unavailable {
            message: message.into(),
            retry_after,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidJson(_)
            | ApiError::InvalidField { .. }
            | ApiError::MissingField(_)
            | ApiError::InvalidQuery(_)
            | ApiError::BatchTooLarge(_)
            | ApiError::BatchRejected { .. } => 400,
            ApiError::Unauthenticated => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::Conflict(_) => 409,
            ApiError::RequestTimeout(_) => 408,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::RateLimited { .. } | ApiError::QuotaExceeded { .. } => 429,
            ApiError::Backpressure { .. } | ApiError::Unavailable { .. } => 503,
            ApiError::Internal => 500,
        }
    }

    /// The machine-readable code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidField { .. } => "invalid_field",
            ApiError::MissingField(_) => "missing_field",
            ApiError::InvalidQuery(_) => "invalid_query",
            ApiError::BatchTooLarge(_) => "batch_too_large",
            // A batch is refused with the code of its first bad log, so a one-log batch
            // reads like a single ingest.
            ApiError::BatchRejected { errors } => {
                errors.first().map_or("invalid_field", |e| e.code)
            }
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::QuotaExceeded { .. } => "quota_exceeded",
            ApiError::Backpressure { .. } => "backpressure",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal => "internal",
        }
    }

    /// Seconds for the `Retry-After` header, where the status calls for one.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after, .. }
            | ApiError::QuotaExceeded { retry_after, .. }
            | ApiError::Backpressure { retry_after, .. }
            | ApiError::Unavailable { retry_after, .. } => Some((*retry_after).max(1)),
            _ => None,
        }
    }

    /// The `Allow` header of a 405.
    pub fn allow(&self) -> Option<&'static str> {
        match self {
            ApiError::MethodNotAllowed { allow } => Some(allow),
            _ => None,
        }
    }

    /// The JSON body: `{"error": {"code", "message", "details"}}`, plus the batch fields
    /// (`accepted`, `rejected`, `ids`, `errors`) when a whole batch was refused.
    pub fn body(&self) -> Value {
        let items = match self {
            ApiError::BatchRejected { errors } | ApiError::QuotaExceeded { errors, .. } => {
                Some(errors.iter().map(ItemError::to_json).collect::<Vec<_>>())
            }
            _ => None,
        };
        let details = match (self, &items) {
            (ApiError::InvalidField { details, .. }, _) => details.clone(),
            (_, Some(items)) => items.clone(),
            _ => Vec::new(),
        };
        let mut body = json!({"error": {
            "code": self.code(),
            "message": self.to_string(),
            "details": details,
        }});
        if let Some(items) = items {
            body["accepted"] = json!(0);
            body["rejected"] = json!(items.len());
            body["ids"] = json!([]);
            body["errors"] = Value::Array(items);
        }
        body
    }
}

/// The one place where engine failures become HTTP answers. Storage faults are the server's,
/// not the client's, so they answer 503 (retry later) and their detail goes to the log only.
impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e {
            EngineError::Backpressure(why) => ApiError::Backpressure {
                message: format!("ingest queue is full, retry later ({why})"),
                retry_after: 1,
            },
            EngineError::Invalid(why) => ApiError::InvalidQuery(why.to_string()),
            EngineError::Unavailable(why) => {
                tracing::error!(error = %why, "engine component unavailable");
                ApiError::unavailable(&why, 5)
            }
            EngineError::Internal(why) => {
                tracing::error!(error = %why, "engine invariant broken");
                ApiError::Internal
            }
            EngineError::UnknownProject(_) => ApiError::not_found("project"),
            EngineError::Closed => ApiError::unavailable("the server is shutting down", 5),
            EngineError::StorageFull(why) => {
                tracing::error!(error = %why, "storage full");
                ApiError::unavailable("storage is full; nothing was stored", 30)
            }
            EngineError::ReadOnly(why) => {
                tracing::error!(error = %why, "engine is read-only");
                ApiError::unavailable("storage is read-only after a write failure", 60)
            }
            e @ (EngineError::Corrupt { .. }
            | EngineError::Io { .. }
            | EngineError::Catalog(_)
            | EngineError::CatalogRecord { .. }) => {
                tracing::error!(error = %e, "storage error");
                ApiError::unavailable("storage error; retry later", 5)
            }
        }
    }
}

/// Metadata (redb) failures: the server's fault, so 503 like other storage faults.
impl From<crate::meta::MetaError> for ApiError {
    fn from(e: crate::meta::MetaError) -> ApiError {
        tracing::error!(error = %e, "metadata store error");
        ApiError::unavailable("metadata store error; retry later", 5)
    }
}

impl From<crate::rejected::RejectedError> for ApiError {
    fn from(e: crate::rejected::RejectedError) -> ApiError {
        tracing::error!(error = %e, "rejected-logs store error");
        ApiError::unavailable("rejected-logs store error; retry later", 5)
    }
}

/// A task that ran blocking work panicked or was cancelled: a server bug.
impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        tracing::error!(error = %e, "blocking task failed");
        ApiError::Internal
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod mapping_tests {
    use super::*;
    use ledger_engine::{Backpressure, Invalid};

    #[test]
    fn engine_faults_are_the_servers_and_only_bad_input_is_the_clients() {
        let cases = [
            (EngineError::Invalid(Invalid::Limit { max: 1000 }), 400),
            (
                EngineError::Unavailable("metrics are unavailable".into()),
                503,
            ),
            (EngineError::Internal("block 9 out of range".into()), 500),
            (
                EngineError::Backpressure(Backpressure::QueueDepth {
                    depth: 10,
                    incoming: 5,
                    limit: 12,
                }),
                503,
            ),
            (EngineError::ReadOnly("fsync failed".into()), 503),
        ];
        for (e, status) in cases {
            let what = e.to_string();
            assert_eq!(ApiError::from(e).status(), status, "{what}");
        }
    }
}
