
-- incr: adds ARGV[8] to the counter ARGV[7] (its own field, so concurrent requests add up).
-- KEYS[1] the session.
-- Returns {'ok', new value}, {'late', ''} or a refusal.
if too_late() then
  return { 'late', '' }
end
local s, why, detail = authenticate(ARGV[2], ARGV[3])
if not s then
  return refused(why, detail)
end
-- No refresh here: the caller could not tell, and would not send the cookie again.
local value = redis.call('HINCRBY', s.key, '#' .. ARGV[7], ARGV[8])
return { 'ok', value }
