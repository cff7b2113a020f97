-- Applies one metadata command of a crawl (create, put, update, delete) to a volume namespace.
-- The parent's child set, the entry and the lease are checked and changed in one step, so
-- parents, children and entries never disagree, and a deposed crawler (its lease taken) can
-- change nothing.
--
-- KEYS[1]  the namespace's entries (hash path -> entry JSON)
-- KEYS[2]  the child names of the path's parent directory (sorted set)
-- KEYS[3]  the child names of the path itself (sorted set; checked by delete)
-- KEYS[4]  the crawl lease fencing the write (or any key of the slot when unfenced)
-- ARGV[1]  op: create | put | update | delete
-- ARGV[2]  path
-- ARGV[3]  its last segment (the name in the parent)
-- ARGV[4]  the new entry, JSON (64-bit values as strings)
-- ARGV[5]  lease token the lease must hold ('' = unfenced)
-- ARGV[6]  '1' when path is the root
-- ARGV[7]  the parent's path
-- ARGV[8]  '1' when the command gave the entry's mtime: a put finding another mtime changes the
--          entry (otherwise the mtime is the time of applying and a put ignores it)
-- Returns 0 (changed), 2 (a put that found the entry as described) or a negative errno.
local op, path, name, newJson, token, isRoot = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6] == '1'
if token ~= '' and redis.call('GET', KEYS[4]) ~= token then return -ERRNO.ESTALE end
local oldJson = redis.call('HGET', KEYS[1], path)
if isRoot and not oldJson then
  oldJson = cjson.encode({type='directory', id='0', ver='0', size='4096', mode='493', mt_s='0', mt_ns='0', mm_s='0', mm_ns='0', coord='0', rttl='5000', wttl='0'})
end
if op == 'delete' then
  if not oldJson then return -ERRNO.ENOENT end
  if isRoot then return -ERRNO.EINVAL end
  if redis.call('ZCARD', KEYS[3]) > 0 then return -ERRNO.ENOTEMPTY end
  redis.call('HDEL', KEYS[1], path)
  redis.call('ZREM', KEYS[2], name)
  return 0
end
local new = cjson.decode(newJson)
if oldJson then
  if op == 'create' then return -ERRNO.EEXIST end
  local old = cjson.decode(oldJson)
  if old.type ~= new.type then return -(old.type == 'directory' and ERRNO.EISDIR or ERRNO.ENOTDIR) end
  local sameTime = ARGV[8] ~= '1' or (old.mt_s == new.mt_s and old.mt_ns == new.mt_ns)
  if op == 'put' and sameTime and old.size == new.size and old.mode == new.mode and old.rttl == new.rttl and old.wttl == new.wttl then return 2 end
  new.id = old.id
  if new.type == 'directory' then new.ver = old.ver end
  redis.call('HSET', KEYS[1], path, cjson.encode(new))
  return 0
end
if op == 'update' then return -ERRNO.ENOENT end
local parentJson = redis.call('HGET', KEYS[1], ARGV[7])
if ARGV[7] == '/' and not parentJson then parentJson = '{"type":"directory"}' end
if not parentJson then return -ERRNO.ENOENT end
if cjson.decode(parentJson).type ~= 'directory' then return -ERRNO.ENOTDIR end
redis.call('HSET', KEYS[1], path, newJson)
redis.call('ZADD', KEYS[2], 0, name)
return 0
