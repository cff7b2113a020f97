// Replay protection's memory in Redis: bytes per remembered nonce after 1k, 100k and 1M POSTs'
// worth, each added through NonceStore with its arrival time spread evenly over one window (the
// steady state of a gateway receiving them at a constant rate), measured as the growth of Redis's
// used_memory on a redis-server of its own. Against the former design, one key per nonce (SET NX PX),
// in the same run.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { startRedisServer } from '../actors/supervisor/embedded-redis.js';
import { NonceStore } from '../queues/nonces.js';
import type { Row } from './report.js';

const COUNTS = [1_000, 100_000, 1_000_000];
const WINDOW_MS = 86_400_000;
const BATCH = 2_000;
const SENDER = 10n;
const log = (m: string) => process.stderr.write(`bench: ${m}\n`);

async function usedMemory(redis: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
}

/** Adds `count` nonces in batches of concurrent calls; calls per second. */
async function fill(count: number, add: (i: number) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < count; i += BATCH) {
    const calls: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(count, i + BATCH); j++) calls.push(add(j));
    await Promise.all(calls);
  }
  return count / ((performance.now() - started) / 1000);
}

/** Keys of the sets that are no longer intsets (each costs ~60 B a member instead of 8). */
async function nonIntsetSets(redis: Redis): Promise<number> {
  let cursor = '0';
  let count = 0;
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', 'sgw:{*nonce*', 'COUNT', 1000);
    cursor = next;
    const sets = found.filter((k) => !k.endsWith(':m'));
    const encodings = await Promise.all(sets.map((k) => redis.object('ENCODING', k)));
    count += encodings.filter((e) => e !== 'intset').length;
  } while (cursor !== '0');
  return count;
}

export async function nonceBenchmarks(): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const server = await startRedisServer({ quiet: true });
  const redis = new Redis(server.url);
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  try {
    log('nonces: the former design, one key per nonce (SET NX PX), 100k nonces');
    await redis.flushall();
    let before = await usedMemory(redis);
    await fill(100_000, () => redis.set(`sgw:rg.20:nonce:${SENDER}:${randomBytes(8).readBigUInt64BE()}`, '1', 'PX', WINDOW_MS, 'NX'));
    const perKey = (await usedMemory(redis) - before) / 100_000;
    raw.oneKeyPerNonce = perKey;
    for (const count of COUNTS) {
      log(`nonces: ${count} through NonceStore, arrivals spread over one window`);
      await redis.flushall();
      before = await usedMemory(redis);
      const end = Date.now();
      let now = end - WINDOW_MS;
      const store = new NonceStore(redis, 'rg.20', WINDOW_MS, { clock: () => now });
      const rate = await fill(count, (i) => {
        now = end - WINDOW_MS + Math.floor((i / count) * WINDOW_MS);
        return store.firstUse(SENDER, randomBytes(8).readBigUInt64BE());
      });
      const bytes = (await usedMemory(redis)) - before;
      const spilled = await nonIntsetSets(redis);
      const keys = await redis.dbsize();
      raw[`nonces${count}`] = { bytes, keys, spilled, rate };
      rows.push({
        name: `Redis memory per remembered nonce, ${count.toLocaleString('en')} nonces`, value: bytes / count, unit: 'B',
        baseline: perKey, baselineName: 'one key per nonce',
        ...(count === 1_000_000 ? { target: '≤ 64 B', pass: bytes / count <= 64 } : {}),
        note: `${keys} keys, ${spilled} sets past the intset limit; ${Math.round(rate)} firstUse calls/s`,
      });
    }
  } finally {
    redis.disconnect();
    await server.stop();
  }
  return { rows, raw };
}
