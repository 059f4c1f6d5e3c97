-- Marks one batch of a revoked user's sessions revoked and takes them out of
-- the user's index; revoke_user.lua has raised the watermark already.
--
-- KEYS[1]  the user's index of live sessions (sorted set, scored by expiry)
-- ARGV[1]  now (µs)
-- ARGV[2]  the watermark (µs): sessions created at or before it are revoked
-- ARGV[3]  the watermark's reason
-- ARGV[4]  the prefix of the user's session keys (the index holds ids)
-- ARGV[5]  the first rank to look at: how many entries earlier batches kept
-- ARGV[6]  how many entries to look at
--
-- The session keys are not in KEYS because they are known only once the
-- index is read; they carry the same hash tag as KEYS, so on Redis Cluster
-- they are in the same slot, on the node running the script.
--
-- Returns {sessions revoked, entries kept (sessions newer than the
-- watermark), entries looked at}.
local now = tonumber(ARGV[1])
local watermark = tonumber(ARGV[2])
local first = tonumber(ARGV[5])
local entries = redis.call('ZRANGE', KEYS[1], first, first + tonumber(ARGV[6]) - 1, 'WITHSCORES')
local revoked, kept = 0, 0
for i = 1, #entries, 2 do
  local id = entries[i]
  local key = ARGV[4] .. id
  local session = redis.call('HMGET', key, 'created', 'revoked_at')
  if tonumber(entries[i + 1]) <= now or not session[1] or session[2] then
    -- Expired, forgotten or revoked already: not live.
    redis.call('ZREM', KEYS[1], id)
  elseif tonumber(session[1]) > watermark then
    kept = kept + 1
  else
    redis.call('HSET', key, 'revoked_at', ARGV[2], 'reason', ARGV[3])
    redis.call('ZREM', KEYS[1], id)
    revoked = revoked + 1
  end
end
return {revoked, kept, #entries / 2}
