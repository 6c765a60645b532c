-- server_noop.lua - wrk script: POST a small invocation envelope, as the
-- Functions host does, to the handler's /__noop route (the HTTP floor: the
-- body is read but not parsed) or to any path given with -- PATH.
--   wrk -t2 -c32 -d10s -s tests/scripts/server_noop.lua http://127.0.0.1:PORT
--   wrk ... -s tests/scripts/server_noop.lua http://127.0.0.1:PORT -- /Changes
local path = "/__noop"
local counter = 0

function init(args)
  if args[1] then path = args[1] end
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json; charset=utf-8"
wrk.body = '{"Data":{"msgs":"[\\"eyJhIjoxfQ==\\"]"},"Metadata":{"MessageIdArray":"[\\"m-1\\"]",'
  .. '"DeliveryCountArray":"[1]","EnqueuedTimeUtcArray":"[\\"2024-05-01T10:22:31.123\\"]",'
  .. '"sys":{"MethodName":"Changes","UtcNow":"2024-05-01T10:22:32.5Z","RandGuid":"0f8fad5b-d9cb-469f-a165-70867728950e"}}}'

function request()
  counter = counter + 1
  wrk.headers["X-Azure-Functions-InvocationId"] = "bench-" .. counter
  return wrk.format(nil, path)
end
