-- Appends a revocation to the log, recording in it the id of the entry before
-- it ("prev"). Trimming drops the oldest entries; the "prev" of the oldest
-- entry left then tells exactly which ids are gone, so read_log.lua can tell
-- a watcher that it missed some.
--
-- KEYS[1]  the revocation stream
-- ARGV[1]  about how many entries to keep
-- ARGV[2…] the revocation's fields and values
--
-- Returns the new entry's id.
local prev = '0-0'
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      prev = info[i + 1]
    end
  end
end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'prev', prev, unpack(ARGV, 2))
