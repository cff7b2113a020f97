-- Applies metadata commands of a crawl or a user gateway (create, put, update, delete) to a volume
-- namespace, in order, each as if alone: a batch saves a round trip and a script call per command.
-- The parent's child set, the entry and the lease are checked and changed in one step, so
-- parents, children and entries never disagree, and a deposed crawler (its lease taken) can
-- change nothing.
--
-- KEYS[1]      the namespace's entries (hash path -> entry JSON)
-- KEYS[2]      the crawl lease fencing the writes (or any key of the slot when unfenced)
-- KEYS[1+2i]   command i's (from 1) parent directory's child names (sorted set)
-- KEYS[2+2i]   command i's path's own child names (sorted set; checked by delete)
-- ARGV[1]      lease token the lease must hold ('' = unfenced)
-- then 7 per command:
--   op: create | put | update | delete
--   path
--   its last segment (the name in the parent)
--   the new entry, JSON (64-bit values as strings)
--   '1' when path is the root
--   the parent's path
--   '1' when the command gave the entry's mtime: a put finding another mtime changes the entry
--   (otherwise the mtime is the time of applying and a put ignores it)
-- Returns each command's answer: 0 (changed), 2 (a put that found the entry as described) or a
-- negative errno.
local n = (#ARGV - 1) / 7
local token = ARGV[1]
local answers = {}
if token ~= '' and redis.call('GET', KEYS[2]) ~= token then
  for i = 1, n do answers[i] = -ERRNO.ESTALE end
  return answers
end
local ROOT_JSON = '{"type":"directory","id":"0","ver":"0","size":"4096","mode":"493","mt_s":"0","mt_ns":"0","mm_s":"0","mm_ns":"0","coord":"0","rttl":"5000","wttl":"0"}'

local function apply(op, path, name, newJson, isRoot, parent, hasMtime, parentChildren, ownChildren)
  local oldJson = redis.call('HGET', KEYS[1], path)
  if isRoot and not oldJson then oldJson = ROOT_JSON end
  if op == 'delete' then
    if not oldJson then return -ERRNO.ENOENT end
    if isRoot then return -ERRNO.EINVAL end
    if redis.call('ZCARD', ownChildren) > 0 then return -ERRNO.ENOTEMPTY end
    redis.call('HDEL', KEYS[1], path)
    redis.call('ZREM', parentChildren, name)
    return 0
  end
  local new = cjson.decode(newJson)
  if oldJson then
    if op == 'create' then return -ERRNO.EEXIST end
    local old = cjson.decode(oldJson)
    if old.type ~= new.type then return -(old.type == 'directory' and ERRNO.EISDIR or ERRNO.ENOTDIR) end
    local sameTime = not hasMtime or (old.mt_s == new.mt_s and old.mt_ns == new.mt_ns)
    if op == 'put' and sameTime and old.size == new.size and old.mode == new.mode and old.rttl == new.rttl and old.wttl == new.wttl then return 2 end
    new.id = old.id
    if new.type == 'directory' then new.ver = old.ver end
    redis.call('HSET', KEYS[1], path, cjson.encode(new))
    return 0
  end
  if op == 'update' then return -ERRNO.ENOENT end
  local parentJson = redis.call('HGET', KEYS[1], parent)
  if parent == '/' and not parentJson then parentJson = '{"type":"directory"}' end
  if not parentJson then return -ERRNO.ENOENT end
  if cjson.decode(parentJson).type ~= 'directory' then return -ERRNO.ENOTDIR end
  redis.call('HSET', KEYS[1], path, newJson)
  redis.call('ZADD', parentChildren, 0, name)
  return 0
end

for i = 1, n do
  local a = 1 + (i - 1) * 7
  answers[i] = apply(ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5] == '1', ARGV[a + 6], ARGV[a + 7] == '1', KEYS[1 + 2 * i], KEYS[2 + 2 * i])
end
return answers
