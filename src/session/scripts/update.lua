
-- update: replaces the data, optionally only if its version counter is still ARGV[7].
-- ARGV[6] data (JSON), ARGV[7] expected version or ''.
-- Returns {'ok', refreshed, HGETALL...}, {'conflict', HGETALL...} or a refusal.
-- The session must exist (like SET XX): a write never brings back a session that was signed out.
local s, why, detail = authenticate(ARGV[2], ARGV[3])
if not s then
  return refused(why, detail)
end
if ARGV[7] ~= '' and redis.call('HGET', s.key, 'n') ~= ARGV[7] then
  return { 'conflict', 0, redis.call('HGETALL', s.key) }
end
redis.call('HSET', s.key, 'd', ARGV[6])
redis.call('HINCRBY', s.key, 'n', 1)
local refreshed = refresh_if_due(s)
return { 'ok', refreshed, redis.call('HGETALL', s.key) }
