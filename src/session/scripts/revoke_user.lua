
-- revoke_user: ends every session of the user ARGV[7] (no token: for the application's own use, for
-- example after a password change). KEYS[1] the user's index; ARGV[2..3] are unused.
-- Returns {'ok', number of sessions ended}.
local index = user_key(ARGV[7])
local ended = 0
for _, id in ipairs(redis.call('ZRANGE', index, 0, -1)) do
  if redis.call('HGET', session_key(id), 'u') == ARGV[7] then
    ended = ended + redis.call('DEL', session_key(id))
  end
end
redis.call('DEL', index)
return { 'ok', ended }
