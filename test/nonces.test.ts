// NonceStore: replay protection's memory in Redis (queues/nonces.ts and nonces.lua), against the
// test file's real redis-server.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { NONCE_BUCKETS, NonceStore } from '../queues/nonces.js';
import { testRedis } from './support/redis.js';
import { waitFor } from './support/gateway.js';

let redis: Redis;
test.before(async () => {
  redis = new Redis((await testRedis()).url);
});
test.after.always(() => redis?.disconnect());

/** A gateway name of its own per test, so tests never see each other's nonces. */
const gatewayName = () => `rg.${randomBytes(4).readUInt32BE()}`;
const randomNonce = () => randomBytes(8).readBigUInt64BE();

test('a nonce is accepted once; its replay within the window is refused; after the window it is accepted again', async (t) => {
  let now = Date.now();
  const windowMs = 60_000;
  const store = new NonceStore(redis, gatewayName(), windowMs, { clock: () => now });
  const nonce = randomNonce();
  t.true(await store.firstUse(7n, nonce));
  t.false(await store.firstUse(7n, nonce), 'a replay at once');
  now += windowMs - 1;
  t.false(await store.firstUse(7n, nonce), 'a replay at the end of the window');
  now += windowMs / NONCE_BUCKETS + 1;
  t.true(await store.firstUse(7n, nonce), 'after the window and its last bucket, it is new again');
  t.false(await store.firstUse(7n, nonce));
});

test("with Redis's own clock, a nonce is refused at once and accepted again once the window has passed", async (t) => {
  // Long enough that a busy machine always makes the second call within it.
  const store = new NonceStore(redis, gatewayName(), 10_000);
  const nonce = randomNonce();
  t.true(await store.firstUse(3n, nonce));
  t.false(await store.firstUse(3n, nonce));
  await waitFor('the window to pass', () => store.firstUse(3n, nonce));
  t.pass();
});

test('senders have separate memories', async (t) => {
  const store = new NonceStore(redis, gatewayName(), 60_000);
  const nonce = randomNonce();
  t.true(await store.firstUse(1n, nonce));
  t.true(await store.firstUse(2n, nonce));
  t.false(await store.firstUse(1n, nonce));
});

test('release forgets that nonce only: it is accepted again, and other nonces stay remembered', async (t) => {
  const store = new NonceStore(redis, gatewayName(), 60_000);
  const [a, b] = [randomNonce(), randomNonce()];
  t.true(await store.firstUse(5n, a));
  t.true(await store.firstUse(5n, b));
  await store.release(5n, a);
  t.true(await store.firstUse(5n, a), 'released: usable once more');
  t.false(await store.firstUse(5n, a));
  t.false(await store.firstUse(5n, b), 'the other nonce is still remembered');
  await store.release(5n, randomNonce()); // a nonce never seen: nothing to forget, no error
});

test('64-bit nonces are exact: 0, 1, 2^63 - 1, 2^63 and 2^64 - 1 are five different nonces', async (t) => {
  const store = new NonceStore(redis, gatewayName(), 60_000);
  const nonces = [0n, 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n];
  for (const n of nonces) t.true(await store.firstUse(9n, n), `first use of ${n}`);
  for (const n of nonces) t.false(await store.firstUse(9n, n), `replay of ${n}`);
  await store.release(9n, 2n ** 64n - 1n);
  t.false(await store.firstUse(9n, 1n), 'releasing 2^64 - 1 (-1 as signed) does not touch 1');
  t.true(await store.firstUse(9n, 2n ** 64n - 1n));
});

test('concurrent first uses of one nonce, from several connections: exactly one wins', async (t) => {
  const gateway = gatewayName();
  const url = (await testRedis()).url;
  const conns = Array.from({ length: 4 }, () => new Redis(url));
  t.teardown(() => conns.forEach((c) => c.disconnect()));
  const stores = conns.map((c) => new NonceStore(c, gateway, 60_000));
  for (let round = 0; round < 20; round++) {
    const nonce = randomNonce();
    const wins = await Promise.all(Array.from({ length: 32 }, (_, i) => stores[i % stores.length]!.firstUse(11n, nonce)));
    t.is(wins.filter(Boolean).length, 1, `round ${round}`);
  }
});

test('under many nonces the sets split and stay intsets, every nonce stays remembered, and each call touches one hash tag', async (t) => {
  const gateway = gatewayName();
  const now = Date.now();
  // A connection of its own: 30,000 calls queued on the shared one would hold up the other tests'
  // calls for seconds, past the window of the one that uses Redis's own clock.
  const own = new Redis((await testRedis()).url);
  t.teardown(() => own.disconnect());
  const store = new NonceStore(own, gateway, 60_000, { clock: () => now });
  const nonces = Array.from({ length: 30_000 }, randomNonce);
  const firsts = await Promise.all(nonces.map((n) => store.firstUse(4n, n)));
  t.true(firsts.every(Boolean));
  const replays = await Promise.all(nonces.map((n) => store.firstUse(4n, n)));
  t.true(replays.every((r) => !r), 'every nonce is still found after the splits moved it');
  const sets: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `sgw:{${gateway}:nonce:*`, 'COUNT', 1000);
    cursor = next;
    sets.push(...found.filter((k) => !k.endsWith(':m')));
  } while (cursor !== '0');
  const tags = new Set(sets.map((k) => /^[^{]*\{([^}]*)\}/.exec(k)![1]));
  t.is(tags.size, 16, 'one hash tag per shard of the sender');
  t.true(sets.length > 100, `the buckets split (${sets.length} sets)`);
  const encodings = await Promise.all(sets.map((k) => redis.object('ENCODING', k)));
  t.deepEqual([...new Set(encodings)], ['intset']);
  const sizes = await Promise.all(sets.map((k) => redis.scard(k)));
  t.is(sizes.reduce((a, b) => a + b, 0), nonces.length);
});
