-- redge rate limiting: helpers shared by the four algorithms (this file is concatenated with
-- gcra.lua, sliding_window.lua, fixed_window.lua, token_bucket.lua and check.lua into one script).
-- Every number is an integer below 2^53, so Lua's doubles compute exactly what the Rust reference does.

local function ceil_div(a, b)
  return math.floor((a + b - 1) / b)
end

-- What is left of `amount` after `elapsed` ms draining at `rate` per ms; the product is only formed
-- when it is below `amount`.
local function drain(amount, elapsed, rate)
  if elapsed >= ceil_div(amount, rate) then
    return 0
  end
  return amount - elapsed * rate
end

-- A charge of `cost` counts as that many units; a peek (0) asks about one unit.
local function units(cost)
  if cost < 1 then
    return 1
  end
  return cost
end

-- A verdict: allowed (1/0), remaining, reset ms, retry-after ms, then the write:
-- 'keep', or 'del', or 'set' with the state {t, a, b, c} and a TTL in ms.
local function verdict(allowed, remaining, reset, retry, write, state, ttl)
  return { allowed and 1 or 0, remaining, reset, retry, write, state, ttl }
end

local ALGORITHMS = {}
