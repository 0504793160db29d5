//! The rejected-logs list: every item an ingest route refused on its own, with its text and
//! reason, newest first, per project, bounded, and kept across restarts.

mod common;

use std::time::{Duration, Instant};

use common::{log, Server, Tenant};
use serde_json::{json, Value};

/// The whole list (following cursors), once it holds at least `want` items.
fn rejected(s: &Server, t: &Tenant, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let r = s.get(
                &format!(
                    "/api/v1/projects/{}/rejected?limit=1000&cursor={cursor}",
                    t.project
                ),
                &t.token,
            );
            assert_eq!(r.status, 200, "{}", r.text());
            let page = r.json();
            all.extend(page["rejected"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = c.to_owned(),
                None => break,
            }
        }
        if all.len() >= want || Instant::now() > deadline {
            return all;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn batch(s: &Server, t: &Tenant, logs: Value) -> Value {
    let r = s.post("/api/v1/ingest/batch", &t.key, &json!({ "logs": logs }));
    assert!(
        r.status == 202 || r.status == 400,
        "{} {}",
        r.status,
        r.text()
    );
    r.json()
}

#[test]
fn refused_items_are_listed_newest_first_with_their_text_and_reason() {
    let s = Server::start(&[]);
    let t = s.tenant("dlq@example.com");
    let mut bad_level = log(1, "bad level");
    bad_level["level"] = json!("loud");
    let mut no_time = log(2, "no time");
    no_time.as_object_mut().unwrap().remove("timestamp");
    let mut ancient = log(3, "ancient");
    ancient["timestamp"] = json!("2001-01-01T00:00:00Z");
    let out = batch(&s, &t, json!([log(0, "fine"), bad_level, no_time, ancient]));
    assert_eq!(out["accepted"], 1);
    assert_eq!(out["rejected"], 3);

    // A single log refused, then an Elasticsearch document that is not an object.
    let mut single = log(4, "single");
    single["importance"] = json!("urgent");
    let r = s.post("/api/v1/ingest/single", &t.key, &single);
    r.expect_error(400, "invalid_field");
    let bulk = "{\"index\":{}}\n[1,2]\n";
    let r = s.req(
        "POST",
        "/app/_bulk",
        &[
            ("authorization", &format!("ApiKey {}", t.key)),
            ("content-type", "application/x-ndjson"),
        ],
        bulk.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // Over the daily quota (one log stored today, room for one more): the item past it is
    // kept with its code...
    let r = s.patch(
        &format!("/api/v1/projects/{}", t.project),
        &t.token,
        &json!({"daily_quota": 2}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.post(
        "/api/v1/ingest/batch",
        &t.key,
        &json!({"logs": [log(5, "fits"), log(6, "over quota")]}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["code"], "quota_exceeded");
    // ...but a request refused whole (429: nothing fits) is not items refused on their own,
    // not even the one that was invalid besides.
    let mut invalid_too = log(7, "refused whole, invalid too");
    invalid_too["level"] = json!("loud");
    let r = s.post(
        "/api/v1/ingest/batch",
        &t.key,
        &json!({"logs": [log(7, "refused whole"), invalid_too]}),
    );
    assert_eq!(r.status, 429, "{}", r.text());
    // A last refused item after it, so that the list is complete once this one is in.
    let mut last = log(8, "last");
    last["level"] = json!("loud");
    s.post("/api/v1/ingest/single", &t.key, &last)
        .expect_error(400, "invalid_field");

    let mut list = rejected(&s, &t, 7);
    assert!(
        list.iter()
            .all(|i| !i["raw"].as_str().unwrap().contains("refused whole")),
        "{list:#?}"
    );
    assert_eq!(list.len(), 7, "{list:#?}");
    assert!(list.remove(0)["raw"].as_str().unwrap().contains("last"));
    let codes: Vec<&str> = list.iter().map(|i| i["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        [
            "quota_exceeded",
            "invalid_field",
            "invalid_field",
            "invalid_field",
            "missing_field",
            "invalid_field"
        ],
        "newest first: {list:#?}"
    );
    let over = &list[0];
    assert_eq!(over["route"], "/api/v1/ingest/batch");
    assert_eq!(over["index"], 1);
    assert!(over["raw"].as_str().unwrap().contains("over quota"));
    assert!(over["at"].as_str().unwrap().ends_with('Z'));
    let es = &list[1];
    assert_eq!(es["route"], "/{index}/_bulk");
    assert_eq!(es["raw"], "[1,2]");
    let single = &list[2];
    assert_eq!(single["route"], "/api/v1/ingest/single");
    assert!(single["message"].as_str().unwrap().contains("importance"));
    assert!(single["raw"].as_str().unwrap().contains("urgent"));
    let ancient = &list[3];
    assert_eq!(ancient["index"], 3);
    assert!(ancient["raw"].as_str().unwrap().contains("ancient"));
    assert!(ancient["message"].as_str().unwrap().contains("timestamp"));
    let no_time = &list[4];
    assert_eq!(no_time["index"], 2);
    assert_eq!(no_time["message"], "timestamp: required");
    let bad_level = &list[5];
    assert_eq!(bad_level["index"], 1);
    let raw: Value = serde_json::from_str(bad_level["raw"].as_str().unwrap()).unwrap();
    assert_eq!(raw["level"], "loud", "the item as sent");

    // Pages follow the cursor without repeats.
    let r = s.get(
        &format!("/api/v1/projects/{}/rejected?limit=4", t.project),
        &t.token,
    );
    let first = r.json();
    assert_eq!(first["rejected"].as_array().unwrap().len(), 4);
    let c = first["next_cursor"].as_str().unwrap();
    let r = s.get(
        &format!("/api/v1/projects/{}/rejected?limit=4&cursor={c}", t.project),
        &t.token,
    );
    let second = r.json();
    assert_eq!(second["rejected"].as_array().unwrap().len(), 3);
    assert!(second["next_cursor"].is_null());
    assert_eq!(second["rejected"][1]["code"], "missing_field");
}

#[test]
fn only_the_owner_reads_the_list_and_bad_parameters_are_400() {
    let s = Server::start(&[]);
    let a = s.tenant("a@example.com");
    let b = s.tenant("b@example.com");
    let path = format!("/api/v1/projects/{}/rejected", a.project);
    s.get(&path, &b.token).expect_error(404, "not_found");
    s.get(&path, &a.key).expect_error(403, "forbidden");
    s.get(&path, "").expect_error(401, "unauthenticated");
    s.get(&format!("{path}?limit=0"), &a.token)
        .expect_error(400, "invalid_query");
    s.get(&format!("{path}?cursor=zz"), &a.token)
        .expect_error(400, "invalid_query");
    s.get(&format!("{path}?color=red"), &a.token)
        .expect_error(400, "invalid_query");
    let r = s.get(&path, &a.token);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"rejected": [], "next_cursor": null}));
}

#[test]
fn the_list_keeps_the_newest_10000_cuts_raw_text_and_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut s = Server::start_in(&dir, &[]);
    let t = s.tenant("many@example.com");
    // 10,500 refused items (an unknown field each), numbered in the order they are sent.
    for b in 0..11 {
        let logs: Vec<Value> = (0..1000)
            .filter(|i| b * 1000 + i < 10_500)
            .map(|i| {
                let mut l = log(i, "x");
                l["nope"] = json!(b * 1000 + i);
                l
            })
            .collect();
        if logs.is_empty() {
            break;
        }
        batch(&s, &t, json!(logs));
    }
    // One item larger than the 16 KiB the list keeps of it.
    let big = log(0, &"é".repeat(12_000));
    batch(&s, &t, json!([big]));
    let list = rejected(&s, &t, 10_000);
    assert_eq!(list.len(), 10_000);
    assert!(s.stop().success());

    let s = Server::start_in(&dir, &[]);
    let list = rejected(&s, &t, 10_000);
    assert_eq!(list.len(), 10_000, "kept across the restart");
    let raw = list[0]["raw"].as_str().unwrap();
    assert!(
        raw.len() <= 16 * 1024 && raw.len() > 16 * 1024 - 4,
        "{}",
        raw.len()
    );
    assert!(raw.starts_with('{') && raw.contains("éé"));
    // The oldest 501 went (10,501 were refused); the newest are all there, newest first.
    let numbers: Vec<u64> = list[1..]
        .iter()
        .map(|i| {
            let raw: Value = serde_json::from_str(i["raw"].as_str().unwrap()).unwrap();
            raw["nope"].as_u64().unwrap()
        })
        .collect();
    let expected: Vec<u64> = (501..10_500).rev().collect();
    assert_eq!(numbers, expected);
}

#[test]
fn an_item_is_listed_as_soon_as_its_answer_is_sent() {
    let s = Server::start(&[]);
    let t = s.tenant("at-once@example.com");
    let path = format!("/api/v1/projects/{}/rejected?limit=1000", t.project);
    for n in 1..=20 {
        let mut bad = log(n, "refused");
        bad["level"] = json!("loud");
        s.post("/api/v1/ingest/single", &t.key, &bad)
            .expect_error(400, "invalid_field");
        // One read, no retry: the list holds every item refused before it.
        let r = s.get(&path, &t.token);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["rejected"].as_array().unwrap().len(), n as usize);
    }
}
