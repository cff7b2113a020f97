// Redis restarts under load: every request still gets an answer within its deadline, and every
// actor (http, read, write, delete) resumes by itself once Redis is back.
import test from 'ava';
import { ChunkType } from '../proto/messages.js';
import { formatBlockUrl } from '../http/data-url.js';
import { deleteChunksFields, layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import { restartTestRedis } from './support/redis.js';
import { fileRef, waitFor } from './support/gateway.js';
import { gatewayPerFile } from './support/gateway-per-file.js';

const REQUEST_TIMEOUT_MS = 5000;
// An answer may take the request deadline plus connection set-up and scheduling on a busy machine.
const ANSWER_WITHIN_MS = REQUEST_TIMEOUT_MS + 10_000;
const RESUME_BACKSTOP_MS = 60_000;
const WORKERS = 3;

const gateway = gatewayPerFile({ config: { limits: { call_timeout_ms: 3000, request_timeout_ms: REQUEST_TIMEOUT_MS, max_upload_bytes: 8 << 20 } } });

type Op = 'write' | 'read' | 'delete';
interface Outcome { op: Op; status: number; ms: number; at: number }

/** Runs one request, recording a hang (status 0) instead of waiting past ANSWER_WITHIN_MS. */
async function timed(op: Op, run: () => Promise<number>, log: Outcome[]): Promise<number> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<number>((resolve) => { timer = setTimeout(() => resolve(0), ANSWER_WITHIN_MS); });
  const status = await Promise.race([run().catch(() => -1), hang]);
  clearTimeout(timer);
  log.push({ op, status, ms: Date.now() - started, at: started });
  return status;
}

/** One cycle through every mode on a fresh block: PUTCHUNKS, GET (a cache miss), DELETECHUNKS. */
async function cycle(worker: number, n: number, log: Outcome[]): Promise<void> {
  const { f } = gateway;
  const file = fileRef(f, { file_id: 0x7e570000n + BigInt(worker) });
  const block = { block_id: BigInt(n), block_version: 1n, chunk_type: ChunkType.BLOCK };
  const bytes = Buffer.from(`worker ${worker} block ${n}`);
  const { blocks, data } = layOutChunks([{ block, bytes }]);
  const put = await timed('write', async () => {
    const r = await sendControlPlane(f.url, putChunksFields(file, blocks), f.ugKey, data);
    return r.status === 200 && r.reply?.error_code !== 0 ? 500 : r.status;
  }, log);
  if (put !== 200) return;
  await timed('read', async () => {
    const res = await fetch(formatBlockUrl(f.url, { volume_id: 3n, fs_path: file.fs_path, file_id: file.file_id, file_version: file.file_version, block_id: block.block_id, block_version: 1n }));
    const body = Buffer.from(await res.arrayBuffer());
    return res.status === 200 && !body.equals(bytes) ? 500 : res.status;
  }, log);
  await timed('delete', async () => {
    const r = await sendControlPlane(f.url, deleteChunksFields(file, blocks), f.ugKey, null);
    return r.status === 200 && r.reply?.error_code !== 0 ? 500 : r.status;
  }, log);
}

test('a Redis restart under load: no request hangs, and read, write and delete succeed again', async (t) => {
  // A mode that does not come back is the actors' story: their warnings and errors, on failure.
  t.teardown(() => {
    if (!t.passed) t.log(gateway.gw.output().split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-60).map((l) => l.slice(0, 400)).join('\n'));
  });
  const log: Outcome[] = [];
  let running = true;
  const workers = Array.from({ length: WORKERS }, async (_, w) => {
    for (let n = 0; running; n++) await cycle(w, n, log);
  });
  await waitFor('the load under way', async () => log.filter((o) => o.status === 200).length >= 6);

  await restartTestRedis(Number(process.env.SGW_TEST_REDIS_DOWN_MS ?? 1000));
  const back = Date.now();
  const resumed = new Map<Op, number>();
  // Seconds on a quiet machine (logged); past the backstop the test fails as a hang.
  await waitFor('read, write and delete to succeed again', async () => {
    for (const o of log) if (o.status === 200 && o.at >= back && !resumed.has(o.op)) resumed.set(o.op, o.at + o.ms - back);
    return resumed.size === 3;
  }, RESUME_BACKSTOP_MS).catch(() => undefined);
  // And it keeps working: a few more whole cycles once every mode is back.
  const resumedAt = back + Math.max(0, ...resumed.values());
  if (resumed.size === 3) await waitFor('more requests after resuming', async () => log.filter((o) => o.at > resumedAt + 200).length >= 6);
  running = false;
  await Promise.all(workers);

  t.log(`resumed after Redis came back (ms): ${JSON.stringify(Object.fromEntries(resumed))}; ${log.length} requests`);
  t.log(`statuses: ${JSON.stringify(log.reduce<Record<string, number>>((a, o) => { a[o.status] = (a[o.status] ?? 0) + 1; return a; }, {}))}`);
  for (const op of ['write', 'read', 'delete'] as const) t.true(resumed.has(op), `${op} requests succeed again after the restart`);
  const hung = log.filter((o) => o.status === 0);
  t.deepEqual(hung, [], 'every request was answered within its deadline');
  const unexpected = log.filter((o) => o.status !== 200 && o.status !== 503);
  t.deepEqual(unexpected, [], 'a request is served (200) or refused with 503 while Redis is away');
  const slowest = Math.max(...log.map((o) => o.ms));
  t.true(slowest <= ANSWER_WITHIN_MS, `slowest answer ${slowest} ms`);
  const tail = log.filter((o) => o.at > back + Math.max(...resumed.values()) + 200);
  t.true(tail.length > 0 && tail.every((o) => o.status === 200), 'once resumed, every request succeeds');
});
