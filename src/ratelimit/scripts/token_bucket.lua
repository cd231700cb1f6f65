-- Token bucket with continuous refill. State {t, tokens}: tokens in units of 1/period token; a missing
-- key is a full bucket of burst * period; it refills at `limit` units per ms.
ALGORITHMS.t = function(state, now, rate, period, burst, cost)
  local full = burst * period
  local t, stored = now, full
  if state then
    t, stored = state[1], math.min(state[2], full)
  end
  now = math.max(now, t)
  local tokens = full - drain(full - stored, now - t, rate)
  local function answer(allowed, k, retry, write)
    local ttl = ceil_div(full - k, rate)
    return verdict(allowed, math.floor(k / period), ttl, retry, write, { now, k, 0, 0 }, ttl)
  end
  local function store(k)
    if k == full then
      return 'del'
    end
    return 'set'
  end
  if cost < 0 then
    local k = math.min(tokens + (-cost) * period, full)
    return answer(true, k, 0, store(k))
  end
  local need = units(cost) * period
  if need > tokens then
    return answer(false, tokens, ceil_div(need - tokens, rate), 'keep')
  end
  if cost == 0 then
    return answer(true, tokens, 0, 'keep')
  end
  return answer(true, tokens - need, 0, store(tokens - need))
end
