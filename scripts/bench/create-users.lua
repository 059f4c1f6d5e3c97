-- wrk script: POST a new SCIM user per request, each with a unique userName.
-- wrk.format replaces the -H headers when given a table, so they are copied.
-- BENCH_PREFIX (default "bench") starts every userName, so that several runs
-- against one directory create different users.
local prefix = os.getenv("BENCH_PREFIX") or "bench"
local threads = 0

function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

local sent = 0
local headers = {}

function init()
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
  headers["Content-Type"] = "application/scim+json"
end

function request()
  sent = sent + 1
  local user_name = string.format("%s-%d-%d@example.com", prefix, thread_id, sent)
  local body = string.format(
    '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"%s",'
      .. '"name":{"givenName":"Bench","familyName":"User"},'
      .. '"emails":[{"value":"%s","type":"work","primary":true}],"active":true}',
    user_name, user_name)
  return wrk.format("POST", nil, headers, body)
end
