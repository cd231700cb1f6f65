-- Sliding window, weighted two buckets. State {t, start, current, previous}; the estimate, scaled by the
-- period, is previous * (period - elapsed) + current * period, against limit * period.
ALGORITHMS.s = function(state, now, limit, period, burst, cost)
  local t = now
  if state then
    t = state[1]
  end
  now = math.max(now, t)
  local start = now - now % period
  local current, previous = 0, 0
  if state and state[2] == start then
    current, previous = state[3], state[4]
  elseif state and state[2] + period == start then
    previous = state[3]
  end
  local elapsed = now - start
  local capacity = limit * period
  local function estimate(c)
    return previous * (period - elapsed) + c * period
  end
  local function answer(allowed, c, retry, write)
    local reset = 0
    if c > 0 then
      reset = start + 2 * period - now
    elseif previous > 0 then
      reset = start + period - now
    end
    local remaining = math.floor((capacity - math.min(estimate(c), capacity)) / period)
    return verdict(allowed, remaining, reset, retry, write, { now, start, c, previous }, start + 2 * period - now)
  end
  local function store(c)
    if c == 0 and previous == 0 then
      return 'del'
    end
    return 'set'
  end
  if cost < 0 then
    local c = math.max(0, current - (-cost))
    return answer(true, c, 0, store(c))
  end
  local n = units(cost)
  if estimate(current) + n * period > capacity then
    local wait = nil
    if previous > 0 and current + n <= limit then
      local at = period - math.floor((limit - current - n) * period / previous)
      if at < period then
        wait = at - elapsed
      end
    end
    if not wait then
      local at = 0
      if current > 0 then
        at = period - math.min(math.floor((limit - n) * period / current), period)
      end
      wait = period - elapsed + at
    end
    return answer(false, current, wait, 'keep')
  end
  if cost == 0 then
    return answer(true, current, 0, 'keep')
  end
  return answer(true, current + n, 0, store(current + n))
end
