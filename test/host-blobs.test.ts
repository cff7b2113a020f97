// Large call chunks between actors of one host go through a tmpfs file (queues/blobs.ts); with no
// server of the mode on the asker's host they go through Redis at once, and a worker on another
// host that gets a file anyway cannot read it, so the asker sends the chunk again through Redis.
// Real Redis, real BullMQ, the "other host" a child process with its own shared-memory folder.
import test, { type ExecutionContext } from 'ava';
import { fork, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Asker, decodeReply, type CallResult, type IncomingCall } from '../queues/ask.js';
import { CallServer } from '../queues/serve.js';
import { HostBlobs } from '../queues/blobs.js';
import { HostPresence } from '../queues/registry.js';
import { keys, modeQueueName, queuePrefix } from '../queues/names.js';
import { testRedis } from './support/redis.js';
import { whenReady } from '../queues/redis.js';
import { stopChild, waitFor } from './support/gateway.js';
import { connectRedis, redisAt } from '../queues/redis.js';

const ECHO_SERVER = fileURLToPath(new URL('./support/echo-server.js', import.meta.url));
const BLOBS = fileURLToPath(new URL('../queues/blobs.js', import.meta.url));
// This test process is one host: its own shared-memory folder, so no other test file interferes.
const HOST_DIR = mkdtempSync(join(tmpdir(), 'sgw-shm-'));
process.env.SGW_SHM_DIR = HOST_DIR;

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function startEchoServer(redisUrl: string, gateway: string, shmDir: string): Promise<ChildProcess> {
  const child = fork(ECHO_SERVER, [redisUrl, gateway], { env: { ...process.env, SGW_SHM_DIR: shmDir }, stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`echo server exited with ${code}`)));
  });
}

/** Blob files in the host folder: reused slots ("slot-N") and one-call files (named by call id). */
function blobFiles(): string[] {
  return readdirSync(HOST_DIR, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name !== 'host-id').map((e) => e.name).sort();
}
const callFiles = () => blobFiles().filter((n) => !n.startsWith('slot-'));

test.after.always(() => rmSync(HOST_DIR, { recursive: true, force: true }));

test.serial('large chunks reach a worker of the same host through a reused slot file', async (t) => {
  const redis = await testRedis();
  const gateway = `rg.${randomUUID()}`;
  const seen: IncomingCall[] = [];
  const server = new CallServer({ mac: null,
    redis: redisAt(redis.url), gateway, mode: 'write', concurrency: 4,
    handler: async (call): Promise<CallResult> => {
      seen.push(call);
      return { rc: 0, value: sha(call.chunk!) };
    },
  });
  const asker = new Asker(redisAt(redis.url), gateway);
  t.teardown(async () => { await asker.close(); await server.close(1000); });
  await Promise.all([whenReady(asker.redis, 10_000), server.ready()]);
  const chunks = [randomBytes(1 << 20), randomBytes(70_000)];

  for (const chunk of chunks) {
    const result = await asker.ask('write', { request: Buffer.from('req'), chunk }, 10_000);
    t.is(result.value, sha(chunk), 'the worker got the chunk byte for byte');
  }

  t.deepEqual(asker.chunkTransfers, { host: 2, redis: 0 });
  t.deepEqual(blobFiles(), ['slot-0'], 'the second call reused the slot the first one released');
  t.is(seen.length, 2);
});

/** A write server in a child process with a /dev/shm of its own: another host. */
async function otherHostServer(t: ExecutionContext, redisUrl: string, gateway: string): Promise<void> {
  const otherHost = mkdtempSync(join(tmpdir(), 'sgw-shm-other-'));
  const server = await startEchoServer(redisUrl, gateway, otherHost);
  t.teardown(async () => {
    server.disconnect();
    await stopChild(server, 5000);
    rmSync(otherHost, { recursive: true, force: true });
  });
}

