-- Cache::set: writes an entry with its tags' current generations, read in the same atomic step, so that
-- an invalidation can never fall between reading a generation and writing the entry.
-- KEYS[1]: the entry; KEYS[2..]: the generation counter of each of the key's tags, in order.
-- ARGV[1]: the envelope up to its generations; ARGV[2]: the rest of it (newline, payload);
-- ARGV[3]: what stands for "no generations" (a key without tags); ARGV[4]: the entry's TTL in ms.
-- Returns the generations written, one per tag (a counter never incremented is 0).
local generations = {}
for i = 2, #KEYS do
  local g = redis.call('GET', KEYS[i])
  if not g or not string.match(g, '^%d+$') then g = '0' end
  generations[#generations + 1] = g
end
local list = ARGV[3]
if #generations > 0 then list = table.concat(generations, ',') end
redis.call('SET', KEYS[1], ARGV[1] .. list .. ARGV[2], 'PX', ARGV[4])
return generations
