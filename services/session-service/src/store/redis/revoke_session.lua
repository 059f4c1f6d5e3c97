-- Revokes one session unless it is unknown, expired, or already revoked (then
-- its first revocation stands), and takes it out of its user's index. A
-- session created before its user's watermark was revoked with its user,
-- even if revoke_user_batch.lua has not marked it yet: that revocation
-- stands.
--
-- KEYS[1]  the session hash
-- KEYS[2]  the user's index of live sessions
-- KEYS[3]  the user's watermark hash
-- ARGV[1]  session id    ARGV[2]  now (µs)    ARGV[3]  reason
--
-- Returns {'unknown'}, {'expired'}, or {'revoked', field, value, ...} with
-- the session's fields.
local session = redis.call('HMGET', KEYS[1], 'expires_at', 'revoked_at', 'created')
if not session[1] then
  return {'unknown'}
end
if not session[2] then
  local watermark = redis.call('HMGET', KEYS[3], 'at', 'reason')
  if watermark[1] and tonumber(session[3]) < tonumber(watermark[1]) then
    redis.call('HSET', KEYS[1], 'revoked_at', watermark[1], 'reason', watermark[2])
  elseif tonumber(session[1]) <= tonumber(ARGV[2]) then
    return {'expired'}
  else
    redis.call('HSET', KEYS[1], 'revoked_at', ARGV[2], 'reason', ARGV[3])
  end
  redis.call('ZREM', KEYS[2], ARGV[1])
end
local reply = redis.call('HGETALL', KEYS[1])
table.insert(reply, 1, 'revoked')
return reply
