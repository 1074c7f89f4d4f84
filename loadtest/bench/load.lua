-- The bench's load (loadtest/bench/wrk.py runs it):
--   wrk -t T -c C -s load.lua <url> -- <strategy> <read|write> <sessions file> <adds per session> <T> <C/T>
--   wrk -t T -c C -s load.lua <url> -- - balancer   (the balancer's own endpoint: the load tool's ceiling)
-- Sessions are made before the run (loadtest/bench/sessions.py): one line each, the headers that carry the
-- credential ("Name: value", tab-separated). wrk's Lua state is per thread, not per connection, so each
-- thread takes every n-th session and sends its connections' requests to them in turn.
-- No response() hook: wrk then skips parsing the answers, and counts every status >= 400 itself
-- (summary.errors.status), which is all the bench needs from them.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local strategy, file = args[1], args[3]
  path, cap = args[2], tonumber(args[4])
  slot, sent, exhausted = 0, 0, 0
  if path == "balancer" then
    ring, reads = {1}, {wrk.format("GET", "/nginx-health")}
    return
  end
  local thread_count, connections = tonumber(args[5]), tonumber(args[6])  -- init cannot see setup's table
  cart = "/api/" .. strategy .. "/cart"
  sessions, used, ring, reads = {}, {}, {}, {}
  local n = 0
  for line in io.lines(file) do
    if n % thread_count == id then
      local headers = {}
      for name, value in line:gmatch("([^\t:]+): ([^\t]*)") do headers[name] = value end
      sessions[#sessions + 1] = headers
    end
    n = n + 1
  end
  -- Writes go to a ring of sessions, one per connection of this thread; a session that has taken `cap`
  -- adds leaves the ring for an unused one, so carts stay far below the cart limit.
  local size = path == "write" and math.min(#sessions, connections) or #sessions
  for i = 1, size do ring[i] = i end
  for i, headers in ipairs(sessions) do reads[i] = wrk.format("GET", cart, headers) end  -- built once
  spare = size
end

function request()
  slot = slot % #ring + 1
  local s = ring[slot]
  sent = sent + 1
  if path ~= "write" then
    return reads[s]
  end
  used[s] = (used[s] or 0) + 1
  if used[s] > cap then
    spare = spare + 1
    if spare > #sessions then spare, exhausted = 1, exhausted + 1 end  -- sized too small: reused, counted
    ring[slot], s = spare, spare
    used[s] = 1
  end
  local headers = {}
  for name, value in pairs(sessions[s]) do headers[name] = value end
  headers["Content-Type"] = "application/json"
  headers["Idempotency-Key"] = id .. "-" .. sent
  return wrk.format("POST", cart, headers, '{"item":"w' .. id .. "-" .. sent .. '"}')
end

function done(summary, latency, requests)
  local exhausted_all = 0
  for _, thread in ipairs(threads) do exhausted_all = exhausted_all + (thread:get("exhausted") or 0) end
  local e = summary.errors
  io.write(string.format(
    '{"seconds":%.3f,"requests":%d,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"pool_exhausted":%d}\n',
    summary.duration / 1e6, summary.requests, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.connect, e.read, e.write, e.status, e.timeout, exhausted_all))
end
