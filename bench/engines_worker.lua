-- wrk script: POST one batch to the D1 Worker again and again (bench/engines.py).
-- Usage: wrk -s bench/engines_worker.lua URL -- BODY-FILE TOKEN
local request_text

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local body = file:read("*a")
  file:close()
  request_text = wrk.format("POST", "/batch",
    { ["Authorization"] = "Bearer " .. args[2], ["Content-Type"] = "application/json" }, body)
end

function request()
  return request_text
end
