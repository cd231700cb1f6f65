-- Sliding log, the exact sliding window. State {t, 0, 0, 0, entries}: every accepted request still in
-- the window (now - period, now] as {time, cost}, oldest first; at most `limit` in any `period` ms.
ALGORITHMS.l = function(state, now, limit, period, burst, cost)
  local t = now
  if state then
    t = state[1]
  end
  now = math.max(now, t)
  local log = {}
  if state and state[5] then
    for _, e in ipairs(state[5]) do
      if e[1] + period > now then
        log[#log + 1] = { e[1], e[2] }
      end
    end
  end
  local function used()
    local sum = 0
    for _, e in ipairs(log) do
      sum = sum + e[2]
    end
    return sum
  end
  local function answer(allowed, retry, write)
    local total = used()
    local reset = 0
    if #log > 0 then
      reset = log[#log][1] + period - now
    end
    return verdict(allowed, limit - math.min(total, limit), reset, retry, write, { now, 0, 0, 0, log }, reset)
  end
  if cost < 0 then
    -- A refund gives back the most recent charges.
    local back = -cost
    while back > 0 and #log > 0 do
      local last = log[#log]
      if last[2] <= back then
        back = back - last[2]
        log[#log] = nil
      else
        last[2] = last[2] - back
        back = 0
      end
    end
    if #log == 0 then
      return answer(true, 0, 'del')
    end
    return answer(true, 0, 'set')
  end
  local n = units(cost)
  local total = used()
  if total + n > limit then
    -- The oldest entries must leave the window until n fits (n <= limit, so they can).
    local needed, freed, at = total + n - limit, 0, now
    for _, e in ipairs(log) do
      freed = freed + e[2]
      if freed >= needed then
        at = e[1] + period
        break
      end
    end
    return answer(false, at - now, 'keep')
  end
  if cost == 0 then
    return answer(true, 0, 'keep')
  end
  local last = log[#log]
  if last and last[1] == now then
    last[2] = last[2] + n
  else
    log[#log + 1] = { now, n }
  end
  return answer(true, 0, 'set')
end
