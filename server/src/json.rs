//! Reading JSON request bodies: serde errors mapped to API codes, and typed field getters
//! that name the field in every error.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// Maps a serde_json error: broken JSON is `invalid_json`, a missing field `missing_field`,
/// anything else about the shape `invalid_field`.
pub fn classify(e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let text = e.to_string();
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::InvalidJson(format!("body is not valid JSON: {text}"))
        }
        Category::Data if text.starts_with("missing field") => ApiError::MissingField(text),
        Category::Data => ApiError::invalid_field(text),
    }
}

/// Parses a body that must be one JSON object.
pub fn object(body: &[u8]) -> ApiResult<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body).map_err(classify)? {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::invalid_field("body: expected a JSON object")),
    }
}

/// Refuses fields outside `allowed`, so typos surface instead of being ignored.
pub fn only(map: &Map<String, Value>, allowed: &[&str]) -> ApiResult<()> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid_field(format!(
            "{k}: unknown field (expected one of {})",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// An optional string field (`null` counts as absent).
pub fn opt_str(map: &Map<String, Value>, name: &str) -> ApiResult<Option<String>> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid_field(format!(
            "{name}: expected a string"
        ))),
    }
}

/// A required string field.
pub fn req_str(map: &Map<String, Value>, name: &str) -> ApiResult<String> {
    opt_str(map, name)?.ok_or_else(|| ApiError::MissingField(format!("{name}: required")))
}

/// An optional whole number in `min..=max`.
pub fn opt_u64(map: &Map<String, Value>, name: &str, min: u64, max: u64) -> ApiResult<Option<u64>> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::invalid_field(format!(
                "{name}: expected a whole number from {min} to {max}"
            ))),
        },
    }
}
