-- wrk script of the license-server benchmarks (driven by bench/src/wrk.rs).
--
-- Every request names a random existing license: the keys are read from the file named by
-- BENCH_KEYS (one per line) and every request is formatted once, up front, so that choosing
-- one costs the load generator a table lookup. BENCH_MODE picks the request:
--   verify  POST /api/licenses/verify {"licenseKey": KEY}        (data plane, control plane,
--                                                                  baseline)
--   check   GET /api/v4/check_license?product=P&license_key=KEY&hardware_id=D, signed with the
--           Date and Authorization headers given in BENCH_DATE and BENCH_AUTHORIZATION
-- BENCH_DELAY_MS > 0 makes each connection wait that long after every answer (wrk's delay
-- hook), to hold a rate below the peak for latency measurements.
-- At the end one line "BENCH_RESULT {json}" carries the figures (latencies in microseconds).

local mode = os.getenv("BENCH_MODE") or "verify"
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0
local requests = {}
local count = 0
local next_thread = 1

function setup(thread)
  thread:set("thread_number", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  local keys = os.getenv("BENCH_KEYS")
  if keys == nil then
    error("BENCH_KEYS is not set")
  end
  local product = os.getenv("BENCH_PRODUCT") or ""
  local device = os.getenv("BENCH_DEVICE") or ""
  local headers
  if mode == "check" then
    headers = {
      ["Date"] = os.getenv("BENCH_DATE"),
      ["Authorization"] = os.getenv("BENCH_AUTHORIZATION"),
    }
  else
    headers = { ["Content-Type"] = "application/json" }
  end
  for key in io.lines(keys) do
    if #key > 0 then
      count = count + 1
      if mode == "check" then
        requests[count] = wrk.format("GET",
          "/api/v4/check_license?product=" .. product .. "&license_key=" .. key ..
          "&hardware_id=" .. device, headers, nil)
      else
        requests[count] = wrk.format("POST", "/api/licenses/verify", headers,
          '{"licenseKey":"' .. key .. '"}')
      end
    end
  end
  if count == 0 then
    error("no keys in " .. keys)
  end
  math.randomseed(os.time() * 1000 + (thread_number or 0))
end

function request()
  return requests[math.random(count)]
end

if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"p999_us":%.0f,"max_us":%.0f,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, errors.connect, errors.read,
    errors.write, errors.status, errors.timeout, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
    latency.mean))
end
