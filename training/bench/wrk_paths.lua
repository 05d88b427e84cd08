-- wrk script: each request takes a random line from a file (a path to GET, or
-- "POST <path> <JSON body>"), and the summary is printed as one JSON line, latencies in
-- microseconds.
-- Further arguments:
--   "retry-after" makes the clients polite: for every 503 answered, a connection waits
--   the Retry-After seconds before its next request (wrk's delay() is per thread, not per
--   connection: each 503 sends the next request to go out to sleep);
--   "stop-after=N": each thread stops after N answers (wrk itself still runs -d seconds).
local paths = {}
local polite = false
local backoffs = 0
local stop_after = nil
local answered = 0

function init(args)
  for i = 2, #args do
    if args[i] == "retry-after" then polite = true end
    local n = args[i]:match("^stop%-after=(%d+)$")
    if n then stop_after = tonumber(n) end
  end
  for line in io.lines(args[1]) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  math.randomseed(os.time() + tonumber(tostring(paths):match("0x(%x+)") or "0", 16) % 100000)
end

function response(status, headers, body)
  if polite and status == 503 then backoffs = backoffs + 1 end
  answered = answered + 1
  if stop_after and answered >= stop_after then wrk.thread:stop() end
end

function delay()
  if backoffs > 0 then
    backoffs = backoffs - 1
    return 1000
  end
  return 0
end

local json = { ["Content-Type"] = "application/json" }

function request()
  local line = paths[math.random(#paths)]
  local path, body = line:match("^POST (%S+) (.+)$")
  if path then return wrk.format("POST", path, json, body) end
  return wrk.format("GET", line)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"non_2xx":%d,"p50_us":%d,"p95_us":%d,' ..
    '"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
