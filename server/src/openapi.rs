//! The OpenAPI 3.1 document of every route (`GET /api/v1/openapi.json`, rendered by
//! `GET /docs`). Built once from this file; `router::ROUTES` is the other half, and the
//! tests check that the two list exactly the same operations.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

/// The document as JSON text.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| build().to_string())
}

/// Who may call an operation.
#[derive(Clone, Copy)]
enum Auth {
    None,
    /// A session token (Bearer JWT).
    Session,
    /// An API key (Bearer, `X-API-Key`), or a session token with `project_id`.
    Query,
    /// An API key with the `ingest` scope, in any shipper's form.
    Ingest,
    /// `GET /`: an API key as for ingest (Elasticsearch clients), or none (a browser gets
    /// the console).
    IngestOrBrowser,
}

fn security(a: Auth) -> Value {
    match a {
        Auth::None => json!([]),
        Auth::Session => json!([{"bearer": []}]),
        Auth::Query => json!([{"bearer": []}, {"apiKeyHeader": []}]),
        Auth::Ingest => {
            json!([{"bearer": []}, {"apiKeyHeader": []}, {"basic": []}, {"elasticApiKey": []}])
        }
        Auth::IngestOrBrowser => {
            json!([{"bearer": []}, {"apiKeyHeader": []}, {"basic": []}, {"elasticApiKey": []}, {}])
        }
    }
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn json_body(schema: Value) -> Value {
    json!({"content": {"application/json": {"schema": schema}}})
}

fn answer(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description,
           "schema": {"type": "string"}})
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description,
           "schema": schema})
}

fn project_path() -> Value {
    path_param("project_id", "The project's id (16 hex digits).")
}

fn project_id_query() -> Value {
    query_param(
        "project_id",
        "The project, when the credential is a session token.",
        json!({"type": "string"}),
    )
}

/// The filters of `/logs`, shared by search and tail.
fn filters() -> Vec<Value> {
    let s = || json!({"type": "string"});
    let mut v = vec![
        project_id_query(),
        query_param(
            "start_time",
            "RFC 3339; logs at or after it.",
            json!({"type": "string", "format": "date-time"}),
        ),
        query_param(
            "end_time",
            "RFC 3339; logs before it.",
            json!({"type": "string", "format": "date-time"}),
        ),
        query_param("level", "Comma list of levels.", s()),
        query_param("log_type", "Comma list of log types.", s()),
        query_param("importance", "Comma list of importances.", s()),
    ];
    for f in [
        "environment",
        "service",
        "release",
        "error_fingerprint",
        "error_type",
        "source",
        "platform",
        "language",
        "trace_id",
        "span_id",
    ] {
        v.push(query_param(f, "Exact match on the field.", s()));
    }
    v
}

fn paging() -> Vec<Value> {
    vec![
        query_param(
            "order",
            "By timestamp: desc (default) or asc.",
            json!({"type": "string", "enum": ["desc", "asc"]}),
        ),
        query_param(
            "limit",
            "Page size.",
            json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
        ),
        query_param(
            "offset",
            "Logs skipped.",
            json!({"type": "integer", "minimum": 0, "maximum": 10000}),
        ),
        query_param(
            "cursor",
            "next_cursor of the previous page.",
            json!({"type": "string"}),
        ),
    ]
}

fn window(default_hours: u32, extra: Vec<Value>) -> Vec<Value> {
    let mut v = vec![
        project_id_query(),
        query_param(
            "hours",
            "How far back from now.",
            json!({"type": "integer", "minimum": 1, "default": default_hours}),
        ),
    ];
    v.extend(extra);
    v
}

fn bucket_param(default: &str) -> Value {
    query_param(
        "bucket",
        "Bucket size.",
        json!({"type": "string", "enum": ["1m", "5m", "15m", "1h", "1d"], "default": default}),
    )
}

fn limit_param(default: u32) -> Value {
    query_param(
        "limit",
        "How many.",
        json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": default}),
    )
}

