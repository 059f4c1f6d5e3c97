-- Reads the revocation log from a cursor, with what the caller needs to know
-- that it missed nothing: the newest id ever added, and the newest id
-- trimmed away, which is the "prev" of the oldest entry left (see
-- append_log.lua). Both are "0-0" for a log that does not exist yet.
--
-- KEYS[1]  the revocation stream
-- ARGV[1]  the first id to read (inclusive)    ARGV[2]  how many at most
--
-- Returns {last generated id, last trimmed id, entries}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'0-0', '0-0', {}}
end
local last = '0-0'
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then
    last = info[i + 1]
  end
end
local trimmed = '0-0'
local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if oldest then
  local fields = oldest[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'prev' then
      trimmed = fields[i + 1]
    end
  end
end
local entries = {}
if tonumber(ARGV[2]) > 0 then
  entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
end
return {last, trimmed, entries}