test.serial('with no server of the mode on this host, large chunks go through Redis at once', async (t) => {
  const redis = await testRedis();
  const gateway = `rg.${randomUUID()}`;
  await otherHostServer(t, redis.url, gateway);
  const asker = new Asker(redisAt(redis.url), gateway);
  t.teardown(() => asker.close());
  await whenReady(asker.redis, 10_000);
  const chunks = [randomBytes(100_000), randomBytes(1 << 20), randomBytes(3 << 20)];
  const filesBefore = blobFiles();

  const results = await Promise.all(chunks.map((chunk) => asker.ask('write', { request: Buffer.from('req'), chunk }, 10_000)));

  t.deepEqual(results.map((r) => r.value), chunks.map(sha));
  t.deepEqual(asker.chunkTransfers, { host: 0, redis: 3 }, 'each chunk counted once, by what carried it');
  t.is(asker.chunkHostMisses, 0, 'no host file was tried first');
  t.deepEqual(blobFiles(), filesBefore, 'no file was added to this host\'s shared memory');
  const probe = new Redis(redis.url);
  t.teardown(() => probe.disconnect());
  t.deepEqual(await probe.keys(keys.chunk('*')), [], 'the Redis copies were removed after the answers');
});

test.serial('a worker on another host that gets a host file anyway cannot read it: the chunk is sent again through Redis', async (t) => {
  const redis = await testRedis();
  const gateway = `rg.${randomUUID()}`;
  await otherHostServer(t, redis.url, gateway);
  // A write server of this host that is listed but takes no job (as one that just died would be).
  const conn = connectRedis(redisAt(redis.url), 'patient');
  const listed = new HostPresence(conn, gateway, 'write', HostBlobs.get()!.hostId, randomUUID());
  await listed.first;
  const asker = new Asker(redisAt(redis.url), gateway);
  t.teardown(async () => { await asker.close(); await listed.stop(); conn.disconnect(); });
  await whenReady(asker.redis, 10_000);
  const chunks = [randomBytes(100_000), randomBytes(3 << 20)];

  const results = await Promise.all(chunks.map((chunk) => asker.ask('write', { request: Buffer.from('req'), chunk }, 10_000)));

  t.deepEqual(results.map((r) => r.value), chunks.map(sha));
  t.deepEqual(asker.chunkTransfers, { host: 0, redis: 2 }, 'counted once each, by what carried them in the end');
  t.is(asker.chunkHostMisses, 2, 'each call went out as a file first');
  t.deepEqual(callFiles(), []);
});

test.serial('a chunk key gone when the worker looks (lost with a failed master) is put again and the call sent again', async (t) => {
  const redis = await testRedis();
  const gateway = `rg.${randomUUID()}`;
  const asker = new Asker(redisAt(redis.url), gateway);
  const probe = new Redis(redis.url);
  t.teardown(async () => { await asker.close(); probe.disconnect(); });
  await whenReady(asker.redis, 10_000);
  const chunk = randomBytes(1 << 20);

  // No worker yet: the call waits in its queue, its chunk in Redis. The key is then lost.
  const answer = asker.ask('write', { request: Buffer.from('req'), chunk }, 30_000);
  const [key] = await waitFor('the call\'s chunk key', async () => {
    const found = await probe.keys(keys.chunk('*'));
    return found.length > 0 ? found : null;
  });
  t.is(await probe.del(key!), 1);
  await otherHostServer(t, redis.url, gateway);
  const result = await answer;

  t.is(result.value, sha(chunk), 'the worker got the chunk put again');
  t.is(asker.chunkKeyLosses, 1);
  t.deepEqual(await probe.keys(keys.chunk('*')), [], 'the second copy was removed after the answer');
});

test.serial('a job naming a file outside the side channel is refused, and its driver method never runs', async (t) => {
  const redis = await testRedis();
  const gateway = `rg.${randomUUID()}`;
  let called = 0;
  const server = new CallServer({ mac: null,
    redis: redisAt(redis.url), gateway, mode: 'write', concurrency: 4,
    handler: async () => { called++; return { rc: 0 }; },
  });
  const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
  const queue = new Queue(modeQueueName(gateway, 'write'), { connection, prefix: queuePrefix(modeQueueName(gateway, 'write')) });
  const probe = new Redis(redis.url);
  t.teardown(async () => { await server.close(1000); await queue.close(); connection.disconnect(); probe.disconnect(); });
  const reply = `sgw:results:${randomUUID()}`;
  const hostId = HostBlobs.get()!.hostId;
  const outside = join(HOST_DIR, 'host-id'); // readable, but not a blob of the channel
  await queue.add('write', {
    calls: [{ id: 'c1', reply, deadline: Date.now() + 10_000, req: '', blob: outside, host: hostId, size: 36 }],
  });

  const popped = await probe.blpopBuffer(reply, 10);

  t.truthy(popped, 'the worker answered');
  const answer = decodeReply(popped![1]);
  t.like(answer, { id: 'c1', unreachable: true });
  t.is(called, 0);
});

