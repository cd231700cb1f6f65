
-- incr: adds ARGV[7] to the counter ARGV[6] (its own field, so concurrent requests add up).
-- Returns {'ok', new value} or a refusal.
local s, why, detail = authenticate(ARGV[2], ARGV[3])
if not s then
  return refused(why, detail)
end
-- No refresh here: the caller could not tell, and would not send the cookie again.
local value = redis.call('HINCRBY', s.key, '#' .. ARGV[6], ARGV[7])
return { 'ok', value }
