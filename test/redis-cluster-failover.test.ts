// kill -9 of a Redis Cluster master under write load (the master of the volume's namespace slot):
// its replica takes over, writes resume by themselves within seconds, no request hangs past its
// deadline, every acknowledged file reads back identical, and the killed node, started again,
// rejoins as a replica while writes go on.
import test from 'ava';
import calculateSlot from 'cluster-key-slot';
import { keys } from '../queues/names.js';
import { testRedisTarget, useTestRedis } from './support/redis.js';
import { startCluster, type RedisClusterSet, type RedisNode } from './support/redis-topologies.js';
import { checkLoadOutcome, startSplitVolume, WriteLoad, type SplitVolume } from './support/failover-load.js';
import { waitFor } from './support/gateway.js';
import type { RedisClient } from '../queues/redis.js';

/** The spec: writes resume within this after the master is killed. */
const RESUME_WITHIN_MS = 15_000;

let cluster: RedisClusterSet;
let vol: SplitVolume;
let redis: RedisClient;
let killed: RedisNode;

useTestRedis(async () => {
  cluster = await startCluster({ masters: 3, replicasPerMaster: 1 });
  return { config: cluster.config, client: () => cluster.client() };
});

test.before(async () => {
  redis = (await testRedisTarget()).client();
  vol = await startSplitVolume(redis);
});

test.after.always(async () => {
  await vol?.stop();
  redis?.disconnect();
  await cluster?.stop();
});

/** The node that is master of a key's slot now. */
async function masterOf(key: string): Promise<RedisNode> {
  const slot = calculateSlot(key);
  for (const { node } of await cluster.masters()) {
    const ranges = ((await node.command('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][])
      .filter(([from, to, [, port]]) => slot >= from && slot <= to && port === node.port);
    if (ranges.length > 0) return node;
  }
  throw new Error(`no master serves slot ${slot}`);
}

test.serial('kill -9 of the master of the namespace slot under write load: writes resume within 15 s, nothing hangs, every acknowledged file reads back', async (t) => {
  const load = new WriteLoad(vol.client, '/before');
  load.start();
  try {
    await waitFor('writes under way', async () => load.acknowledged.size >= 5, 30_000);
    killed = await masterOf(keys.nsEntries(vol.ug.volumeId));
    const at = Date.now();
    await killed.kill();
    const resumed = await load.resumedAfter(at, RESUME_WITHIN_MS);
    t.log(`first write acknowledged ${resumed.started + resumed.ms - at} ms after the kill`);
    await waitFor('more writes after the failover', async () => load.answers.filter((a) => a.started > resumed.started && a.status === 201).length >= 5, 30_000);
  } finally {
    await load.stop();
  }
  t.not(await masterOf(keys.nsEntries(vol.ug.volumeId)), killed, 'its replica took over');
  await checkLoadOutcome(t, load, vol.client, vol.output);
});

test.serial('the killed master, started again, rejoins as a replica without disturbing writes', async (t) => {
  const load = new WriteLoad(vol.client, '/rejoin');
  load.start();
  try {
    await waitFor('writes under way', async () => load.acknowledged.size >= 3, 30_000);
    await killed.start();
    await cluster.settled(60_000);
    const role = (await killed.command('ROLE')) as [string];
    t.is(role[0], 'slave');
    const rejoined = Date.now();
    await waitFor('writes after the rejoin', async () => load.answers.filter((a) => a.started > rejoined && a.status === 201).length >= 5, 30_000);
  } finally {
    await load.stop();
  }
  t.deepEqual(load.answers.filter((a) => a.status !== 201).map((a) => `${a.status}: ${a.body}`), [], 'every write was acknowledged');
  await checkLoadOutcome(t, load, vol.client, vol.output);
});
