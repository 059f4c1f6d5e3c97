-- Revokes every live session of a user and raises the user's watermark, in
-- one step: no session of the user can be created in between and survive.
--
-- KEYS[1]  the user's index of live sessions
-- KEYS[2]  the user's watermark hash
-- ARGV[1]  now (µs)    ARGV[2]  reason
-- ARGV[3]  the prefix of the user's session keys (the index holds ids)
-- ARGV[4]  how long the watermark is kept (ms)
--
-- The session keys are not in KEYS because they are known only once the
-- index is read; they carry the same hash tag as KEYS, so on Redis Cluster
-- they are in the same slot, on the node running the script.
--
-- Returns {sessions revoked, watermark (µs), watermark reason}.
local now = tonumber(ARGV[1])
local revoked = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')) do
  local key = ARGV[3] .. id
  -- A live index entry without its session cannot happen (the session key
  -- outlives its expiry), but HSET must never create a key without a TTL.
  if redis.call('EXISTS', key) == 1 and not redis.call('HGET', key, 'revoked_at') then
    redis.call('HSET', key, 'revoked_at', ARGV[1], 'reason', ARGV[2])
    revoked = revoked + 1
  end
end
redis.call('DEL', KEYS[1])
-- Never lower the watermark: another replica, whose clock is ahead, may have
-- raised it further already. At the same instant, the latest reason wins.
local previous = redis.call('HMGET', KEYS[2], 'at', 'reason')
if not previous[1] or tonumber(previous[1]) <= now then
  redis.call('HSET', KEYS[2], 'at', ARGV[1], 'reason', ARGV[2])
  previous = {ARGV[1], ARGV[2]}
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {revoked, previous[1], previous[2]}
