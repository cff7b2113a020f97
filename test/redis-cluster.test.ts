// sgw on a Redis Cluster (three masters with a replica each): the RG and AG scenarios, and a UG
// writing, reading, renaming and deleting through a replica gateway split over two process trees,
// all pass on it; every script, MULTI and multi-key command stays in one slot; and the keys of
// different gateways and volumes spread over every master.
import test from 'ava';
import { DATASET_DRIVER_JS } from './support/gateway.js';
import { agScenarios } from './support/ag-scenarios.js';
import { rgScenarios, storedOnDisk } from './support/rg-scenarios.js';
import { useTestRedis } from './support/redis.js';
import { startCluster, type RedisClusterSet } from './support/redis-topologies.js';
import { splitVolumePerFile } from './support/failover-scenarios.js';
import { patternBytes } from './support/ug.js';

let cluster: RedisClusterSet;

useTestRedis(async () => {
  cluster = await startCluster({ masters: 3, replicasPerMaster: 1 });
  return { config: cluster.config, client: () => cluster.client() };
});

// An RG on its own: PUTCHUNKS, GET, DELETECHUNKS, RENAME_HINT, nonces, the bundle it runs.
rgScenarios({ label: 'Cluster, TypeScript', options: {}, stored: storedOnDisk });

// The AG: its crawl writes the namespace under its lease, its driver actors serve blocks.
agScenarios({ driverSource: `export * from ${JSON.stringify(DATASET_DRIVER_JS)};\n` });

const v = splitVolumePerFile();

test.serial('a UG writes, overwrites, reads, renames, lists and deletes files through an RG split over two process trees', async (t) => {
  const { client } = v.vol;
  const files = [0, 1, 65536, 3 * 65536 + 5, 2_000_000].map((n, i) => ({ path: `/c/f${i}.bin`, bytes: patternBytes(n, i + 1) }));
  for (const f of files) t.is((await client.put(f.path, f.bytes)).status, 201, f.path);
  const again = patternBytes(100_000, 99);
  t.is((await client.put(files[1]!.path, again)).status, 201, 'an overwrite');
  files[1]!.bytes = again;
  for (const f of files) {
    const got = await client.get(f.path);
    t.is(got.status, 200, f.path);
    t.true(got.body.equals(f.bytes), f.path);
  }
  t.is((await client.mv('/c/f4.bin', '/d/moved.bin')).status, 200);
  t.true((await client.get('/d/moved.bin')).body.equals(files[4]!.bytes));
  const listed = (await client.list('/c')).json<{ entries: { path: string }[] }>().entries.map((e) => e.path);
  t.deepEqual(listed, ['/c/f0.bin', '/c/f1.bin', '/c/f2.bin', '/c/f3.bin']);
  t.is((await client.rm('/c/f0.bin')).status, 200);
  t.is((await client.stat('/c/f0.bin')).status, 404);
});

// Serial, after the one above: the gateways (AG, two RGs, UG) and their volumes have all written by now.
test.serial('the keys of the gateways, their queues and the volumes spread over every master', async (t) => {
  const masters = await cluster.masters();
  t.is(masters.length, 3);
  t.log('keys per master:', masters.map((m) => m.keys).join(', '));
  for (const m of masters) t.true(m.keys > 0, `master on port ${m.node.port} holds keys`);
});

// Serial and last: after every other after hook, so the gateways stop while Redis still answers.
test.serial.after.always(() => cluster?.stop());