/// One operation: its summary, tag, who may call it, parameters, request body and
/// successful answers. Every operation also documents the error shape as its default.
struct Op {
    summary: &'static str,
    tag: &'static str,
    auth: Auth,
    params: Vec<Value>,
    body: Option<Value>,
    ok: Vec<(&'static str, Value)>,
    /// The answer of any other status (default: the error shape).
    other: Option<Value>,
}

impl Op {
    fn new(summary: &'static str, tag: &'static str, auth: Auth) -> Op {
        Op {
            summary,
            tag,
            auth,
            params: Vec::new(),
            body: None,
            ok: Vec::new(),
            other: None,
        }
    }
    fn params(mut self, p: Vec<Value>) -> Op {
        self.params = p;
        self
    }
    fn body(mut self, b: Value) -> Op {
        self.body = Some(b);
        self
    }
    fn ok(mut self, status: &'static str, a: Value) -> Op {
        self.ok.push((status, a));
        self
    }
    fn other(mut self, a: Value) -> Op {
        self.other = Some(a);
        self
    }
    fn render(self, id: String) -> Value {
        let mut responses = Map::new();
        for (status, a) in self.ok {
            responses.insert(status.into(), a);
        }
        responses.insert(
            "default".into(),
            self.other.unwrap_or_else(|| {
                answer(
                    "An error: 4xx for the client's mistakes, 503 with Retry-After when the server cannot take it now.",
                    schema_ref("Error"),
                )
            }),
        );
        let mut op = json!({
            "operationId": id,
            "summary": self.summary,
            "tags": [self.tag],
            "security": security(self.auth),
            "responses": responses,
        });
        if !self.params.is_empty() {
            op["parameters"] = Value::Array(self.params);
        }
        if let Some(b) = self.body {
            op["requestBody"] = b;
        }
        op
    }
}

fn no_content(description: &str) -> Value {
    json!({"description": description})
}

/// Every operation, by path and method.
fn operations() -> Vec<(&'static str, &'static str, Op)> {
    let list = |item: &str, schema: Value| json!({"type": "object", "required": [item], "properties": {item: {"type": "array", "items": schema}}});
    let page = |item: &str, schema: Value| {
        json!({"type": "object", "required": [item, "next_cursor"], "properties": {
            item: {"type": "array", "items": schema},
            "next_cursor": {"type": ["string", "null"]}}})
    };
    let logs_page = page("logs", schema_ref("Log"));
    let mut search_page = logs_page.clone();
    search_page["properties"]["partial"] = json!({"type": "boolean"});
    let mut logs_params = filters();
    logs_params.extend(paging());
    let mut search_params = vec![query_param(
        "q",
        "The search query (words, \"phrases\", field:value, OR, NOT, regex).",
        json!({"type": "string"}),
    )];
    search_params[0]["required"] = json!(true);
    search_params.extend(filters());
    search_params.extend(paging());
    let mut tail_params = vec![query_param(
        "q",
        "A search query the tailed logs must match.",
        json!({"type": "string"}),
    )];
    tail_params.extend(filters());
    tail_params.push(query_param(
        "last_event_id",
        "Resume after this event id (also the Last-Event-ID header).",
        json!({"type": "string"}),
    ));
    let es_error = answer(
        "An error in Elasticsearch's shape.",
        json!({"type": "object"}),
    );
    let ndjson_body = json!({"required": true, "content": {
        "application/x-ndjson": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": "string"}},
        "application/vnd.elasticsearch+x-ndjson": {"schema": {"type": "string"}}}});
    let html = |d: &str| json!({"description": d, "content": {"text/html": {"schema": {"type": "string"}}}});
    vec![
        ("/health", "get", Op::new("Liveness", "operations", Auth::None)
            .ok("200", answer("Serving.", json!({"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}})))),
        ("/health/deep", "get", Op::new("Readiness of every part (engine, WAL, index, metadata)", "operations", Auth::None)
            .ok("200", answer("Every part is healthy.", json!({"type": "object"})))
            .other(answer("A part is unhealthy (503), with the same detail.", json!({"type": "object"})))),
        ("/metrics", "get", Op::new("Prometheus metrics", "operations", Auth::None)
            .ok("200", json!({"description": "Prometheus text exposition; OpenMetrics when the Accept header asks for application/openmetrics-text (same samples).", "content": {"text/plain": {"schema": {"type": "string"}}, "application/openmetrics-text": {"schema": {"type": "string"}}}}))),
        ("/api/v1/auth/register", "post", Op::new("Create an account", "accounts", Auth::None)
            .body(json_body(schema_ref("Credentials")))
            .ok("201", answer("The account and a session token.", schema_ref("Session")))),
        ("/api/v1/auth/login", "post", Op::new("Sign in", "accounts", Auth::None)
            .body(json_body(schema_ref("Credentials")))
            .ok("200", answer("A session token.", schema_ref("Session")))),
        ("/api/v1/auth/me", "get", Op::new("The signed-in account", "accounts", Auth::Session)
            .ok("200", answer("The account.", json!({"type": "object", "required": ["account_id", "email", "created_at"], "properties": {
                "account_id": {"type": "string"}, "email": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"}}})))),
        ("/api/v1/audit", "get", Op::new("The account's audit log, newest first", "accounts", Auth::Session)
            .params(vec![limit_param(100), query_param("cursor", "next_cursor of the previous page.", json!({"type": "string"}))])
            .ok("200", answer("A page of events.", page("events", schema_ref("AuditEvent"))))),
        ("/api/v1/projects", "get", Op::new("Your projects", "projects", Auth::Session)
            .ok("200", answer("Every project the account owns.", list("projects", schema_ref("Project"))))),
        ("/api/v1/projects", "post", Op::new("Create a project", "projects", Auth::Session)
            .body(json_body(schema_ref("ProjectInput")))
            .ok("201", answer("The project.", schema_ref("Project")))),
        ("/api/v1/projects/{project_id}", "get", Op::new("A project", "projects", Auth::Session)
            .params(vec![project_path()])
            .ok("200", answer("The project.", schema_ref("Project")))),
        ("/api/v1/projects/{project_id}", "patch", Op::new("Change a project's name or limits", "projects", Auth::Session)
            .params(vec![project_path()])
            .body(json_body(schema_ref("ProjectInput")))
            .ok("200", answer("The project.", schema_ref("Project")))),
        ("/api/v1/projects/{project_id}", "delete", Op::new("Delete a project, its logs, index and keys", "projects", Auth::Session)
            .params(vec![project_path()])
            .ok("204", no_content("Deleted."))),
        ("/api/v1/projects/{project_id}/keys", "get", Op::new("A project's API keys", "keys", Auth::Session)
            .params(vec![project_path()])
            .ok("200", answer("The keys (never the key itself).", list("keys", schema_ref("Key"))))),
        ("/api/v1/projects/{project_id}/keys", "post", Op::new("Create an API key (shown once)", "keys", Auth::Session)
            .params(vec![project_path()])
            .body(json_body(json!({"type": "object", "required": ["name", "scopes"], "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "scopes": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": ["ingest", "query"]}}}})))
            .ok("201", answer("The key, with its secret this once.", schema_ref("NewKey")))),
        ("/api/v1/projects/{project_id}/keys/{key_id}", "delete", Op::new("Revoke an API key", "keys", Auth::Session)
            .params(vec![project_path(), path_param("key_id", "The key's id.")])
            .ok("204", no_content("Revoked."))),
        ("/api/v1/projects/{project_id}/rejected", "get", Op::new("Log items ingest refused one by one, newest first", "projects", Auth::Session)
            .params(vec![project_path(), limit_param(100), query_param("cursor", "next_cursor of the previous page.", json!({"type": "string"}))])
            .ok("200", answer("A page of refused items.", page("rejected", schema_ref("RejectedItem"))))),
        ("/api/v1/projects/{project_id}/deletions", "get", Op::new("A project's deletions, newest first", "deletions", Auth::Session)
            .params(vec![project_path()])
            .ok("200", answer("The deletions.", list("deletions", schema_ref("Deletion"))))),
        ("/api/v1/projects/{project_id}/deletions", "post", Op::new("Delete logs by query (asynchronous)", "deletions", Auth::Session)
            .params(vec![project_path()])
            .body(json_body(schema_ref("DeletionRequest")))
            .ok("202", answer("Started.", json!({"type": "object", "required": ["id", "state", "created_at"], "properties": {
                "id": {"type": "string"}, "state": {"type": "string", "enum": ["running"]},
                "created_at": {"type": "string", "format": "date-time"}}})))),
        ("/api/v1/projects/{project_id}/deletions/{deletion_id}", "get", Op::new("Where a deletion stands", "deletions", Auth::Session)
            .params(vec![project_path(), path_param("deletion_id", "The deletion's id.")])
            .ok("200", answer("The deletion.", schema_ref("Deletion")))),
        ("/api/v1/ingest/single", "post", Op::new("Ingest one log", "ingest", Auth::Ingest)
            .body(json!({"required": true, "content": {"application/json": {"schema": schema_ref("NewLog")}}}))
            .ok("202", answer("Durable and readable.", json!({"type": "object", "required": ["id", "ingested_at"], "properties": {
                "id": {"type": "string"}, "ingested_at": {"type": "string", "format": "date-time"}}})))),
        ("/api/v1/ingest/batch", "post", Op::new("Ingest up to 1,000 logs", "ingest", Auth::Ingest)
            .body(json!({"required": true, "content": {
                "application/json": {"schema": {"type": "object", "required": ["logs"], "properties": {
                    "logs": {"type": "array", "minItems": 1, "maxItems": 1000, "items": schema_ref("NewLog")}}}},
                "application/x-ndjson": {"schema": {"type": "string"}}}}))
            .ok("202", answer("At least one log was accepted; each refused one is listed.", schema_ref("BatchResult")))),
        ("/api/v1/queue/depth", "get", Op::new("Logs accepted and not yet sealed", "ingest", Auth::Query)
            .params(vec![project_id_query()])
            .ok("200", answer("The depth and its limit.", json!({"type": "object", "required": ["depth", "limit"], "properties": {
                "depth": {"type": "integer"}, "limit": {"type": "integer"}}})))),
        ("/api/v1/logs", "get", Op::new("Logs, newest first, with filters", "query", Auth::Query)
            .params(logs_params)
            .ok("200", answer("A page of logs.", logs_page))),
        ("/api/v1/logs/search", "get", Op::new("Full-text search", "query", Auth::Query)
            .params(search_params)
            .ok("200", answer("A page of matching logs; partial when a budget ran out.", search_page))),
        ("/api/v1/logs/tail", "get", Op::new("Follow new logs (server-sent events)", "query", Auth::Query)
            .params(tail_params)
            .ok("200", json!({"description": "An event stream: `event: log` with a stored log as data, `event: overflow` when the reader fell behind, keep-alive comments.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}}}))),
        ("/api/v1/logs/patterns", "get", Op::new("Message patterns, most frequent first", "metrics", Auth::Query)
            .params(window(24, vec![limit_param(50)]))
            .ok("200", answer("The patterns.", list("patterns", schema_ref("Pattern"))))),
        ("/api/v1/logs/{id}", "get", Op::new("One log by id", "query", Auth::Query)
            .params(vec![path_param("id", "The log's id."), project_id_query()])
            .ok("200", answer("The log.", schema_ref("Log")))),
        ("/api/v1/metrics/error-rate", "get", Op::new("Errors per bucket", "metrics", Auth::Query)
            .params(window(24, vec![bucket_param("5m")]))
            .ok("200", answer("The buckets, oldest first.", list("buckets", json!({"type": "object", "required": ["start", "total", "errors", "rate"], "properties": {
                "start": {"type": "string", "format": "date-time"}, "total": {"type": "integer"},
                "errors": {"type": "integer"}, "rate": {"type": "number"}}}))))),
        ("/api/v1/metrics/log-volume", "get", Op::new("Logs per bucket, by level", "metrics", Auth::Query)
            .params(window(24, vec![bucket_param("1h")]))
            .ok("200", answer("The buckets, oldest first.", list("buckets", json!({"type": "object", "required": ["start", "total", "by_level"], "properties": {
                "start": {"type": "string", "format": "date-time"}, "total": {"type": "integer"},
                "by_level": schema_ref("LevelCounts")}}))))),
        ("/api/v1/metrics/top-errors", "get", Op::new("Error groups, most frequent first", "metrics", Auth::Query)
            .params(window(24, vec![limit_param(50)]))
            .ok("200", answer("The groups.", list("errors", schema_ref("TopError"))))),
        ("/api/v1/metrics/usage-stats", "get", Op::new("Daily usage against the quota", "metrics", Auth::Query)
            .params(vec![project_id_query(), query_param("days", "How many days.", json!({"type": "integer", "minimum": 1, "default": 30}))])
            .ok("200", answer("Usage per day and today against the quota.", json!({"type": "object", "required": ["days", "today"], "properties": {
                "days": {"type": "array", "items": {"type": "object", "required": ["date", "logs", "bytes"], "properties": {
                    "date": {"type": "string"}, "logs": {"type": "integer"}, "bytes": {"type": "integer"}}}},
                "today": {"type": "object", "required": ["logs", "daily_quota", "remaining"], "properties": {
                    "logs": {"type": "integer"}, "daily_quota": {"type": "integer"}, "remaining": {"type": "integer"}}}}})))),
        ("/api/v1/openapi.json", "get", Op::new("This document", "operations", Auth::None)
            .ok("200", answer("OpenAPI 3.1.", json!({"type": "object"})))),
        ("/docs", "get", Op::new("Interactive API documentation", "operations", Auth::None)
            .ok("200", html("The documentation page."))),
        ("/docs/{asset}", "get", Op::new("The documentation page's script and style", "operations", Auth::None)
            .params(vec![path_param("asset", "A file of the page.")])
            .ok("200", json!({"description": "The file.", "content": {
                "text/javascript": {"schema": {"type": "string"}}, "text/css": {"schema": {"type": "string"}}}}))),
        ("/", "get", Op::new("Elasticsearch node info for clients; the web console for browsers", "shippers", Auth::IngestOrBrowser)
            .ok("200", json!({"description": "Node info (JSON), or the console page when the Accept header asks for HTML.", "content": {
                "application/json": {"schema": {"type": "object"}}, "text/html": {"schema": {"type": "string"}}}}))
            .other(es_error.clone())),
        ("/", "head", Op::new("Elasticsearch ping", "shippers", Auth::Ingest)
            .ok("200", no_content("Alive."))
            .other(no_content("An error."))),
        ("/_bulk", "post", Op::new("Elasticsearch bulk", "shippers", Auth::Ingest)
            .body(ndjson_body.clone())
            .ok("200", answer("Per-item results.", schema_ref("EsBulk")))
            .other(es_error.clone())),
        ("/_bulk", "put", Op::new("Elasticsearch bulk (PUT)", "shippers", Auth::Ingest)
            .body(ndjson_body.clone())
            .ok("200", answer("Per-item results.", schema_ref("EsBulk")))
            .other(es_error.clone())),
        ("/{index}/_bulk", "post", Op::new("Elasticsearch bulk into an index", "shippers", Auth::Ingest)
            .params(vec![path_param(
                "index",
                "The index name: the `source` of documents whose action names no `_index`.",
            )])
            .body(ndjson_body.clone())
            .ok("200", answer("Per-item results.", schema_ref("EsBulk")))
            .other(es_error.clone())),
        ("/{index}/_bulk", "put", Op::new("Elasticsearch bulk into an index (PUT)", "shippers", Auth::Ingest)
            .params(vec![path_param(
                "index",
                "The index name: the `source` of documents whose action names no `_index`.",
            )])
            .body(ndjson_body)
            .ok("200", answer("Per-item results.", schema_ref("EsBulk")))
            .other(es_error.clone())),
        ("/_license", "get", Op::new("Elasticsearch licence (basic, active), for shippers that check it", "shippers", Auth::Ingest)
            .ok("200", answer("The licence.", json!({"type": "object", "required": ["license"]})))
            .other(es_error)),
        ("/_license", "head", Op::new("Elasticsearch licence check", "shippers", Auth::Ingest)
            .ok("200", no_content("Present."))
            .other(no_content("An error."))),
        ("/loki/api/v1/push", "post", Op::new("Loki push (JSON or snappy protobuf)", "shippers", Auth::Ingest)
            .body(json!({"required": true, "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}}}}))
            .ok("204", no_content("Stored."))
            .other(json!({"description": "An error as text, as Loki answers.", "content": {
                "text/plain": {"schema": {"type": "string"}}, "application/json": {"schema": schema_ref("Error")}}}))),
        ("/otlp/v1/logs", "post", Op::new("OpenTelemetry logs (OTLP/HTTP, protobuf or JSON)", "shippers", Auth::Ingest)
            .body(json!({"required": true, "content": {
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object"}}}}))
            .ok("200", json!({"description": "Export response (partial success when records were refused).", "content": {
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object"}}}}))
            .other(json!({"description": "A google.rpc.Status in the request's encoding.", "content": {
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object"}}}}))),
        ("/ui", "get", Op::new("The web console", "console", Auth::None).ok("200", html("The console page."))),
        ("/ui", "head", Op::new("The web console (headers)", "console", Auth::None).ok("200", no_content("The console page's headers."))),
        ("/ui/{page}", "get", Op::new("A page or asset of the web console", "console", Auth::None)
            .params(vec![path_param("page", "Any path under /ui/.")])
            .ok("200", json!({"description": "The console page or one of its assets.", "content": {
                "text/html": {"schema": {"type": "string"}}, "text/javascript": {"schema": {"type": "string"}},
                "text/css": {"schema": {"type": "string"}}}}))),
        ("/ui/{page}", "head", Op::new("A page or asset of the web console (headers)", "console", Auth::None)
            .params(vec![path_param("page", "Any path under /ui/.")])
            .ok("200", no_content("Its headers."))),
    ]
}

fn schemas() -> Value {
    let ts = || json!({"type": "string", "format": "date-time"});
    let s = || json!({"type": "string"});
    let int = || json!({"type": "integer"});
    let level =
        json!({"type": "string", "enum": ["debug", "info", "warning", "error", "critical"]});
    let log_fields = json!({
        "timestamp": ts(), "level": level, "log_type": {"type": "string", "enum": ["console", "logger", "exception", "custom"]},
        "importance": {"type": "string", "enum": ["low", "standard", "high"]},
        "message": {"type": "string", "maxLength": 10000}, "error_type": {"type": "string", "maxLength": 1000},
        "error_message": {"type": "string", "maxLength": 10000}, "stack_trace": {"type": "string", "maxLength": 100000},
        "service": {"type": "string", "maxLength": 256}, "source": {"type": "string", "maxLength": 256},
        "environment": {"type": "string", "maxLength": 256}, "release": {"type": "string", "maxLength": 256},
        "platform": {"type": "string", "maxLength": 256}, "language": {"type": "string", "maxLength": 256},
        "trace_id": {"type": "string", "pattern": "^[0-9a-fA-F]{1,128}$"},
        "span_id": {"type": "string", "pattern": "^[0-9a-fA-F]{1,128}$"},
        "attributes": {"type": "object"}
    });
    let mut stored_fields = log_fields.clone();
    for (k, v) in [
        ("id", s()),
        ("project_id", s()),
        ("ingested_at", ts()),
        ("error_fingerprint", s()),
    ] {
        stored_fields[k] = v;
    }
    stored_fields["level"] = json!({"type": "string"});
    let limits = json!({
        "name": {"type": "string"}, "retention_days": {"type": "integer", "minimum": 1},
        "daily_quota": {"type": "integer", "minimum": 1}, "rate_limit_per_minute": {"type": "integer", "minimum": 1},
        "rate_limit_per_hour": {"type": "integer", "minimum": 1}, "max_queue_depth": {"type": "integer", "minimum": 1}
    });
    let mut project = limits.clone();
    project["id"] = s();
    project["created_at"] = ts();
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string", "description": "invalid_json, invalid_field, missing_field, invalid_query, batch_too_large, unauthenticated, forbidden, not_found, method_not_allowed, conflict, payload_too_large, unsupported_media_type, rate_limited, quota_exceeded, backpressure, unavailable"},
                "message": s(),
                "details": {"type": "array"}}}}},
        "Credentials": {"type": "object", "required": ["email", "password"], "properties": {
            "email": {"type": "string", "format": "email"}, "password": {"type": "string", "minLength": 10}}},
        "Session": {"type": "object", "required": ["account_id", "token", "expires_at"], "properties": {
            "account_id": s(), "token": s(), "expires_at": ts()}},
        "AuditEvent": {"type": "object", "required": ["at", "action"], "properties": {
            "at": ts(), "action": s(), "project_id": {"type": ["string", "null"]},
            "key_id": {"type": ["string", "null"]}, "source": s()}},
        "ProjectInput": {"type": "object", "properties": limits},
        "Project": {"type": "object", "required": ["id", "name", "created_at", "retention_days", "daily_quota",
            "rate_limit_per_minute", "rate_limit_per_hour", "max_queue_depth"], "properties": project},
        "Key": {"type": "object", "required": ["id", "name", "prefix", "scopes", "created_at"], "properties": {
            "id": s(), "name": s(), "prefix": s(), "scopes": {"type": "array", "items": s()}, "created_at": ts(),
            "last_used_at": {"type": ["string", "null"]}, "revoked_at": {"type": ["string", "null"]}}},
        "NewKey": {"type": "object", "required": ["id", "name", "key", "prefix", "scopes", "created_at"], "properties": {
            "id": s(), "name": s(), "key": s(), "prefix": s(), "scopes": {"type": "array", "items": s()}, "created_at": ts()}},
        "NewLog": {"type": "object", "required": ["timestamp", "level", "log_type", "importance"],
            "additionalProperties": false, "properties": log_fields},
        "Log": {"type": "object", "required": ["id", "project_id", "timestamp", "ingested_at", "level", "log_type", "importance"],
            "properties": stored_fields},
        "ItemError": {"type": "object", "required": ["index", "code", "message"], "properties": {
            "index": int(), "code": s(), "message": s()}},
        "BatchResult": {"type": "object", "required": ["accepted", "rejected", "ids", "errors"], "properties": {
            "accepted": int(), "rejected": int(), "ids": {"type": "array", "items": s()},
            "errors": {"type": "array", "items": schema_ref("ItemError")}}},
        "LevelCounts": {"type": "object", "properties": {
            "debug": int(), "info": int(), "warning": int(), "error": int(), "critical": int()}},
        "TopError": {"type": "object", "required": ["error_fingerprint", "count", "first_seen", "last_seen", "sample_log_id"], "properties": {
            "error_fingerprint": s(), "error_type": {"type": ["string", "null"]}, "error_message": {"type": ["string", "null"]},
            "count": int(), "first_seen": ts(), "last_seen": ts(), "sample_log_id": s()}},
        "Pattern": {"type": "object", "required": ["pattern", "count", "levels", "first_seen", "last_seen", "sample_log_id"], "properties": {
            "pattern": s(), "count": int(), "levels": schema_ref("LevelCounts"), "first_seen": ts(), "last_seen": ts(),
            "sample_log_id": s()}},
        "RejectedItem": {"type": "object", "required": ["at", "route", "index", "code", "message", "raw"], "properties": {
            "at": ts(), "route": s(), "index": int(), "code": s(), "message": s(),
            "raw": {"type": "string", "description": "The item as sent (or as mapped onto the Log schema), cut to 16 KiB."}}},
        "DeletionRequest": {"type": "object", "minProperties": 1, "description": "At least one condition: q, start_time, end_time or a /logs filter (attr.<path> too).",
            "properties": {
                "q": s(), "start_time": ts(), "end_time": ts(),
                "level": {"oneOf": [s(), {"type": "array", "items": s()}]},
                "log_type": {"oneOf": [s(), {"type": "array", "items": s()}]},
                "importance": {"oneOf": [s(), {"type": "array", "items": s()}]},
                "environment": s(), "service": s(), "release": s(), "error_fingerprint": s(), "error_type": s(),
                "source": s(), "platform": s(), "language": s(), "trace_id": s(), "span_id": s()}},
        "Deletion": {"type": "object", "required": ["id", "state", "deleted", "created_at", "finished_at"], "properties": {
            "id": s(), "state": {"type": "string", "enum": ["running", "done", "failed"]}, "deleted": int(),
            "created_at": ts(), "finished_at": {"type": ["string", "null"], "format": "date-time"}, "error": s()}},
        "EsBulk": {"type": "object", "required": ["took", "errors", "items"], "properties": {
            "took": int(), "errors": {"type": "boolean"}, "items": {"type": "array", "items": {"type": "object"}}}}
    })
}

fn build() -> Value {
    let mut paths = Map::new();
    for (path, method, op) in operations() {
        let id = format!(
            "{method}_{}",
            path.trim_matches('/')
                .replace(['/', '-', '.', '{', '}'], "_")
                .trim_matches('_')
        );
        let id = if path == "/" {
            format!("{method}_root")
        } else {
            id
        };
        let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        entry[method] = op.render(id);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Ledger",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A multi-tenant log platform in one binary. Errors always have the shape of `Error`; every answer carries `X-Request-Id`. See docs/api.md in the repository for the full reference.",
            "license": {"name": "MIT OR Apache-2.0", "identifier": "MIT OR Apache-2.0"}
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "accounts"}, {"name": "projects"}, {"name": "keys"}, {"name": "ingest"},
            {"name": "query"}, {"name": "metrics"}, {"name": "deletions"}, {"name": "shippers"},
            {"name": "console"}, {"name": "operations"}
        ],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A session token (from register or login) or an API key (`ledger_…`)."},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "An API key."},
                "basic": {"type": "http", "scheme": "basic", "description": "Any user name, the API key as the password (Fluent Bit, Vector, Logstash)."},
                "elasticApiKey": {"type": "http", "scheme": "ApiKey", "description": "Elasticsearch clients and Filebeat: `Authorization: ApiKey <key>` or `ApiKey base64(<anything>:<key>)`."}
            }
        }
    })
}

/// `(path, METHOD)` of every operation the document describes.
pub fn operations_listed() -> Vec<(String, String)> {
    let doc: Value = serde_json::from_str(document()).unwrap_or_default();
    let mut out = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (p, item) in paths {
            if let Some(ops) = item.as_object() {
                for m in ops.keys() {
                    out.push((p.clone(), m.to_ascii_uppercase()));
                }
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::ROUTES;

    /// The router and the document list exactly the same operations: a route cannot be
    /// added without being described, nor described without existing.
    #[test]
    fn the_document_describes_exactly_the_routes_the_router_serves() {
        let mut served: Vec<(String, String)> = ROUTES
            .iter()
            .flat_map(|(path, methods, _)| {
                // The router's catch-all `{*page}` is OpenAPI's `{page}`.
                let p = path.replace("{*", "{");
                methods
                    .split(", ")
                    .map(move |m| (p.clone(), m.to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect();
        served.sort();
        assert_eq!(served, operations_listed());
    }

    #[test]
    fn every_operation_has_an_id_a_summary_and_answers() {
        let doc: Value = serde_json::from_str(document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut ids = std::collections::HashSet::new();
        for (_, item) in doc["paths"].as_object().unwrap() {
            for (_, op) in item.as_object().unwrap() {
                assert!(ids.insert(op["operationId"].as_str().unwrap().to_owned()));
                assert!(op["summary"].is_string());
                assert!(op["responses"]["default"].is_object());
            }
        }
    }
}
