--[[
  Replay protection: remembers (sender, nonce) pairs for a window, at ~8-10 bytes each.

  A sender's nonces are spread over a fixed number of shards (nonces.ts picks the shard; every key
  of one call shares the shard's hash tag, so one Redis Cluster slot). Within a shard, time is cut
  into buckets of window/N; a bucket's nonces live in Redis sets of 64-bit integers, which Redis
  keeps as intsets (8 bytes a member) while they hold at most set-max-intset-entries (512 by
  default). A bucket starts with one set and splits one set at a time by linear hashing whenever
  its sets hold more than LOAD members on average, so sets stay small at any rate. Every key of a
  bucket expires at the bucket's end plus the window: a nonce is remembered at least the window,
  at most window * (1 + 1/N).

  KEYS[1]  key prefix of the shard, e.g. "sgw:{rg.20:nonce:10:7}" (nothing is stored under it; the
           script derives every key from it: <prefix>:<bucket>:m, a hash of the bucket's linear
           hashing state {L, p, n}, and <prefix>:<bucket>:<i>, its sets)
  ARGV[1]  "add" (first use: 1 if the nonce was not remembered, and now is; 0 if it was) or
           "forget" (1 if it was remembered and now is not)
  ARGV[2]  the nonce as a signed 64-bit decimal (so Redis can store it as an integer)
  ARGV[3]  now in ms since the epoch, or 0 for Redis's own clock
  ARGV[4]  the window in ms
  ARGV[5]  N, buckets per window
  ARGV[6]  LOAD, average members per set that triggers a split
  ARGV[7]  shards per sender (nonces.ts and this script must agree on how a nonce picks its shard)
]]
local prefix = KEYS[1]
local op, nonce = ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])
local window, n, load, shards = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local width = math.max(1, math.floor(window / n))
local current = math.floor(now / width)
local oldest = current - math.ceil(window / width)

-- The nonce's last nine decimal digits pick its shard (their remainder by shards, in nonces.ts)
-- and, divided by shards, its set within the bucket.
local function spread(member)
  local digits = string.gsub(member, '^-', '')
  return math.floor(tonumber(string.sub(digits, -9)) / shards)
end

local function setIndex(h, level, split)
  local i = h % (2 ^ level)
  if i < split then i = h % (2 ^ (level + 1)) end
  return i
end

local function state(bucket)
  local s = redis.call('HMGET', prefix .. ':' .. bucket .. ':m', 'L', 'p')
  return tonumber(s[1]) or 0, tonumber(s[2]) or 0
end

local h = spread(nonce)

if op == 'forget' then
  for bucket = current, oldest, -1 do
    local level, split = state(bucket)
    if redis.call('SREM', prefix .. ':' .. bucket .. ':' .. setIndex(h, level, split), nonce) == 1 then
      redis.call('HINCRBY', prefix .. ':' .. bucket .. ':m', 'n', -1)
      return 1
    end
  end
  return 0
end

for bucket = current, oldest, -1 do
  local level, split = state(bucket)
  if redis.call('SISMEMBER', prefix .. ':' .. bucket .. ':' .. setIndex(h, level, split), nonce) == 1 then return 0 end
end

local meta = prefix .. ':' .. current .. ':m'
local expireAt = (current + 1) * width + window
local level, split = state(current)
local key = prefix .. ':' .. current .. ':' .. setIndex(h, level, split)
redis.call('SADD', key, nonce)
if redis.call('SCARD', key) == 1 then redis.call('PEXPIREAT', key, expireAt) end
local count = redis.call('HINCRBY', meta, 'n', 1)
if count == 1 then redis.call('PEXPIREAT', meta, expireAt) end

-- Linear hashing: split set `split` into itself and set `split + 2^level`.
if count > load * (2 ^ level + split) then
  local from = prefix .. ':' .. current .. ':' .. split
  local to = prefix .. ':' .. current .. ':' .. (split + 2 ^ level)
  local moving = {}
  for _, member in ipairs(redis.call('SMEMBERS', from)) do
    if spread(member) % (2 ^ (level + 1)) ~= split then moving[#moving + 1] = member end
  end
  if #moving > 0 then
    redis.call('SREM', from, unpack(moving))
    redis.call('SADD', to, unpack(moving))
    redis.call('PEXPIREAT', to, expireAt)
  end
  split = split + 1
  if split == 2 ^ level then
    level, split = level + 1, 0
  end
  redis.call('HSET', meta, 'L', level, 'p', split)
end
return 1
