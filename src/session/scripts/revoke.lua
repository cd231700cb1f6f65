
-- revoke: ends sessions of the signed-in user (KEYS[1] the session; a session of another tag is not
-- theirs, and the caller sends no such target). ARGV[7] mode:
--   'current': this session (sign out);
--   'one':     the session ARGV[8], if it belongs to the same user ('not_found' otherwise);
--   'all':     every session of the user, this one included, and the index (sign out everywhere).
-- Returns {'ok', number of sessions ended}, {'not_found', ''} or a refusal.
local s, why, detail = authenticate(ARGV[2], ARGV[3])
if not s then
  return refused(why, detail)
end
local mode = ARGV[7]
if mode == 'current' then
  delete_session(s.id, s.user)
  return { 'ok', 1 }
elseif mode == 'one' then
  local target = ARGV[8]
  if redis.call('HGET', session_key(target), 'u') ~= s.user then
    return { 'not_found', '' }
  end
  delete_session(target, s.user)
  return { 'ok', 1 }
end
local index = user_key(s.user)
local ended = 0
for _, id in ipairs(redis.call('ZRANGE', index, 0, -1)) do
  ended = ended + redis.call('DEL', session_key(id))
end
ended = ended + redis.call('DEL', s.key)
redis.call('DEL', index)
return { 'ok', ended }
