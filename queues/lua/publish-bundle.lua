-- Stores a driver bundle (unless this content is already stored), points the gateway at it and
-- announces the change, all in one step: a reader never sees a pointer to a missing bundle, and
-- announcements arrive in the order the pointer changed. The three names share the gateway's
-- hash tag, so this runs in one Redis Cluster slot.
--
-- KEYS[1]  the bundle (hash: code, config, meta, secrets)
-- KEYS[2]  the gateway's current version (string: the bundle hash)
-- KEYS[3]  the channel announcing a new version
-- ARGV[1]  the bundle hash
-- ARGV[2]  code
-- ARGV[3]  config (canonical JSON)
-- ARGV[4]  meta (JSON)
-- ARGV[5]  '1' when there are sealed secrets
-- ARGV[6]  the sealed secrets ('' when none)
-- ARGV[7]  the signed manifest (drivers/bundle-signature.ts): written on every publish, since each
--          publish signs a new sequence number (re-publishing an old version is a rollback that
--          actors accept only with a sequence above the running one)
-- Returns 1 when the gateway's version changed, 0 when it already was this one.
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'code', ARGV[2], 'config', ARGV[3], 'meta', ARGV[4])
  if ARGV[5] == '1' then redis.call('HSET', KEYS[1], 'secrets', ARGV[6]) end
end
redis.call('HSET', KEYS[1], 'signed', ARGV[7])
if redis.call('GET', KEYS[2]) == ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('PUBLISH', KEYS[3], ARGV[1])
return 1
