-- Shared by every session script (prepended to each). Keys are derived here from the prefix, the
-- session id and the user id, so the scripts need one Redis node (Upstash and a single redis-server
-- qualify; a Redis Cluster does not).
-- ARGV[1] key prefix, ARGV[2] session id, ARGV[3] SHA-256 of the secret (hex), ARGV[4] now (Unix ms,
-- from the caller's clock, so that tests drive expiry exactly), ARGV[5] idle timeout (ms).
local prefix = ARGV[1]
local now = tonumber(ARGV[4])
local idle = tonumber(ARGV[5])

local function int(n)
  return string.format('%.0f', n)
end

local function session_key(id)
  return prefix .. ':s:' .. id
end

local function user_key(user)
  return prefix .. ':u:' .. user
end

-- Adds or moves a session in its user's index, drops entries whose expiry has passed, and gives the
-- index a TTL that matches its longest-lived session, so that the index never outlives its sessions.
local function index_put(user, id, expires_at)
  local key = user_key(user)
  if id then
    redis.call('ZADD', key, int(expires_at), id)
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now))
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIRE', key, int(math.max(1, tonumber(last[2]) - now)))
  end
end

local function delete_session(id, user)
  redis.call('DEL', session_key(id))
  redis.call('ZREM', user_key(user), id)
end

-- The session `id` if its stored hash is `hash` and it is still alive at `now`; otherwise nil and why.
-- The comparison is between SHA-256 digests: its timing tells nothing about a secret that matches.
-- An expired session is deleted at once (its TTL would remove it a little later anyway).
local function authenticate(id, hash)
  local key = session_key(id)
  local f = redis.call('HMGET', key, 'v', 'h', 'u', 'e', 'a')
  if not f[1] then
    return nil, 'missing'
  end
  if f[1] ~= '1' then
    return nil, 'version', f[1]
  end
  if f[2] ~= hash then
    return nil, 'invalid'
  end
  local e, a = tonumber(f[4]), tonumber(f[5])
  if now >= e or now >= a then
    delete_session(id, f[3])
    return nil, 'expired'
  end
  return { id = id, key = key, user = f[3], e = e, a = a }
end

-- The failure reply of `authenticate`.
local function refused(why, detail)
  return { why, detail or '' }
end

-- Extends the session when less than half the idle window is left (and the absolute cap leaves room);
-- otherwise writes nothing. Returns 1 when it wrote.
local function refresh_if_due(s)
  if s.e < s.a and (s.e - now) * 2 < idle then
    local e = math.min(now + idle, s.a)
    redis.call('HSET', s.key, 's', int(now), 'e', int(e))
    redis.call('PEXPIRE', s.key, int(e - now))
    index_put(s.user, s.id, e)
    s.e = e
    return 1
  end
  return 0
end
