-- redge rate limiting: takes a lease of up to `want` units of one fixed-window key, debited now.
-- KEYS[1]  the key's state (the same `t:start:count:0` the check script keeps for a fixed window)
-- ARGV[1]  now, Unix ms (the caller's clock; the key keeps max(now, its stored time))
-- ARGV[2]  limit
-- ARGV[3]  period ms
-- ARGV[4]  want: the units asked for (at least 1)
-- Returns {granted, window start, ms until the window ends, remaining after the grant}.
-- The grant is what is left of the window, up to `want`: the units are counted in the window at once,
-- so the sum of every lease and every checked request never exceeds the limit, and a lease is worth
-- nothing past its window (the caller stops spending it there).
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local t, start, count = now, nil, 0
local raw = redis.call('GET', KEYS[1])
if raw then
  local st, sa, sb = string.match(raw, '^(%d+):(%d+):(%d+):%d+$')
  if st then
    t, start, count = tonumber(st), tonumber(sa), tonumber(sb)
  end
end
now = math.max(now, t)
local window = now - now % period
local finish = window + period
if start ~= window then
  count = 0
end
local granted = math.max(0, math.min(want, limit - math.min(count, limit)))
if granted > 0 then
  count = count + granted
  redis.call('SET', KEYS[1], string.format('%d:%d:%d:0', now, window, count), 'PX', finish - now)
end
return { granted, window, finish - now, limit - math.min(count, limit) }
