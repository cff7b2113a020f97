// sgw on a Sentinel-watched Redis (a master, two replicas, three sentinels): a replica gateway
// split over two process trees and a user gateway under write load; the master is killed with
// SIGKILL. Writes resume by themselves within seconds, no request hangs past its deadline, every
// acknowledged file reads back identical, and the old master, started again, rejoins as a
// replica while writes go on undisturbed (test/support/failover-scenarios.ts).
import test from 'ava';
import { useTestRedis } from './support/redis.js';
import { startSentinelSet, waitForNewMaster, type SentinelSet } from './support/redis-topologies.js';
import { failoverScenarios } from './support/failover-scenarios.js';
import { waitFor } from './support/gateway.js';

let set: SentinelSet;

useTestRedis(async () => {
  set = await startSentinelSet({ replicas: 2, sentinels: 3 });
  return { config: set.config, client: () => set.client() };
});

failoverScenarios({
  victim: 'the master',
  pick: () => set.master(),
  describe: async () => {
    const roles = await Promise.all(set.nodes.map(async (n) => `${n.port}: ${String(((await n.command('ROLE').catch(() => ['down'])) as string[])[0])}`));
    return `sentinels name ${(await set.master()).port} master; ${roles.join(', ')}`;
  },
  takenOver: async (_vol, killed) => { await waitForNewMaster(set, killed); },
  rejoined: async (node) => {
    await waitFor('the old master to become a replica in sync', async () => {
      const role = (await node.command('ROLE')) as [string, string, number, string];
      return role[0] === 'slave' && role[3] === 'connected';
    });
  },
});

// Serial and last: after every other after hook, so the gateways stop while Redis still answers.
test.serial.after.always(() => set?.stop());
