-- POST /sfu_webhook with pre-signed LiveKit webhooks, cycling through a file
-- of lines "<authorization>\t<body>". Argument: <file>.
package.path = debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua;" .. package.path
local report = require("report")

local requests = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do
    local tab = line:find("\t", 1, true)
    requests[#requests + 1] = wrk.format("POST", "/sfu_webhook", {
      ["Content-Type"] = "application/webhook+json",
      ["Authorization"] = line:sub(1, tab - 1),
    }, line:sub(tab + 1))
  end
end

function request()
  i = i % #requests + 1
  return requests[i]
end

done = report.done
