-- wrk script: POST the same batch body (benches/http/overload.sh writes it) over and over,
-- with no backoff, and report acknowledged logs per second (2xx answers × logs per batch).
-- Environment: LEDGER_KEY (an ingest key), LEDGER_BATCH (the body file), LEDGER_BATCH_LOGS.
local f = assert(io.open(os.getenv("LEDGER_BATCH"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/x-ndjson"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("LEDGER_KEY")

function done(summary, latency, requests)
  local logs = tonumber(os.getenv("LEDGER_BATCH_LOGS"))
  local secs = summary.duration / 1e6
  local refused = summary.errors.status
  local ok = summary.requests - refused
  io.write(string.format(
    "wrk: %d requests, %d refused (non-2xx), %d socket errors; acked %.0f logs/s\n",
    summary.requests, refused,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    ok * logs / secs))
end
