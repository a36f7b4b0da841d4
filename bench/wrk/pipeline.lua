-- pipeline.lua - pipelined GET / at depth 16, the shape of the TechEmpower
-- plaintext test: each write carries 16 requests, and wrk counts the 16
-- replies that come back on the same connection.
--
--   wrk -t1 -c100 -d5s -s bench/wrk/pipeline.lua http://127.0.0.1:7000/ [-- DEPTH [PATH]]

local batch

function init(args)
   local depth = tonumber(args[1]) or 16
   local path = args[2] or "/"
   local reqs = {}
   for i = 1, depth do
      reqs[i] = wrk.format("GET", path)
   end
   batch = table.concat(reqs)
end

function request()
   return batch
end
