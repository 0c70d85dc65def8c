-- wrk script for `manage.py bench claim|redeem`: every request is a distinct claim or redemption.
-- Reads bodies from the file named by the BENCH_BODIES environment variable: one "path<TAB>json body" per line;
-- thread t of n takes lines t, t+n, t+2n, … so no two requests share a member or a code.
local threads = {}
local token = os.getenv("BENCH_TOKEN")

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local n = tonumber(os.getenv("BENCH_THREADS"))
  paths, bodies, position = {}, {}, 0
  local index = 0
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    if index % n == id then
      local tab = line:find("\t")
      table.insert(paths, line:sub(1, tab - 1))
      table.insert(bodies, line:sub(tab + 1))
    end
    index = index + 1
  end
  failures = 0
end

function request()
  position = position + 1
  if position > #bodies then
    position = 1  -- out of prepared bodies: repeats answer 409/422 and show up as errors
  end
  return wrk.format("POST", paths[position], {["Content-Type"] = "application/json",
                    ["Authorization"] = "Bearer " .. token}, bodies[position])
end

function response(status, headers, body)
  if status >= 400 then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("failures")
  end
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "seconds": %.2f, "p50_ms": %.2f, "p95_ms": %.2f, "p99_ms": %.2f, ' ..
    '"mean_ms": %.2f, "errors": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.mean / 1000, failed,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
