-- Extends a lease, only while its holder still holds it: a holder that lost the lease cannot
-- extend its successor's.
--
-- KEYS[1]  the lease (string: the holder's token)
-- ARGV[1]  the holder's token
-- ARGV[2]  the new time to live, ms
-- Returns 1 when extended, 0 when the lease is not the holder's.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end
