-- Shared by every session script (prepended to each). Every key of one user begins with the same
-- `<prefix>:{<tag>}` (ARGV[1]), the tag being the user's and the first characters of their session ids:
-- the keys derived here from it (sessions listed in the user's index, the index itself) are in the slot
-- of the keys each script declares, so a Redis Cluster routes the script to the node that holds them all.
-- KEYS: the session keys the script reads or writes, or the user's index (each script says which).
-- ARGV[1] `<prefix>:{<tag>}`, ARGV[2] session id, ARGV[3] SHA-256 of the secret (hex), ARGV[4] now (Unix ms,
-- from the caller's clock, so that tests drive expiry exactly), ARGV[5] idle timeout (ms), ARGV[6] the
-- caller's deadline (Unix ms by its wall clock; '' for none).
local base = ARGV[1]
local now = tonumber(ARGV[4])
local idle = tonumber(ARGV[5])
local deadline = tonumber(ARGV[6])

local function int(n)
  return string.format('%.0f', n)
end

local function session_key(id)
  return base .. ':s:' .. id
end

local function user_key(user)
  return base .. ':u:' .. user
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
-- One HGETALL reads the whole record: `all` is that reply (what the callers return when they wrote
-- nothing), `f` the same fields by name.
local function authenticate(id, hash)
  local key = session_key(id)
  local all = redis.call('HGETALL', key)
  local f = {}
  for i = 1, #all, 2 do
    f[all[i]] = all[i + 1]
  end
  if not f.v then
    return nil, 'missing'
  end
  if f.v ~= '1' then
    return nil, 'version', f.v
  end
  if f.h ~= hash then
    return nil, 'invalid'
  end
  local e, a = tonumber(f.e), tonumber(f.a)
  if not e or not a or now >= e or now >= a then
    delete_session(id, f.u)
    return nil, 'expired'
  end
  return { id = id, key = key, user = f.u, e = e, a = a, all = all, f = f }
end

-- Whether Redis runs this script after the caller's deadline, by Redis's own clock. The caller has
-- then given up and told its client the write failed (a 503): applying it now would change what the
-- client holds behind its back (a sign-in that rotates the session would leave the browser with the
-- cookie of a deleted one). A script that writes checks it first and answers {'late', ...} untouched.
-- Where TIME cannot be called from a script, nothing is refused.
local function too_late()
  if not deadline then
    return false
  end
  local t = redis.pcall('TIME')
  if type(t) ~= 'table' or not t[2] then
    return false
  end
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > deadline
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
