-- Cache::update: compare-and-set of an entry. The closure runs in the client, so the client sends what
-- it read (the entry's SHA1 and the tags' generations) with what it computed from it; the write happens
-- only if nothing changed in between.
-- KEYS[1]: the entry; KEYS[2..]: the generation counter of each of the key's tags, in order.
-- ARGV[1]: SHA1 of the entry as read; ARGV[2]: the new entry; ARGV[3..]: the generations as read.
-- Returns 1 after writing (the entry keeps its TTL). Otherwise writes nothing and returns what
-- `MGET KEYS...` returns now, so the client's next attempt needs no read of its own.
local current = redis.call('GET', KEYS[1])
local same = current ~= false and redis.sha1hex(current) == ARGV[1]
for i = 2, #KEYS do
  if not same then break end
  -- As the client and the set script read it: a missing or non-numeric counter is generation 0.
  local g = redis.call('GET', KEYS[i])
  if not g or not string.match(g, '^%d+$') then g = '0' end
  same = tonumber(g) == tonumber(ARGV[i + 1])
end
if same then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return redis.call('MGET', unpack(KEYS))
