
-- issue: creates a session like SET NX: with the id ARGV[2] and hash ARGV[3] or, should that id be taken
-- already, with the second candidate ARGV[13] and ARGV[14] (a taken id is never overwritten). Replaces the
-- session ARGV[10] (hash ARGV[11]) when given, atomically.
-- ARGV[7] absolute lifetime (ms), ARGV[8] user, ARGV[9] data (JSON), ARGV[12] mode:
--   'sign_in': a new session for ARGV[8]; the replaced session's data, version and counters are carried
--              over only if it belongs to the same user; created and the absolute cap start afresh;
--   'rotate':  the replaced session (which must be valid) gets a new token and keeps everything else,
--              user, created and absolute cap included.
-- KEYS: both candidates' sessions, then the replaced session (when it has the same tag: the caller ends a
-- session of another tag with a script of its own), then the user's index for 'sign_in'.
-- The new ids carry the user's tag ('sign_in') or the replaced session's ('rotate').
-- Returns {'ok', candidate used (1 or 2), HGETALL...}, {'collision', ''}, {'late', ''} or, for 'rotate', a
-- refusal.
if too_late() then
  return { 'late', '' }
end
local new_id, new_hash, chosen = ARGV[2], ARGV[3], 1
if redis.call('EXISTS', session_key(new_id)) == 1 then
  new_id, new_hash, chosen = ARGV[13], ARGV[14], 2
  if redis.call('EXISTS', session_key(new_id)) == 1 then
    return { 'collision', '' }
  end
end
local new_key = session_key(new_id)
local mode = ARGV[12]
local record = { v = '1', u = ARGV[8], c = int(now), a = int(now + tonumber(ARGV[7])), n = '0', d = ARGV[9] }
if ARGV[10] ~= '' then
  local old, why, detail = authenticate(ARGV[10], ARGV[11])
  if old then
    if mode == 'rotate' or old.user == record.u then
      for name, value in pairs(old.f) do
        local carry = name == 'd' or name == 'n' or string.sub(name, 1, 1) == '#'
        if mode == 'rotate' and (name == 'u' or name == 'c' or name == 'a') then
          carry = true
        end
        if carry then
          record[name] = value
        end
      end
    end
    delete_session(old.id, old.user)
  elseif mode == 'rotate' then
    return refused(why, detail)
  end
end
local a = tonumber(record.a)
local e = math.min(now + idle, a)
record.h = new_hash
record.s = int(now)
record.e = int(e)
local args = {}
for name, value in pairs(record) do
  args[#args + 1] = name
  args[#args + 1] = value
end
redis.call('HSET', new_key, unpack(args))
redis.call('PEXPIRE', new_key, int(e - now))
index_put(record.u, new_id, e)
return { 'ok', chosen, redis.call('HGETALL', new_key) }
