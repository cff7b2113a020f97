-- A user gateway's file operation on a volume namespace: publish a version, remove or rename a
-- file, compare-and-set on the version the writer saw, so two writers of one path cannot both
-- win: the second finds a version it did not expect.
--
-- KEYS[1]  the namespace's entries (hash path -> entry JSON)
-- KEYS[2]  the child names of the path's parent directory (sorted set)
-- KEYS[3]  the child names of the new path's parent (rename; else the same as KEYS[2])
-- ARGV[1]  op: publish | remove | rename
-- ARGV[2]  path
-- ARGV[3]  its last segment
-- ARGV[4]  its parent's path
-- ARGV[5]  the version the path must hold ('' = the path must be absent)
-- ARGV[6]  the new entry, JSON (publish, rename)
-- ARGV[7]  rename: the new path
-- ARGV[8]  rename: its last segment
-- ARGV[9]  rename: its parent's path
-- Returns 0 or a negative errno (-ESTALE: the version changed; -EEXIST: the path appeared).
local op, path, name, parent, expected, newJson = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local function checkDir(p)
  if p == '/' then return 0 end
  local pj = redis.call('HGET', KEYS[1], p)
  if not pj then return -ERRNO.ENOENT end
  if cjson.decode(pj).type ~= 'directory' then return -ERRNO.ENOTDIR end
  return 0
end
local oldJson = redis.call('HGET', KEYS[1], path)
if oldJson then
  local old = cjson.decode(oldJson)
  if old.type ~= 'file' then return -ERRNO.EISDIR end
  if expected == '' then return -ERRNO.EEXIST end
  if old.ver ~= expected then return -ERRNO.ESTALE end
elseif expected ~= '' then
  return -ERRNO.ESTALE
end
if op == 'publish' then
  local rc = checkDir(parent)
  if rc ~= 0 then return rc end
  redis.call('HSET', KEYS[1], path, newJson)
  redis.call('ZADD', KEYS[2], 0, name)
  return 0
end
if not oldJson then return -ERRNO.ENOENT end
if op == 'remove' then
  redis.call('HDEL', KEYS[1], path)
  redis.call('ZREM', KEYS[2], name)
  return 0
end
if op == 'rename' then
  local newPath, newName, newParent = ARGV[7], ARGV[8], ARGV[9]
  if redis.call('HEXISTS', KEYS[1], newPath) == 1 then return -ERRNO.EEXIST end
  local rc = checkDir(newParent)
  if rc ~= 0 then return rc end
  redis.call('HDEL', KEYS[1], path)
  redis.call('ZREM', KEYS[2], name)
  redis.call('HSET', KEYS[1], newPath, newJson)
  redis.call('ZADD', KEYS[3], 0, newName)
  return 0
end
return -ERRNO.EINVAL