test.serial('a slot reused by a later call yields nothing to a late reader of the earlier one; a large chunk gets a file of its own', async (t) => {
  const blobs = HostBlobs.get()!;
  const [first, second] = [randomUUID(), randomUUID()];
  const a = await blobs.put(first, Buffer.alloc(1000, 1));
  a.release();
  const b = await blobs.put(second, Buffer.alloc(1000, 2));
  t.teardown(() => b.release());

  t.is(b.path, a.path, 'the slot was reused');
  t.is(await blobs.read(blobs.hostId, a.path, first, 1000), null, 'the earlier call\'s reader sees another call\'s header');
  t.deepEqual(await blobs.read(blobs.hostId, b.path, second, 1000), Buffer.alloc(1000, 2));
  t.is(await blobs.read('another-host', b.path, second, 1000), null);

  const big = randomBytes((4 << 20) + 1);
  const own = await blobs.put(randomUUID(), big);
  t.not(own.path, a.path);
  t.true(existsSync(own.path));
  t.true((await blobs.read(blobs.hostId, own.path, basename(own.path), big.length))?.equals(big));
  own.release();
  t.false(existsSync(own.path), 'released: removed');
});

test.serial('a host channel that cannot take a chunk never fails the call: it goes through Redis', async (t) => {
  const redis = await testRedis();
  const gateway = `rg.${randomUUID()}`;
  const server = new CallServer({ mac: null,
    redis: redisAt(redis.url), gateway, mode: 'write', concurrency: 4,
    handler: async (call): Promise<CallResult> => ({ rc: 0, value: sha(call.chunk!) }),
  });
  const asker = new Asker(redisAt(redis.url), gateway);
  t.teardown(async () => { await asker.close(); await server.close(1000); });
  await Promise.all([whenReady(asker.redis, 10_000), server.ready()]);
  // More chunks at once than the process has slot files, with its folder gone: new slots and
  // one-call files cannot be created any more.
  const blobs = HostBlobs.get()!;
  const refs = await Promise.all([1, 2].map(() => blobs.put(randomUUID(), Buffer.alloc(10))));
  for (const ref of refs) ref.release();
  rmSync(dirname(refs[0]!.path), { recursive: true, force: true });
  const before = { ...asker.chunkTransfers };
  const chunks = Array.from({ length: 4 }, () => randomBytes(200_000));

  const results = await Promise.all(chunks.map((chunk) => asker.ask('write', { request: Buffer.from('req'), chunk }, 10_000)));

  t.deepEqual(results.map((r) => r.value), chunks.map(sha), 'every call answered with its own bytes');
  t.is(asker.chunkTransfers.redis - before.redis, 4, 'the slots\' files are gone too: every chunk went through Redis in the end');
});

test('folders of processes that died are swept when another process opens the channel, but only in its own pid namespace', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-shm-sweep-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const uid = process.getuid?.() ?? 'user';
  const ns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))![1]!;
  // A pid far above Linux's pid_max of 4,194,304 cannot be alive.
  const dead = join(dir, `sgw-${uid}`, `${ns}-99999999-${randomUUID()}`);
  const alive = join(dir, `sgw-${uid}`, `${ns}-${process.pid}-${randomUUID()}`);
  // Another container sharing the tmpfs: its pids mean nothing here, so its folder is left alone.
  const otherNamespace = join(dir, `sgw-${uid}`, `1${ns}-99999999-${randomUUID()}`);
  for (const folder of [dead, alive, otherNamespace]) mkdirSync(folder, { recursive: true });

  const hostId = execFileSync(process.execPath, ['--input-type=module', '-e', `import { HostBlobs } from ${JSON.stringify(BLOBS)}; console.log(HostBlobs.get().hostId);`], {
    env: { ...process.env, SGW_SHM_DIR: dir },
  }).toString().trim();

  t.false(existsSync(dead));
  t.true(existsSync(alive), 'a live process keeps its folder');
  t.true(existsSync(otherNamespace), 'a folder of another pid namespace is never judged');
  t.regex(hostId, /^[0-9a-f-]{36}$/);
});
