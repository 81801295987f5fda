-- Link creation load for wrk: POST /api/links with an API key, each
-- request a different target.
--
--   KEY=sf_... wrk -t1 -c64 -d10s -s bench/wrk/create.lua http://primary:8000
--
-- Prints "WRK_JSON {...}" at the end, which the Go drivers parse.

local key = os.getenv("KEY") or ""
local n = 0
local thread_id = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function request()
  n = n + 1
  local body = string.format('{"target":"https://example.com/landing/%d/%d?utm_source=bench"}', thread_id, n)
  return wrk.format("POST", "/api/links", {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }, body)
end

function done(summary, latency, requests)
  local s = summary
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d,' ..
    '"lat_mean_us":%.1f,"lat_p50_us":%d,"lat_p90_us":%d,"lat_p99_us":%d,"lat_p999_us":%d,"lat_max_us":%d}\n',
    s.requests, s.duration, s.bytes, s.errors.connect, s.errors.read, s.errors.write, s.errors.status, s.errors.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max))
end
