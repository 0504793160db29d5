-- The classic design's log table: PostgreSQL 15, one row per log, with the indexes the
-- /logs filters, the id lookup, the error grouping and full-text search need. Used by
-- benches/classic/run.sh as the baseline Ledger's ingest is compared with.
CREATE TABLE logs (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id        bigint NOT NULL DEFAULT 1,
    timestamp         timestamptz NOT NULL,
    ingested_at       timestamptz NOT NULL DEFAULT now(),
    level             text NOT NULL,
    log_type          text NOT NULL,
    importance        text NOT NULL,
    message           text,
    error_type        text,
    error_message     text,
    stack_trace       text,
    service           text,
    source            text,
    environment       text,
    release           text,
    platform          text,
    language          text,
    trace_id          text,
    span_id           text,
    attributes        jsonb,
    error_fingerprint text
);
CREATE INDEX logs_project_time ON logs (project_id, timestamp DESC);
CREATE INDEX logs_project_level_time ON logs (project_id, level, timestamp DESC);
CREATE INDEX logs_project_service_time ON logs (project_id, service, timestamp DESC);
CREATE INDEX logs_project_fingerprint_time ON logs (project_id, error_fingerprint, timestamp DESC)
    WHERE error_fingerprint IS NOT NULL;
CREATE INDEX logs_trace ON logs (trace_id);
CREATE INDEX logs_message_fts ON logs USING gin (to_tsvector('simple', message));
