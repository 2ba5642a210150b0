-- POST /get_token with a distinct OpenID token (and room) per request.
-- Arguments: <matrix server name> <run id>.
-- Token tok-<n> belongs to @u<n>:<server name> at the bench homeserver.
package.path = debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua;" .. package.path
local report = require("report")

local next_id = 1
function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

local server, prefix
local counter = 0
function init(args)
  server = args[1]
  prefix = args[2] .. "." .. thread_id .. "."
end

local headers = { ["Content-Type"] = "application/json" }

function request()
  counter = counter + 1
  local n = prefix .. counter
  local body = '{"room_id":"!r' .. n .. ':bench","slot_id":"m.call#",' ..
    '"openid_token":{"access_token":"tok-' .. n .. '","token_type":"Bearer",' ..
    '"matrix_server_name":"' .. server .. '","expires_in":3600},' ..
    '"member":{"id":"member","claimed_user_id":"@u' .. n .. ':' .. server ..
    '","claimed_device_id":"DEVICE"}}'
  return wrk.format("POST", "/get_token", headers, body)
end

done = report.done
