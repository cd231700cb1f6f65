-- Checks a request against several policies at once, atomically.
-- KEYS[i]  the state key of policy i (one key per policy and identifier)
-- ARGV[1]  now, Unix ms (the caller's clock; each key keeps max(now, its stored time))
-- ARGV[2]  cost: > 0 charges, 0 peeks, < 0 refunds
-- ARGV[2 + 4(i-1) + 1 .. 4]  policy i: algorithm code (g, s, f, t, l), limit, period ms, burst
-- Returns 4 integers per policy: allowed (1/0), remaining, reset ms, retry-after ms.
-- A charge is applied to every policy or to none: when one policy rejects, no key is written, and the
-- policies that would have allowed the request answer as a peek.
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local states, params, results = {}, {}, {}
local all_allowed = true
for i = 1, #KEYS do
  local base = 2 + (i - 1) * 4
  params[i] = { ARGV[base + 1], tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4]) }
  local raw = redis.call('GET', KEYS[i])
  if raw then
    -- `t:a:b:c`, then the sliding log's entries: `,age` (cost 1) or `,age:cost`, age counted back from t.
    local t, a, b, c, rest = string.match(raw, '^(%d+):(%d+):(%d+):(%d+)(.*)$')
    if t and string.match(rest, '^[%d:,]*$') then
      t = tonumber(t)
      local entries = {}
      for age, n in string.gmatch(rest, ',(%d+):?(%d*)') do
        entries[#entries + 1] = { t - tonumber(age), tonumber(n) or 1 }
      end
      states[i] = { t, tonumber(a), tonumber(b), tonumber(c), entries }
    end
  end
  local p = params[i]
  results[i] = ALGORITHMS[p[1]](states[i], now, p[2], p[3], p[4], cost)
  if results[i][1] == 0 then
    all_allowed = false
  end
end
local out = {}
for i = 1, #KEYS do
  local r = results[i]
  if cost > 0 and not all_allowed then
    if r[1] == 1 then
      local p = params[i]
      r = ALGORITHMS[p[1]](states[i], now, p[2], p[3], p[4], 0)
    end
  elseif r[5] == 'set' then
    local s = r[6]
    local text = { string.format('%d:%d:%d:%d', s[1], s[2], s[3], s[4]) }
    for _, e in ipairs(s[5] or {}) do
      if e[2] == 1 then
        text[#text + 1] = string.format(',%d', s[1] - e[1])
      else
        text[#text + 1] = string.format(',%d:%d', s[1] - e[1], e[2])
      end
    end
    redis.call('SET', KEYS[i], table.concat(text), 'PX', math.max(1, r[7]))
  elseif r[5] == 'del' then
    redis.call('DEL', KEYS[i])
  end
  for j = 1, 4 do
    out[#out + 1] = r[j]
  end
end
return out
