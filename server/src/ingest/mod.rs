//! The ingest pipeline's stages, each its own module so another front door (OTLP, `_bulk`)
//! can reuse the rest: `body` (size limits, decompression) → `parse` (framing into logs) →
//! `validate` (the Log schema into `NewLog`). Appending is the route's job.

mod attributes;
pub mod body;
pub mod elastic;
mod log_object;
pub mod loki;
pub mod otlp;
pub mod parse;
pub mod pipeline;
pub mod validate;
