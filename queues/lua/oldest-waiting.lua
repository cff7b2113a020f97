-- When the oldest job still waiting in a BullMQ queue was added, for the queue-age metric: BullMQ
-- pushes new jobs on the left of its wait list and workers take them from the right, so the oldest
-- is the rightmost. Its hash shares the queue's hash tag, hence its slot.
--
-- KEYS[1]  the queue's wait list
-- ARGV[1]  the queue's job key prefix ("<prefix>:<queue>:")
-- Returns the job's timestamp (epoch ms, as its adder's clock said), or nil when nothing waits.
local id = redis.call('LINDEX', KEYS[1], -1)
if not id then return nil end
return redis.call('HGET', ARGV[1] .. id, 'timestamp')
