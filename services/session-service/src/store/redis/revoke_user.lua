-- Raises a user's watermark: from this step on, every session of the user
-- created before it is revoked (CheckSession and listings compare the
-- session's creation with the watermark), however many sessions the user
-- has. revoke_user_batch.lua then marks the sessions themselves, a bounded
-- batch per call, so that one user with many sessions never holds Redis
-- for long.
--
-- KEYS[1]  the user's watermark hash
-- ARGV[1]  now (µs)    ARGV[2]  reason
-- ARGV[3]  how long the watermark is kept (ms)
--
-- Returns {watermark (µs), watermark reason}.
local now = tonumber(ARGV[1])
-- Never lower the watermark: another replica, whose clock is ahead, may have
-- raised it further already. At the same instant, the latest reason wins.
local previous = redis.call('HMGET', KEYS[1], 'at', 'reason')
if not previous[1] or tonumber(previous[1]) <= now then
  redis.call('HSET', KEYS[1], 'at', ARGV[1], 'reason', ARGV[2])
  previous = {ARGV[1], ARGV[2]}
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {previous[1], previous[2]}
