-- wrk script: replay a fixed list of requests round-robin, each thread from its own offset.
-- The list file has one request per line: METHOD <tab> PATH <tab> COOKIE-HEADER <tab> BODY
-- (BODY may be empty). Usage: wrk -s bench/mix.lua URL -- requests.tsv CSRF-TOKEN

local requests = {}
local i = 0

function init(args)
  local file, csrf = args[1], args[2]
  for line in io.lines(file) do
    local method, path, cookie, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    local headers = { ["Cookie"] = cookie, ["x-csrftoken"] = csrf }
    if body == "" then
      body = nil
    else
      headers["Content-Type"] = "application/json"
    end
    table.insert(requests, wrk.format(method, path, headers, body))
  end
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
  i = math.random(#requests)
end

function request()
  i = i % #requests + 1
  return requests[i]
end

-- Any answer that is not 2xx stops this thread and is reported (status, then the body's start):
-- a benchmark that counts errors as throughput measures nothing.
function response(status, headers, body)
  if status < 200 or status > 299 then
    io.stderr:write(string.format("NON-2XX %d %s\n", status, string.sub(body or "", 1, 300)))
    wrk.thread:stop()
  end
end
