-- Stores a new session and adds it to its user's index, in one step, so that
-- a concurrent revoke_user.lua either sees the session or runs before it
-- exists; unless the user already has as many live sessions as allowed.
--
-- At the limit nothing is created: the script answers the sessions to evict
-- (those expiring first). The caller logs their revocation, then calls again
-- naming them, and this call revokes them before it creates the new session.
-- Logging first means no watcher can miss an eviction: if this call never
-- comes, the log says revoked while the session still passes CheckSession,
-- which errs on the safe side.
--
-- KEYS[1]  the session hash
-- KEYS[2]  the user's index of live sessions (sorted set, scored by expiry)
-- ARGV[1]  session id            ARGV[2]  directory id      ARGV[3]  user id
-- ARGV[4]  created (µs)          ARGV[5]  expires at (µs)   ARGV[6]  attributes (JSON)
-- ARGV[7]  session key TTL (ms): the session's TTL plus how long it is remembered after
-- ARGV[8]  the session's TTL (ms): the index lives as long as its longest session
-- ARGV[9]  how many live sessions a user may have
-- ARGV[10] the prefix of the user's session keys (the index holds ids)
-- ARGV[11] the reason an evicted session is revoked with
-- ARGV[12] the most sessions to answer for eviction at once
-- ARGV[13…] sessions to evict first, whose revocation the caller has logged
--
-- Returns {'created', sessions evicted} or {'full', sessions evicted, id, id, …}.
local now = ARGV[4]
-- Entries of sessions that expired by now are dead weight.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local evicted = 0
for i = 13, #ARGV do
  local id = ARGV[i]
  local key = ARGV[10] .. id
  if redis.call('ZREM', KEYS[2], id) == 1 and redis.call('EXISTS', key) == 1
      and not redis.call('HGET', key, 'revoked_at') then
    redis.call('HSET', key, 'revoked_at', now, 'reason', ARGV[11])
    evicted = evicted + 1
  end
end
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[9]) + 1
if excess > 0 then
  local reply = redis.call('ZRANGE', KEYS[2], 0, math.min(excess, tonumber(ARGV[12])) - 1)
  table.insert(reply, 1, tostring(evicted))
  table.insert(reply, 1, 'full')
  return reply
end
redis.call('HSET', KEYS[1],
  'directory_id', ARGV[2], 'user_id', ARGV[3],
  'created', now, 'expires_at', ARGV[5], 'attributes', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[8]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[8])
end
return {'created', tostring(evicted)}
