// A call may carry the SHA-256 its chunk must have (a single-chunk PUTCHUNKS hands its hash check
// to the actor that first receives the chunk). The serving actor checks it after the chunk's
// transit, before its handler: a mismatch answers `mismatch` and the handler never runs.
import test from 'ava';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Asker, INLINE_CHUNK_MAX, type CallResult, type IncomingCall } from '../queues/ask.js';
import { CallServer } from '../queues/serve.js';
import { Errno } from '../drivers/errno.js';
import { testRedis } from './support/redis.js';
import { redisAt, whenReady } from '../queues/redis.js';

// Own shared-memory folder, so the large chunk travels by host file without meeting other tests.
const HOST_DIR = mkdtempSync(join(tmpdir(), 'sgw-shm-'));
process.env.SGW_SHM_DIR = HOST_DIR;
test.after.always(() => rmSync(HOST_DIR, { recursive: true, force: true }));

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();

test('a chunk is checked against the call\'s SHA-256 before the handler runs, inline in the job or in a host file', async (t) => {
  const redis = await testRedis();
  const gateway = `rg.${randomUUID()}`;
  const handled: IncomingCall[] = [];
  const server = new CallServer({ mac: null,
    redis: redisAt(redis.url), gateway, mode: 'write', concurrency: 4,
    handler: async (call): Promise<CallResult> => { handled.push(call); return { rc: 0 }; },
  });
  const asker = new Asker(redisAt(redis.url), gateway);
  t.teardown(async () => { await asker.close(); await server.close(1000); });
  await Promise.all([whenReady(asker.redis, 10_000), server.ready()]); // listed on this host: large chunks go by host file

  for (const [how, size] of [['inline', 1000], ['host file', 1 << 20]] as const) {
    t.true(how === 'inline' ? size <= INLINE_CHUNK_MAX : size > INLINE_CHUNK_MAX);
    const chunk = randomBytes(size);
    const right = sha256(chunk);
    const wrong = Buffer.from(right);
    wrong[31] ^= 1;
    handled.length = 0;

    const refused = await asker.ask('write', { request: Buffer.from('req'), chunk, sha256: wrong }, 10_000);
    t.true(refused.mismatch, `${how}: a wrong hash is reported as a mismatch`);
    t.is(refused.rc, -Errno.EBADMSG, how);
    t.is(handled.length, 0, `${how}: the handler never saw the refused chunk`);

    const ok = await asker.ask('write', { request: Buffer.from('req'), chunk, sha256: right }, 10_000);
    t.is(ok.rc, 0, how);
    t.is(ok.mismatch, undefined, how);
    t.is(handled.length, 1, `${how}: the right hash lets the call run`);
    t.true(handled[0]!.chunk!.equals(chunk), how);
    t.deepEqual(handled[0]!.verifiedSha256 && Buffer.from(handled[0]!.verifiedSha256), right, `${how}: the handler is told the checked hash (for drivers: chunkSha256)`);
  }
  // A call without a hash to check tells the handler none.
  handled.length = 0;
  t.is((await asker.ask('write', { request: Buffer.from('req'), chunk: randomBytes(100) }, 10_000)).rc, 0);
  t.is(handled[0]!.verifiedSha256, undefined);
  t.deepEqual(asker.chunkTransfers, { host: 2, redis: 0 }, 'both large chunks went by host file');
});
