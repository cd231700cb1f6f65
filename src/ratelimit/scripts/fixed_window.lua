-- Fixed window aligned on multiples of the period since the epoch. State {t, start, count}.
ALGORITHMS.f = function(state, now, limit, period, burst, cost)
  local t = now
  if state then
    t = state[1]
  end
  now = math.max(now, t)
  local start = now - now % period
  local finish = start + period
  local count = 0
  if state and state[2] == start then
    count = state[3]
  end
  local function answer(allowed, c, retry, write)
    local reset = 0
    if c > 0 then
      reset = finish - now
    end
    return verdict(allowed, limit - math.min(c, limit), reset, retry, write, { now, start, c, 0 }, finish - now)
  end
  local function store(c)
    if c == 0 then
      return 'del'
    end
    return 'set'
  end
  if cost < 0 then
    local c = math.max(0, count - (-cost))
    return answer(true, c, 0, store(c))
  end
  local after = count + units(cost)
  if after > limit then
    return answer(false, count, finish - now, 'keep')
  end
  if cost == 0 then
    return answer(true, count, 0, 'keep')
  end
  return answer(true, after, 0, store(after))
end
