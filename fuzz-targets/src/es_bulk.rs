//! The Elasticsearch front door on arbitrary bytes: `ingest::elastic::decode` (the `_bulk`
//! NDJSON framing, the action lines and the mapping of every source document), once as
//! `/_bulk` and once as `/{index}/_bulk`, then the answer built from what was decoded.
//! Invariants: no panic; a refused body is a 4xx (400, or 413 past `MAX_ACTIONS`); a decoded
//! body has 1..=`MAX_ACTIONS` actions, and exactly the `index` and `create` ones carry a
//! document, numbered in order, each a log within the schema's limits or a 4xx refusal of
//! that document alone; the answer has one item per action; and a body that decodes without
//! a path index decodes the same with one (the path only fills in a missing `_index`).
use crate::mapped;

use ledger_server::ingest::elastic::{answer, decode, outcomes, Bulk, Op, MAX_ACTIONS};

fn check(bulk: &Bulk, what: &str) {
    assert!(
        (1..=MAX_ACTIONS).contains(&bulk.actions.len()),
        "{what}: {} actions",
        bulk.actions.len()
    );
    let mut next = 0;
    for a in &bulk.actions {
        match a.op {
            Op::Index | Op::Create => {
                assert_eq!(a.item, Some(next), "{what}: documents numbered in order");
                next += 1;
            }
            Op::Delete | Op::Update => assert_eq!(a.item, None, "{what}: {:?} stores", a.op),
        }
    }
    assert_eq!(
        next,
        bulk.items.len(),
        "{what}: one document per index/create"
    );
    for m in &bulk.items {
        mapped::check(m, what);
    }
    // Nothing stored: every document answered as refused, in the Elasticsearch shape.
    let outs = outcomes(bulk.items.len(), Vec::new(), Vec::new());
    // The answer is written as text: whatever the client sent, it must be valid JSON.
    let text = answer(&bulk.actions, &outs, 0);
    let body: serde_json::Value = serde_json::from_slice(&text)
        .unwrap_or_else(|e| panic!("{what}: the answer is not JSON ({e})"));
    assert_eq!(
        body["errors"],
        !bulk.actions.is_empty(),
        "{what}: errors flag"
    );
    let items = body["items"].as_array().expect("the answer lists items");
    assert_eq!(
        items.len(),
        bulk.actions.len(),
        "{what}: one answer item per action"
    );
}

/// Checks one input; panics on a broken invariant.
pub fn run(data: &[u8]) {
    let bare = decode(data, None, mapped::ARRIVAL_US);
    let with_index = decode(data, Some("fuzz-logs"), mapped::ARRIVAL_US);
    for (r, what) in [(&bare, "/_bulk"), (&with_index, "/fuzz-logs/_bulk")] {
        match r {
            Ok(bulk) => check(bulk, what),
            Err(e) => assert!(
                e.status == 400 || e.status == 413,
                "{what}: status {} ({}) for a bad body",
                e.status,
                e.kind
            ),
        }
    }
    if let Ok(bare) = &bare {
        let with_index = with_index
            .as_ref()
            .expect("a path index cannot refuse a body");
        assert_eq!(
            bare.actions, with_index.actions,
            "the path index changed an action"
        );
        let ok = |b: &Bulk| b.items.iter().map(|m| m.log.is_ok()).collect::<Vec<_>>();
        assert_eq!(
            ok(bare),
            ok(with_index),
            "the path index changed a document"
        );
    }
}
