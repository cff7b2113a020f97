// How long calls have waited in a mode's queue, for the metrics an autoscaler scales worker hosts
// on: one small script per queue (queues/lua/oldest-waiting.lua), run on scrape.
import { queuePrefix } from './names.js';
import type { RedisClient } from './redis.js';
import { runScript } from './scripts.js';

/** When the oldest job still waiting in a queue was added (epoch ms, its adder's clock), or null when none waits. */
export async function oldestWaiting(redis: RedisClient, queueName: string): Promise<number | null> {
  // BullMQ's key layout: "<prefix>:<queue>:wait" and "<prefix>:<queue>:<job id>".
  const base = `${queuePrefix(queueName)}:${queueName}:`;
  const at = await runScript(redis, 'oldestWaiting', [`${base}wait`], [base]);
  return at === null ? null : Number(at);
}
