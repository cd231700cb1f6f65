-- GCRA. State {t, used}: `used` is the budget in use in units of 1/limit ms; it drains at `limit` units
-- per ms, a request of cost n adds n * period, and passes while used <= burst * period.
ALGORITHMS.g = function(state, now, limit, period, burst, cost)
  local t, stored = now, 0
  if state then
    t, stored = state[1], state[2]
  end
  now = math.max(now, t)
  local used = drain(stored, now - t, limit)
  local capacity = burst * period
  local function answer(allowed, u, retry, write, ttl)
    local remaining = math.floor((capacity - math.min(u, capacity)) / period)
    return verdict(allowed, remaining, ceil_div(u, limit), retry, write, { now, u, 0, 0 }, ttl)
  end
  local function store(u)
    if u == 0 then
      return 'del'
    end
    return 'set'
  end
  if cost < 0 then
    local u = math.max(0, used - (-cost) * period)
    return answer(true, u, 0, store(u), ceil_div(u, limit))
  end
  local after = used + units(cost) * period
  if after > capacity then
    return answer(false, used, ceil_div(after - capacity, limit), 'keep', 0)
  end
  if cost == 0 then
    return answer(true, used, 0, 'keep', 0)
  end
  return answer(true, after, 0, store(after), ceil_div(after, limit))
end
