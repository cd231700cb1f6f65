-- Cache::invalidate_tag: moves a tag's generation up. A counter that exists goes up by one; a missing
-- (expired) one starts at the invalidating clock's time in ms, so that a counter never comes back to a
-- value it held before it expired: an entry that embeds an old generation stays a miss for good.
-- KEYS[1]: the tag's counter. ARGV[1]: now (Unix ms); ARGV[2]: the counter's TTL in ms.
-- Returns the new generation.
local stored = redis.call('GET', KEYS[1])
local g = stored and string.match(stored, '^%d+$') and tonumber(stored)
if g then
  g = g + 1
else
  g = math.max(1, tonumber(ARGV[1]))
end
redis.call('SET', KEYS[1], string.format('%.0f', g), 'PX', ARGV[2])
return g
