// How much Redis memory sgw's state takes, for sizing a Redis (docs/redis.md): a file in a volume
// namespace and a job waiting in a driver queue (a small call, and a write carrying a 4 KiB chunk
// inline). Each is added many times to an empty Redis of its own, and INFO's used_memory grows by
// that many times its size. Remembered nonces have a phase of their own (nonces.ts).
import { randomBytes, randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { startRedisServer } from '../actors/supervisor/embedded-redis.js';
import { Namespace, random64 } from '../queues/namespace/namespace.js';
import { keys, modeQueueName, queuePrefix } from '../queues/names.js';
import { make_metadata_command } from '../drivers/helpers.js';
import { connectRedis, redisAt, whenReady, type RedisClient } from '../queues/redis.js';
import { JOB_RETENTION, type CallData, type JobData } from '../queues/ask.js';
import type { Row } from './report.js';
import { redisUsedMemory } from './support.js';

const log = (m: string) => process.stderr.write(`bench: ${m}\n`);
const FILES = 100_000;
const JOBS = 10_000;

/** Bytes per item: used_memory after adding `count` items, less before, over count. */
async function perItem(redis: RedisClient, count: number, add: (from: number, to: number) => Promise<unknown>): Promise<number> {
  const before = await redisUsedMemory(redis);
  for (let i = 0; i < count; i += 1000) await add(i, Math.min(count, i + 1000));
  return ((await redisUsedMemory(redis)) - before) / count;
}

/** A call as the asker puts it in a job: a DriverRequest of a block, maybe a chunk inline. */
function call(chunk?: Buffer): CallData {
  const data: CallData = { id: randomUUID(), reply: keys.results(randomUUID()), deadline: Date.now() + 30_000, req: randomBytes(120).toString('base64') };
  if (chunk) data.chunk = chunk.toString('base64');
  return data;
}

export async function redisMemoryBenchmarks(): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const server = await startRedisServer({ quiet: true });
  const redis = connectRedis(redisAt(server.url), 'patient', 'sgw-bench-memory');
  try {
    await whenReady(redis);
    log(`Redis memory: ${FILES} files in a namespace (10 directories, 30-byte names)`);
    const ns = new Namespace(redis, 42n);
    for (let d = 0; d < 10; d++) await ns.apply(make_metadata_command('create', 'directory', 0o755, null, `/dir${d}`)!, 10n, null);
    const file = await perItem(redis, FILES, (from, to) => Promise.all(Array.from({ length: to - from }, (_, k) => ns.publishFile({
      path: `/dir${(from + k) % 10}/file-${String(from + k).padStart(8, '0')}-data.bin`, type: 'file', file_id: random64(false), file_version: random64(true),
      size: 1 << 20, mode: 0o644, mtime_sec: 1_700_000_000n, mtime_nsec: 123_456_789, manifest_mtime_sec: 1_700_000_000n, manifest_mtime_nsec: 123_456_789,
      coordinator_id: 10n, read_ttl: 5000, write_ttl: 0,
    }, null).then((rc) => { if (rc !== 0) throw new Error(`publish refused: ${rc}`); }))));
    const jobRows: [string, number][] = [];
    for (const [what, chunk] of [['a small call (a read)', undefined], ['a write with a 4 KiB chunk inline', randomBytes(4096)]] as const) {
      log(`Redis memory: ${JOBS} waiting jobs, each ${what}`);
      const name = modeQueueName(`rg.${randomUUID()}`, 'read');
      const queue = new Queue(name, { connection: redis, prefix: queuePrefix(name), defaultJobOptions: JOB_RETENTION });
      jobRows.push([what, await perItem(redis, JOBS, (from, to) => queue.addBulk(Array.from({ length: to - from }, () => ({ name: 'read', data: { calls: [call(chunk)] } satisfies JobData }))))]);
      await queue.close();
    }
    const rows: Row[] = [
      { name: 'Redis memory per file in a namespace', value: file, unit: 'B', note: 'an entry (hash field, JSON) and a name in its directory (sorted set)' },
      ...jobRows.map(([what, bytes]): Row => ({ name: `Redis memory per waiting job, ${what}`, value: bytes, unit: 'B' })),
    ];
    return { rows, raw: { file, jobs: Object.fromEntries(jobRows) } };
  } finally {
    redis.disconnect();
    await server.stop();
  }
}
