//! The OpenTelemetry front door on arbitrary bytes: every input goes to both OTLP decoders
//! (`ingest::otlp::decode` as protobuf and as OTLP JSON), and what decodes to
//! `ingest::otlp::map`. Invariants: no panic; decoding then mapping yields exactly one
//! `Mapped` per `LogRecord`, each a log within the schema's limits or a 4xx refusal of that
//! record alone; and a request decoded from JSON, re-encoded as protobuf, decodes and maps
//! the same (the two encodings are one message).
use crate::mapped;

use ledger_server::ingest::otlp::{decode, map, Encoding};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;

fn records(req: &ExportLogsServiceRequest) -> usize {
    req.resource_logs
        .iter()
        .flat_map(|rl| &rl.scope_logs)
        .map(|sl| sl.log_records.len())
        .sum()
}

/// Maps `req` and checks the result; returns which records became logs.
fn map_checked(req: ExportLogsServiceRequest, what: &str) -> Vec<bool> {
    let n = records(&req);
    let out = map(req, mapped::ARRIVAL_US);
    assert_eq!(out.len(), n, "{what}: one Mapped per log record");
    for m in &out {
        mapped::check(m, what);
    }
    out.iter().map(|m| m.log.is_ok()).collect()
}

/// Checks one input; panics on a broken invariant.
pub fn run(data: &[u8]) {
    if let Ok(req) = decode(data, Encoding::Protobuf) {
        map_checked(req, "protobuf");
    }
    if let Ok(req) = decode(data, Encoding::Json) {
        let wire = req.encode_to_vec();
        let again = decode(&wire, Encoding::Protobuf)
            .expect("a request decoded from JSON re-encodes to valid protobuf");
        let from_json = map_checked(req, "json");
        let from_wire = map_checked(again, "json re-encoded as protobuf");
        assert_eq!(from_json, from_wire, "the two encodings map differently");
    }
}
