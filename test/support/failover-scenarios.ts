// The Redis failover scenarios, for any deployment that can lose a master (Sentinel, Cluster): a
// split volume per test file (an RG as two process trees, a UG writing to it), then kill -9 of a
// master under write load, and the killed node started again while writes go on. Kept apart from
// failover-load.ts because importing 'ava' outside the ava CLI ends the process.
import test from 'ava';
import type { RedisClient } from '../../queues/redis.js';
import { waitFor } from './gateway.js';
import { testRedisTarget } from './redis.js';
import type { RedisNode } from './redis-topologies.js';
import { checkLoadOutcome, startSplitVolume, WriteLoad, type SplitVolume } from './failover-load.js';

/**
 * Writes resume within seconds of a kill (measured and logged; docs/redis.md has the figures).
 * Not asserted as a time: on a busy machine the failover itself takes longer. Past this the
 * test fails as a hang.
 */
const RESUME_BACKSTOP_MS = 60_000;

export interface PerFileSplitVolume {
  readonly vol: SplitVolume;
  readonly redis: RedisClient;
}

/** Starts a split volume on the file's Redis (serial before) and stops it (after.always). */
export function splitVolumePerFile(): PerFileSplitVolume {
  let vol: SplitVolume | undefined;
  let redis: RedisClient | undefined;
  test.serial.before(async () => {
    redis = (await testRedisTarget()).client();
    vol = await startSplitVolume(redis);
  });
  test.after.always(async () => {
    await vol?.stop();
    redis?.disconnect();
  });
  const started = <T>(x: T | undefined): T => {
    if (x === undefined) throw new Error('the per-file volume is not available before its before hook ran');
    return x;
  };
  return {
    get vol() { return started(vol); },
    get redis() { return started(redis); },
  };
}

export interface Failover {
  /** "the master", "the master of the namespace slot": names the tests. */
  victim: string;
  /** The master the volume's writes depend on now. */
  pick(vol: SplitVolume): Promise<RedisNode>;
  /** Waits until another node serves in the killed one's place. */
  takenOver(vol: SplitVolume, killed: RedisNode): Promise<void>;
  /** Waits until the killed node, started again, serves as a replica. */
  rejoined(node: RedisNode): Promise<void>;
  /** The deployment's state in a line, logged when writes do not resume. */
  describe?(): Promise<string>;
}

/** Registers the two failover tests (serial, in this order) on a split volume of the file. */
export function failoverScenarios(failover: Failover): void {
  const v = splitVolumePerFile();
  let killed: RedisNode | undefined;

  test.serial(`kill -9 of ${failover.victim} under write load: writes resume, nothing hangs, every acknowledged file reads back`, async (t) => {
    const { vol } = v;
    const load = new WriteLoad(vol.client, '/before');
    load.start();
    try {
      await waitFor('writes under way', async () => load.acknowledged.size >= 5);
      killed = await failover.pick(vol);
      const at = Date.now();
      await killed.kill();
      const resumed = await load.resumedAfter(at, RESUME_BACKSTOP_MS).catch(async (err: Error) => {
        t.log('last answers:', load.answers.slice(-5).map((a) => `${a.status} ${a.body.slice(0, 160)}`).join(' | '));
        t.log('now:', await failover.describe?.().catch((e: Error) => e.message));
        t.log(vol.output().split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-15).map((l) => l.slice(0, 300)).join('\n'));
        throw err;
      });
      t.log(`first write acknowledged ${resumed.started + resumed.ms - at} ms after the kill`);
      await failover.takenOver(vol, killed);
      await waitFor('more writes after the failover', async () => load.answers.filter((a) => a.started > resumed.started && a.status === 201).length >= 5);
    } finally {
      await load.stop();
    }
    await checkLoadOutcome(t, load, vol.client, vol.output);
  });

  test.serial(`${failover.victim}, killed and started again, rejoins as a replica without disturbing writes`, async (t) => {
    const { vol } = v;
    if (!killed) throw new Error('the kill test did not run');
    const load = new WriteLoad(vol.client, '/rejoin');
    load.start();
    try {
      await waitFor('writes under way', async () => load.acknowledged.size >= 3);
      await killed.start();
      await failover.rejoined(killed);
      const rejoined = Date.now();
      await waitFor('writes after the rejoin', async () => load.answers.filter((a) => a.started > rejoined && a.status === 201).length >= 5);
    } finally {
      await load.stop();
    }
    t.deepEqual(load.answers.filter((a) => a.status !== 201).map((a) => `${a.status}: ${a.body}`), [], 'every write was acknowledged');
    await checkLoadOutcome(t, load, vol.client, vol.output);
  });
}
