// Acknowledged means replicated: with a master that has a replica, a UG's namespace change is
// answered only once the replica holds it (WAIT), and while the replica hangs the change gets
// 503 with Retry-After after replication.timeout_ms instead of a 2xx one failover could undo.
// A remembered nonce likewise, and one the replica did not confirm is forgotten again.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { keys } from '../queues/names.js';
import { NonceStore } from '../queues/nonces.js';
import { connectRedis, redisAt, whenReady } from '../queues/redis.js';
import { NotReplicatedError } from '../queues/replicas.js';
import { useTestRedis } from './support/redis.js';
import { startReplicated, type ReplicatedRedis } from './support/redis-topologies.js';
import { patternBytes } from './support/ug.js';
import { ugVolumePerFile } from './support/ug-per-file.js';
import { waitFor } from './support/gateway.js';

const TIMEOUT_MS = 4000;
let redis: ReplicatedRedis;

useTestRedis(async () => {
  redis = await startReplicated(1);
  return { config: redis.master.url, client: () => redis.master.admin() };
});

// The replica gateway's nonces do not wait here: these tests are about the UG's namespace changes.
const vol = ugVolumePerFile({ rgs: 1, ugConfig: { replication: { acks: 1, timeout_ms: TIMEOUT_MS } }, rgConfig: { replication: { acks: 0 } } });

const entryOn = async (node: ReplicatedRedis['master'], path: string) =>
  node.command('HGET', keys.nsEntries(vol.v.ug.volumeId), path);

test.serial('a write is answered only after the replica holds its namespace entry', async (t) => {
  const [replica] = redis.replicas;
  replica!.pause();
  let answered = false;
  const put = vol.v.client.put('/acked.bin', patternBytes(10_000, 1)).finally(() => { answered = true; });
  try {
    await waitFor('the entry on the master', async () => entryOn(redis.master, '/acked.bin'));
    t.false(answered, 'the master has the entry, but the write waits for the stopped replica');
  } finally {
    replica!.resume();
  }
  const res = await put;
  t.is(res.status, 201, res.body.toString());
  t.truthy(await entryOn(replica!, '/acked.bin'), 'acknowledged: the replica holds the entry');
});

test.serial('while the replica hangs, writes, renames and deletes get 503 with Retry-After after replication.timeout_ms, never a 2xx', async (t) => {
  const { client } = vol.v;
  t.is((await client.put('/to-rename.bin', patternBytes(100, 2))).status, 201);
  t.is((await client.put('/to-delete.bin', patternBytes(100, 3))).status, 201);
  const [replica] = redis.replicas;
  replica!.pause();
  try {
    const started = Date.now();
    const answers = await Promise.all([
      client.put('/unacked.bin', patternBytes(100, 4)), client.mv('/to-rename.bin', '/renamed.bin'), client.rm('/to-delete.bin'),
    ]);
    for (const a of answers) {
      t.is(a.status, 503, a.body.toString());
      t.truthy(a.headers.get('retry-after'));
      t.regex(a.body.toString(), /replica\(s\) asked for confirmed it within 4000 ms/);
    }
    t.true(Date.now() - started >= TIMEOUT_MS, 'each waited for the replica as long as configured');
  } finally {
    replica!.resume();
  }
  // With the replica back, the next change is acknowledged again.
  t.is((await client.put('/after.bin', patternBytes(100, 5))).status, 201);
  t.truthy(await entryOn(replica!, '/after.bin'));
});

test.serial('a nonce counts as remembered once the replica has it; one the stopped replica did not confirm is forgotten, so the request may come again', async (t) => {
  const redis2 = connectRedis(redisAt(redis.master.url), 'fail-fast', 'sgw-test-nonces');
  await whenReady(redis2);
  t.teardown(() => redis2.disconnect());
  const store = new NonceStore(redis2, `rg.${randomUUID()}`, 60_000, { replication: { acks: 1, timeoutMs: 1000 } });
  t.true(await store.firstUse(7n, 1n));
  t.false(await store.firstUse(7n, 1n), 'remembered');
  const [replica] = redis.replicas;
  replica!.pause();
  try {
    await t.throwsAsync(store.firstUse(7n, 2n), { instanceOf: NotReplicatedError });
  } finally {
    replica!.resume();
  }
  t.true(await store.firstUse(7n, 2n), 'the unconfirmed nonce was forgotten: the same request is accepted once the replica is back');
  t.false(await store.firstUse(7n, 2n));
});

// Serial and last: after every other after hook, so the gateways stop while Redis still answers.
test.serial.after.always(async () => {
  redis?.replicas[0]?.resume();
  await redis?.stop();
});
