-- Cache::update (and Cache::set confirming its own write): compare-and-set of an entry. The closure runs
-- in the client, so the client sends the SHA1 of the entry it read with what it computed from it; the
-- write happens only if the entry did not change in between. The tags' generations are not read here
-- (their counters live in other slots): the new entry embeds the generations of the one it replaces,
-- so an invalidation since makes it a miss, as it would have made the old one.
-- KEYS[1]: the entry. ARGV[1]: SHA1 of the entry as read; ARGV[2]: the new entry.
-- Returns 1 after writing (the entry keeps its TTL). Otherwise writes nothing and returns the entry as
-- it is now (nil when gone), so the client's next attempt needs no read of its own.
local current = redis.call('GET', KEYS[1])
if current and redis.sha1hex(current) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return { current }
