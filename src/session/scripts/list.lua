
-- list: KEYS[1] the session. The signed-in user's live sessions, pruning index entries whose session is gone. Reads only the
-- current session (no refresh: the caller would not send the cookie again).
-- Returns {'ok', {id, created, last seen, idle expiry}...} or a refusal.
local s, why, detail = authenticate(ARGV[2], ARGV[3])
if not s then
  return refused(why, detail)
end
index_put(s.user, nil, nil)
local out = { 'ok' }
for _, id in ipairs(redis.call('ZRANGE', user_key(s.user), 0, -1)) do
  local f = redis.call('HMGET', session_key(id), 'c', 's', 'e', 'u')
  if f[1] and f[4] == s.user then
    out[#out + 1] = { id, f[1], f[2], f[3] }
  else
    redis.call('ZREM', user_key(s.user), id)
  end
end
return out
