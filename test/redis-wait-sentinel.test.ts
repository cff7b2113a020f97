// Acknowledged means replicated, with Sentinel: every replica the sentinels could promote must
// hold a namespace change, not only those streaming from the master at that moment. A replica that
// dropped off (resyncing, or a master just promoted that none follows yet) would otherwise not be
// waited for, and a failover to it would undo the acknowledged change.
import test, { type ExecutionContext } from 'ava';
import { randomUUID } from 'node:crypto';
import { connectRedis, whenReady, type RedisClient, type RedisTarget } from '../queues/redis.js';
import { ALL_REPLICAS, NotReplicatedError, replicatedWrite } from '../queues/replicas.js';
import { SentinelReplicas } from '../queues/sentinel-replicas.js';
import { startSentinelSet, type SentinelSet } from './support/redis-topologies.js';
import { waitFor } from './support/gateway.js';

let set: SentinelSet;
let target: Extract<RedisTarget, { kind: 'sentinel' }>;

test.before(async () => {
  // One sentinel: below the quorum of 2, so nothing fails over while a replica is held off.
  set = await startSentinelSet({ replicas: 2, sentinels: 1 });
  target = {
    kind: 'sentinel', sentinels: set.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })), name: set.name,
    user: null, password: null, sentinelPassword: null, tls: null,
  };
});

test.after.always(() => set?.stop());

/** Replicas the master streams to. */
async function streaming(): Promise<number> {
  const [master] = set.nodes;
  return [...String(await master!.command('INFO', 'replication')).matchAll(/^slave\d+:.*state=online/gm)].length;
}

/** Cuts a replica off its master (its AUTH is refused from now on) while the sentinel still sees it up. */
async function holdOff(node: SentinelSet['nodes'][number], streamingAfter: number): Promise<void> {
  await node.command('CONFIG', 'SET', 'masterauth', 'not-the-password');
  await node.command('CLIENT', 'KILL', 'TYPE', 'master');
  await waitFor(`the master to stream to ${streamingAfter} replica(s)`, async () => (await streaming()) === streamingAfter);
}

/** A new writing connection: it asks for the replicas now (a connection keeps its count 1 s). */
async function freshWriter(t: ExecutionContext, name: string): Promise<RedisClient> {
  const writer = connectRedis(target, 'fail-fast', name);
  t.teardown(() => writer.disconnect());
  await whenReady(writer);
  return writer;
}

test.serial('a replica the sentinels could promote but the master no longer streams to is waited for: the write is not acknowledged', async (t) => {
  const [, held, other] = set.nodes;
  // The sentinel counts both once its links to them are up and it has their INFO.
  await waitFor('the sentinel to count both replicas as candidates', async () => (await new SentinelReplicas(target).count()) === 2);
  const writer = await freshWriter(t, 'sgw-test-writer');
  const policy = { acks: ALL_REPLICAS, timeoutMs: 1500 };
  const key = `t:${randomUUID()}`;
  await replicatedWrite(writer, policy, key, (p) => p.set(key, 'both replicas up'));
  t.is(await other!.command('GET', key), 'both replicas up');

  try {
    await holdOff(held!, 1);
    const later = await freshWriter(t, 'sgw-test-writer-2');
    const err = await t.throwsAsync(replicatedWrite(later, policy, key, (p) => p.set(key, 'one replica held off')), { instanceOf: NotReplicatedError });
    t.regex(err!.message, /1 of the 2 replica\(s\)/);
    t.is(await other!.command('GET', key), 'one replica held off', 'the streaming replica has it, but a failover could pick the other');

    // No replica streams (as after a failover, before any replica follows the new master): the
    // master alone must not acknowledge.
    await holdOff(other!, 0);
    const alone = await freshWriter(t, 'sgw-test-writer-3');
    const lone = await t.throwsAsync(replicatedWrite(alone, policy, key, (p) => p.set(key, 'no replica')), { instanceOf: NotReplicatedError });
    t.regex(lone!.message, /0 of the 2 replica\(s\)/);
  } finally {
    for (const node of [held!, other!]) await node.command('CONFIG', 'SET', 'masterauth', '');
  }
  await waitFor('the held replicas to stream again', async () => (await streaming()) === 2);
  await replicatedWrite(writer, policy, key, (p) => p.set(key, 'back'));
  t.is(await held!.command('GET', key), 'back');
});
