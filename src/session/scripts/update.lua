
-- update: replaces the data, optionally only if its version counter is still ARGV[8]. KEYS[1] the session.
-- ARGV[7] data (JSON), ARGV[8] expected version or ''.
-- Returns {'ok', refreshed, HGETALL...}, {'conflict', 0, HGETALL...}, {'late', ''} or a refusal.
-- The session must exist (like SET XX): a write never brings back a session that was signed out.
if too_late() then
  return { 'late', '' }
end
local s, why, detail = authenticate(ARGV[2], ARGV[3])
if not s then
  return refused(why, detail)
end
if ARGV[8] ~= '' and s.f.n ~= ARGV[8] then
  return { 'conflict', 0, s.all }
end
redis.call('HSET', s.key, 'd', ARGV[7])
redis.call('HINCRBY', s.key, 'n', 1)
local refreshed = refresh_if_due(s)
return { 'ok', refreshed, redis.call('HGETALL', s.key) }
