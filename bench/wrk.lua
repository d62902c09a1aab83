-- wrk script for the City benchmark: one request shape from the environment, one JSON line of results.
--
--   BENCH_METHOD        GET or POST (default GET)
--   BENCH_BODY          request body (POST), sent as application/json
--   BENCH_TOKEN         bearer credential, if any
--   BENCH_HEADERS       more request headers, one `Name: value` a line (e.g. Portkey's routing headers)
--   BENCH_MAX_REQUESTS  stop after this many responses (per wrk thread), if set
--
-- The path comes from the URL given to wrk. done() prints:
--   BENCH_RESULT {"requests":…, "seconds":…, "rps":…, "p50_ms":…, "p99_ms":…, "non_2xx":…, "socket_errors":…}

local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local token = os.getenv("BENCH_TOKEN")
local max_requests = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "")
local extra_headers = os.getenv("BENCH_HEADERS") or ""

wrk.method = method
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

for line in extra_headers:gmatch("[^\r\n]+") do
  local name, value = line:match("^%s*([^:]-)%s*:%s*(.-)%s*$")
  if name and name ~= "" then
    wrk.headers[name] = value
  end
end

if max_requests then
  local seen = 0
  -- Defined only when a cap is asked for: a response() hook makes wrk parse every response in Lua.
  function response(status, headers, body)
    seen = seen + 1
    if seen >= max_requests then
      wrk.thread:stop()
    end
  end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "non_2xx": %d, "socket_errors": %d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end
