
-- load: reads a session and refreshes it when due, in one call. KEYS[1] the session.
-- Returns {'ok', refreshed (0/1), HGETALL...} or a refusal {'missing'|'invalid'|'expired'|'version', detail}.
local s, why, detail = authenticate(ARGV[2], ARGV[3])
if not s then
  return refused(why, detail)
end
if refresh_if_due(s) == 1 then
  return { 'ok', 1, redis.call('HGETALL', s.key) }
end
return { 'ok', 0, s.all }
