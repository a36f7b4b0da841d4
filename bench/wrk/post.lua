-- post.lua - POST a fixed body and expect it echoed back (weft's POST route).
--
--   wrk -t1 -c100 -d5s -s bench/wrk/post.lua http://127.0.0.1:7000/echo [-- BYTES]
--
-- BYTES defaults to 1024. A reply whose length differs from the body is
-- counted and reported at the end (wrk already counts non-2xx replies).

local req, size
local short = 0

function init(args)
   size = tonumber(args[1]) or 1024
   local body = string.rep("w", size)
   req = wrk.format("POST", nil, {["Content-Type"] = "application/octet-stream"}, body)
end

function request()
   return req
end

function response(status, headers, body)
   if #body ~= size then
      short = short + 1
   end
end

function done(summary, latency, requests)
   -- response() ran in the worker threads; their counts are summed here
   local bad = 0
   for _, t in ipairs(threads or {}) do
      bad = bad + (t:get("short") or 0)
   end
   io.write(string.format("echo length mismatches: %d\n", bad))
end

function setup(thread)
   threads = threads or {}
   table.insert(threads, thread)
end
