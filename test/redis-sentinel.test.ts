// sgw on a Sentinel-watched Redis (a master, two replicas, three sentinels): a replica gateway
// split over two process trees and a user gateway under write load; the master is killed with
// SIGKILL. Writes resume by themselves within seconds, no request hangs past its deadline, every
// acknowledged file reads back identical, and the old master, started again, rejoins as a
// replica while writes go on undisturbed.
import test from 'ava';
import { useTestRedis, testRedisTarget } from './support/redis.js';
import { startSentinelSet, waitForNewMaster, type RedisNode, type SentinelSet } from './support/redis-topologies.js';
import { checkLoadOutcome, startSplitVolume, WriteLoad, type SplitVolume } from './support/failover-load.js';
import { waitFor } from './support/gateway.js';
import type { RedisClient } from '../queues/redis.js';

/** The spec: writes resume within this after the master is killed. */
const RESUME_WITHIN_MS = 15_000;

let set: SentinelSet;
let vol: SplitVolume;
let redis: RedisClient;
let oldMaster: RedisNode;

useTestRedis(async () => {
  set = await startSentinelSet({ replicas: 2, sentinels: 3 });
  return { config: set.config, client: () => set.client() };
});

test.before(async () => {
  redis = (await testRedisTarget()).client();
  vol = await startSplitVolume(redis);
});

test.after.always(async () => {
  await vol?.stop();
  redis?.disconnect();
  await set?.stop();
});

test.serial('kill -9 of the master under write load: writes resume within 15 s, nothing hangs, every acknowledged file reads back', async (t) => {
  const load = new WriteLoad(vol.client, '/before');
  load.start();
  try {
    await waitFor('writes under way', async () => load.acknowledged.size >= 5, 30_000);
    oldMaster = await set.master();
    const killed = Date.now();
    await oldMaster.kill();
    const fresh = await waitForNewMaster(set, oldMaster);
    t.not(fresh, oldMaster);
    const resumed = await load.resumedAfter(killed, RESUME_WITHIN_MS);
    t.log(`first write acknowledged ${resumed.started + resumed.ms - killed} ms after the kill`);
    await waitFor('more writes after the failover', async () => load.answers.filter((a) => a.started > resumed.started && a.status === 201).length >= 5, 30_000);
  } finally {
    await load.stop();
  }
  await checkLoadOutcome(t, load, vol.client, vol.output);
});

test.serial('the old master, started again, rejoins as a replica without disturbing writes', async (t) => {
  const load = new WriteLoad(vol.client, '/rejoin');
  load.start();
  try {
    await waitFor('writes under way', async () => load.acknowledged.size >= 3, 30_000);
    await oldMaster.start();
    await waitFor('the old master to become a replica in sync', async () => {
      const role = (await oldMaster.command('ROLE')) as [string, string, number, string];
      return role[0] === 'slave' && role[3] === 'connected';
    }, 60_000);
    const rejoined = Date.now();
    await waitFor('writes after the rejoin', async () => load.answers.filter((a) => a.started > rejoined && a.status === 201).length >= 5, 30_000);
  } finally {
    await load.stop();
  }
  t.deepEqual(load.answers.filter((a) => a.status !== 201).map((a) => `${a.status}: ${a.body}`), [], 'every write was acknowledged');
  await checkLoadOutcome(t, load, vol.client, vol.output);
});
