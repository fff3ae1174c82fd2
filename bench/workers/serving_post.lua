-- wrk script for bench/serving.py: POST the same JSON body on every request, and print the
-- results as one JSON line (prefixed "wrk-json ") when the run is done.
--
--   wrk -t1 -c16 -d10s -s serving_post.lua http://127.0.0.1:PORT/predict -- BODY_FILE

local request_text

function init(args)
   local file = assert(io.open(args[1], "rb"), "cannot open the request body file " .. args[1])
   local body = file:read("*a")
   file:close()
   -- Built once: request() is called for every request and must stay cheap.
   request_text = wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function request()
   return request_text
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'wrk-json {"requests": %d, "duration_us": %d, "bytes": %d, '
         .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
         .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "mean": %.1f, "max": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.mean, latency.max))
end
