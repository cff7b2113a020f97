-- Frees a lease, only while its holder still holds it: a holder that lost the lease cannot free
-- its successor's.
--
-- KEYS[1]  the lease (string: the holder's token)
-- ARGV[1]  the holder's token
-- Returns 1 when freed, 0 when the lease is not the holder's.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end
