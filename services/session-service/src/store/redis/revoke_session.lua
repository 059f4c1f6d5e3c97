-- Revokes one session unless it is unknown, expired, or already revoked (then
-- its first revocation stands), and takes it out of its user's index.
--
-- KEYS[1]  the session hash
-- KEYS[2]  the user's index of live sessions
-- ARGV[1]  session id    ARGV[2]  now (µs)    ARGV[3]  reason
--
-- Returns {'unknown'}, {'expired'}, or {'revoked', field, value, ...} with
-- the session's fields.
local session = redis.call('HMGET', KEYS[1], 'expires_at', 'revoked_at')
if not session[1] then
  return {'unknown'}
end
if not session[2] then
  if tonumber(session[1]) <= tonumber(ARGV[2]) then
    return {'expired'}
  end
  redis.call('HSET', KEYS[1], 'revoked_at', ARGV[2], 'reason', ARGV[3])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
local reply = redis.call('HGETALL', KEYS[1])
table.insert(reply, 1, 'revoked')
return reply
