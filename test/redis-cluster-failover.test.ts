// kill -9 of a Redis Cluster master under write load (the master of the volume's namespace slot):
// its replica takes over, writes resume by themselves within seconds, no request hangs past its
// deadline, every acknowledged file reads back identical, and the killed node, started again,
// rejoins as a replica while writes go on (test/support/failover-scenarios.ts).
import test from 'ava';
import calculateSlot from 'cluster-key-slot';
import { keys } from '../queues/names.js';
import { useTestRedis } from './support/redis.js';
import { startCluster, type RedisClusterSet, type RedisNode } from './support/redis-topologies.js';
import { failoverScenarios } from './support/failover-scenarios.js';
import { waitFor } from './support/gateway.js';

let cluster: RedisClusterSet;

useTestRedis(async () => {
  cluster = await startCluster({ masters: 3, replicasPerMaster: 1 });
  return { config: cluster.config, client: () => cluster.client() };
});

/** The node that is master of a key's slot now. */
async function masterOf(key: string): Promise<RedisNode> {
  const slot = calculateSlot(key);
  for (const { node } of await cluster.masters()) {
    const ranges = (await node.command('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
    if (ranges.some(([from, to, [, port]]) => slot >= from && slot <= to && port === node.port)) return node;
  }
  throw new Error(`no master serves slot ${slot}`);
}

failoverScenarios({
  victim: 'the master of the namespace slot',
  pick: (vol) => masterOf(keys.nsEntries(vol.ug.volumeId)),
  takenOver: async (vol, killed) => {
    await waitFor('its replica to take over', async () => (await masterOf(keys.nsEntries(vol.ug.volumeId))) !== killed);
  },
  rejoined: async (node) => {
    await cluster.settled();
    const role = (await node.command('ROLE')) as [string];
    if (role[0] !== 'slave') throw new Error(`the rejoined node is a ${role[0]}`);
  },
});

// Serial and last: after every other after hook, so the gateways stop while Redis still answers.
test.serial.after.always(() => cluster?.stop());
