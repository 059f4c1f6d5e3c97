-- Stores a new session and adds it to its user's index, in one step, so that
-- a concurrent revoke_user.lua either sees the session or runs before it
-- exists.
--
-- KEYS[1]  the session hash
-- KEYS[2]  the user's index of live sessions (sorted set, scored by expiry)
-- ARGV[1]  session id            ARGV[2]  directory id      ARGV[3]  user id
-- ARGV[4]  created (µs)          ARGV[5]  expires at (µs)   ARGV[6]  attributes (JSON)
-- ARGV[7]  session key TTL (ms): the session's TTL plus how long it is remembered after
-- ARGV[8]  the session's TTL (ms): the index lives as long as its longest session
redis.call('HSET', KEYS[1],
  'directory_id', ARGV[2], 'user_id', ARGV[3],
  'created', ARGV[4], 'expires_at', ARGV[5], 'attributes', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
-- Entries of sessions that expired by now are dead weight.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[8]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[8])
end
return 1
