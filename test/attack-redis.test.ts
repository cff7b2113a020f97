// Issue 15, item 1: Redis is not a trust boundary. A client with read/write access to the gateway's
// Redis (and no gateway key) tries what the issue found: publishing driver code, rolling the
// driver back to an older version, adding write jobs, replaying one, and forging a driver's reply.
// What it can and cannot do is in docs/security.md, "What Redis access allows".
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Job, Queue } from 'bullmq';
import { ChunkType, encodeBlockVec } from '../proto/messages.js';
import { formatBlockUrl } from '../http/data-url.js';
import { layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import { listActors } from '../queues/registry.js';
import { keys, modeQueueName, queuePrefix } from '../queues/names.js';
import { Asker, NoAnswerError, type CallData, type JobData } from '../queues/ask.js';
import { CallServer } from '../queues/serve.js';
import { JobMac } from '../queues/job-mac.js';
import { encodeReply } from '../queues/reply-frame.js';
import { bundleHash } from '../drivers/bundle.js';
import { signBundle } from '../drivers/bundle-signature.js';
import { generateKeyPair } from '../drivers/secrets.js';
import { parsePrivateKey } from '../proto/signature.js';
import { redisAt, whenReady } from '../queues/redis.js';
import { CLI, DISK_DRIVER_JS, fileRef, waitFor, walk, writeDriver } from './support/gateway.js';
import { gatewayPerFile } from './support/gateway-per-file.js';
import { parsePrometheusText, sampleValue } from './support/prom-text.js';
import { testRedis } from './support/redis.js';

const run = promisify(execFile);
const ROLES = ['driver:read', 'driver:write', 'driver:delete', 'driver:rename'];
const DRIVER = `export * from ${JSON.stringify(DISK_DRIVER_JS)};\n`;
/** The attacker's own key: anything but the gateway's. */
const ATTACKER = parsePrivateKey(generateKeyPair(2048).privatePem);

const gateway = gatewayPerFile(
  { config: { limits: { call_timeout_ms: 3000, request_timeout_ms: 5000 } } },
  undefined,
  (f) => writeDriver(f.dir, DRIVER, { STORAGE_DIR: f.storageDir, TAG: 'v1' }),
);

const file = () => fileRef(gateway.f, { file_id: 0x7e57n });
let nextBlock = 1n;

async function put(bytes: Buffer, id = nextBlock++): Promise<{ id: bigint; status: number; error: number | undefined }> {
  const { blocks, data } = layOutChunks([{ block: { block_id: id, block_version: 1n, chunk_type: ChunkType.BLOCK }, bytes }]);
  const r = await sendControlPlane(gateway.f.url, putChunksFields(file(), blocks), gateway.f.ugKey, data);
  return { id, status: r.status, error: r.reply?.error_code };
}

async function get(id: bigint): Promise<{ status: number; body: Buffer }> {
  const f = file();
  const res = await fetch(formatBlockUrl(gateway.f.url, { volume_id: 3n, fs_path: f.fs_path, file_id: f.file_id, file_version: f.file_version, block_id: id, block_version: 1n }));
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

/** A PUT and GET of fresh bytes: the gateway still serves. */
async function served(t: { is: (a: unknown, b: unknown, m?: string) => void; true: (v: boolean, m?: string) => void }, what: string): Promise<void> {
  const bytes = Buffer.from(`served ${what} ${randomUUID()}`);
  const p = await put(bytes);
  t.is(p.status, 200, `PUT after ${what}`);
  const g = await get(p.id);
  t.true(g.status === 200 && g.body.equals(bytes), `GET after ${what}`);
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const res = await fetch(`${gateway.f.url}/metrics`);
  return sampleValue(parsePrometheusText(await res.text()), name, labels) ?? 0;
}

async function versions(): Promise<string[]> {
  return [...new Set((await listActors(gateway.redis, gateway.f.gatewayKey, ROLES)).map((a) => a.version))];
}

/** Points the gateway at a version and announces it, as the publish script would. */
async function pointAt(hash: string): Promise<void> {
  await gateway.redis.set(keys.driverCurrent(gateway.f.gatewayKey), hash);
  await gateway.redis.publish(keys.driverChanged(gateway.f.gatewayKey), hash);
}

let v1 = '';
let v2 = '';

test.serial('a validly signed older version re-pointed to as current is refused: no rollback', async (t) => {
  const { f, redis } = gateway;
  v1 = (await redis.get(keys.driverCurrent(f.gatewayKey)))!;
  writeDriver(f.dir, DRIVER, { STORAGE_DIR: f.storageDir, TAG: 'v2' });
  v2 = (await run(process.execPath, [CLI, 'driver', 'publish', '--config', f.configFile])).stdout.split(' ')[0]!;
  t.not(v2, v1);
  await waitFor('every driver actor on v2', async () => {
    const actors = await listActors(redis, f.gatewayKey, ROLES);
    return actors.length >= 4 && actors.every((a) => a.version === v2);
  }, 60_000);

  await pointAt(v1);
  await waitFor('the rollback to be refused and counted', async () => (await metric('sgw_driver_bundle_rejected_total', { gateway: f.gatewayKey, reason: 'rollback' })) >= 1);
  t.deepEqual(await versions(), [v2], 'the running version keeps serving');
  await waitFor('one error line naming the version and the reason', async () => new RegExp(`"level":50.*"version":"${v1}","reason":"rollback"`).test(gateway.gw.output()), 10_000);
  t.is(gateway.gw.output().split('\n').filter((l) => l.includes(`"reason":"rollback"`)).length, 1, 'once, however often the watch looks again');
  await served(t, 'the refused rollback');
});

test.serial('a forged bundle (unsigned, signed with another key, or with a copied signature) is never loaded', async (t) => {
  const { f, redis } = gateway;
  const stored = await redis.hgetallBuffer(keys.bundle(f.gatewayKey, v2));
  // The injected code would acknowledge writes while storing nothing.
  const code = `${stored.code!.toString()}\nmodule.exports.write_chunk = async () => 0;\n`;
  const hash = bundleHash(code, stored.config!, stored.secrets ?? null);
  const meta = JSON.parse(stored.meta!.toString()) as { methods: string[]; entry: string; builtAt: string };
  const forgeries: [string, Buffer | null][] = [
    ['unsigned', null],
    ['bad-signature', signBundle(f.gatewayKey, hash, meta, Date.now() + 1e9, ATTACKER)],
    ['wrong-hash', stored.signed!], // the genuine v2 manifest, which names other content
  ];
  for (const [reason, signed] of forgeries) {
    await redis.del(keys.bundle(f.gatewayKey, hash));
    await redis.hset(keys.bundle(f.gatewayKey, hash), { code, config: stored.config!, meta: stored.meta!, ...(signed ? { signed } : {}) });
    await pointAt(hash);
    await waitFor(`the ${reason} bundle to be refused`, async () => (await metric('sgw_driver_bundle_rejected_total', { gateway: f.gatewayKey, reason })) >= 1);
    t.deepEqual(await versions(), [v2], `${reason}: the running version keeps serving`);
    // Log lines reach stdout in batches: wait for it rather than read it at once.
    await waitFor(`the error line of the ${reason} refusal`, async () => new RegExp(`"level":50.*"version":"${hash}","reason":"${reason}"`).test(gateway.gw.output()), 10_000);
  }
  await served(t, 'the forged bundles');
  const loaded = walk(join(f.dir, '.sgw-work'));
  t.true(loaded.some((p) => p.includes(v2)), 'actors write the code they load to their work folder');
  t.false(loaded.some((p) => p.includes(hash)), 'no actor wrote the forged code there');
});

/** The write job of a PUT, as a Redis client reads it (a finished job keeps its data, not its chunk). */
function writeCallOf(queue: Queue, bytes: Buffer): Promise<CallData> {
  const sha = createHash('sha256').update(bytes).digest('base64');
  // The reply goes out before BullMQ marks the job completed: wait for that.
  return waitFor('the completed write job of the PUT', async () => {
    const jobs = (await queue.getJobs(['completed'])) as Job<JobData>[];
    return jobs.flatMap((j) => j.data.calls).find((c) => c.sha256 === sha) ?? null;
  }, 20_000);
}

async function failedWith(queue: Queue, calls: CallData[]): Promise<string> {
  const job = await queue.add(queue.name, { calls });
  return waitFor('the job to fail', async () => {
    const j = await Job.fromId(queue, job.id!);
    return (await j?.getState()) === 'failed' ? j!.failedReason : null;
  }, 30_000);
}

test.serial('write jobs added through Redis without, or with a wrong, MAC or past their deadline are refused; nothing is stored', async (t) => {
  const { f, redis } = gateway;
  const name = modeQueueName(f.gatewayKey, 'write');
  const queue = new Queue(name, { connection: redis, prefix: queuePrefix(name) });
  t.teardown(() => queue.close());
  const before = new Set(walk(f.storageDir));
  const bytes = Buffer.from(`genuine chunk ${randomUUID()}`);
  t.is((await put(bytes)).status, 200);
  const stored = walk(f.storageDir).filter((p) => !before.has(p));
  t.is(stored.length, 1, 'the genuine PUT stored one chunk file');
  const genuine = await writeCallOf(queue, bytes);
  t.truthy(genuine.mac, 'genuine write calls carry a MAC');
  rmSync(join(f.storageDir, stored[0]!));
  const absent = () => !walk(f.storageDir).includes(stored[0]!);

  const evil = Buffer.from('bytes the attacker wants stored');
  const fresh = (fields: Partial<CallData>): CallData => ({ ...genuine, id: randomUUID(), deadline: Date.now() + 20_000, ...fields });
  const noMac = fresh({ chunk: evil.toString('base64'), sha256: createHash('sha256').update(evil).digest('base64') });
  delete noMac.mac;
  t.regex(await failedWith(queue, [noMac]), /refused 1 call\(s\) unrun \(no-mac\)/);
  t.regex(await failedWith(queue, [fresh({ chunk: evil.toString('base64'), sha256: createHash('sha256').update(evil).digest('base64') })]), /bad-mac/);
  t.regex(await failedWith(queue, [fresh({ chunk: bytes.toString('base64') })]), /bad-mac/, 'a new deadline or id breaks the MAC');
  // The genuine call again, as it was: its MAC holds, its deadline has passed.
  await waitFor('the genuine deadline to pass', async () => Date.now() > genuine.deadline + 10);
  t.regex(await failedWith(queue, [{ ...genuine, chunk: bytes.toString('base64') }]), /expired/);
  t.true(absent(), 'no refused job stored anything');
  // Reads need the MAC too: a read answered to the attacker's own list would hand it any chunk.
  const readName = modeQueueName(f.gatewayKey, 'read');
  const reads = new Queue(readName, { connection: redis, prefix: queuePrefix(readName) });
  t.teardown(() => reads.close());
  const readCall: CallData = { ...genuine, id: randomUUID(), reply: keys.results('attacker'), deadline: Date.now() + 20_000 };
  delete readCall.mac;
  t.regex(await failedWith(reads, [readCall]), /no-mac/);
  t.is(await redis.llen(keys.results('attacker')), 0, 'nothing was answered to the attacker');

  for (const reason of ['no-mac', 'bad-mac', 'expired']) {
    t.true((await metric('sgw_driver_job_refused_total', { mode: 'write', reason })) >= 1, `counted: ${reason}`);
  }
  await waitFor('the refusal logged', async () => /"level":40.*refused a call from Redis without running it/.test(gateway.gw.output()), 10_000);
  await served(t, 'the refused jobs'); // the write actors are alive and well
});

test.serial('a reply pushed by a Redis client is not taken as the driver\'s answer', async (t) => {
  const redisServer = await testRedis();
  const target = redisAt(redisServer.url);
  const gw = 'rg.7001';
  const mac = JobMac.forGateway(gateway.f.rgKey, gw);
  const gates: (() => void)[] = [];
  const server = new CallServer({
    redis: target, gateway: gw, mode: 'write', concurrency: 2, mac,
    handler: () => new Promise((resolve) => gates.push(() => resolve({ rc: -5, error: 'the real answer' }))),
  });
  const asker = new Asker(target, gw, mac);
  const name = modeQueueName(gw, 'write');
  const queue = new Queue(name, { connection: gateway.redis, prefix: queuePrefix(name) });
  t.teardown(async () => { await queue.close(); await asker.close(); await server.close(1000); });
  await Promise.all([server.worker.waitUntilReady(), whenReady(asker.redis)]);

  const forge = async (): Promise<void> => {
    const call = await waitFor('the call to be taken', async () => {
      const jobs = (await queue.getJobs(['active'])) as Job<JobData>[];
      return jobs.flatMap((j) => j.data.calls).find((c) => !forged.has(c.id)) ?? null;
    }, 20_000);
    forged.add(call.id);
    await gateway.redis.rpush(call.reply, encodeReply(call.id, { rc: 0 }));
    await gateway.redis.rpush(call.reply, encodeReply(call.id, { rc: 0 }, { mac: JobMac.forGateway(ATTACKER, gw), mode: 'write' }));
  };
  const forged = new Set<string>();

  // The driver never answers in time: the forged "write OK"s alone are no answer.
  const alone = asker.ask('write', { request: Buffer.from('req 1'), chunk: Buffer.from('chunk 1') }, 4000);
  await forge();
  await t.throwsAsync(alone, { instanceOf: NoAnswerError });
  t.is(asker.refusedReplies.write, 2);
  // The driver answers after the forgeries: its answer is the one taken.
  const answered = asker.ask('write', { request: Buffer.from('req 2'), chunk: Buffer.from('chunk 2') }, 20_000);
  await forge();
  await waitFor('both forgeries to be dropped', async () => asker.refusedReplies.write === 4);
  for (const open of gates.splice(0)) open();
  t.like(await answered, { rc: -5, error: 'the real answer' });
});

test.serial('a cache put through Redis without a MAC is refused and never reaches the store', async (t) => {
  const redisServer = await testRedis();
  const target = redisAt(redisServer.url);
  const gw = 'rg.7002';
  const puts: string[] = [];
  const server = new CallServer({
    redis: target, gateway: gw, mode: 'cache', concurrency: 2, mac: JobMac.forGateway(gateway.f.rgKey, gw),
    handler: async (call) => { puts.push(String(call.args?.[1])); return { rc: 0 }; },
  });
  const name = modeQueueName(gw, 'cache');
  const queue = new Queue(name, { connection: gateway.redis, prefix: queuePrefix(name) });
  const asker = new Asker(target, gw, JobMac.forGateway(gateway.f.rgKey, gw));
  t.teardown(async () => { await queue.close(); await asker.close(); await server.close(1000); });
  await Promise.all([server.worker.waitUntilReady(), whenReady(asker.redis)]);
  const forged: CallData = { id: randomUUID(), reply: keys.results('nobody'), deadline: Date.now() + 20_000, req: '', args: ['put', 'forged-key'], chunk: Buffer.from('forged').toString('base64') };
  const job = await queue.add('cache', { calls: [forged] });
  await waitFor('the forged put to fail', async () => (await (await Job.fromId(queue, job.id!))?.getState()) === 'failed', 20_000);
  t.deepEqual(puts, []);
  t.like(await asker.ask('cache', { request: new Uint8Array(0), args: ['put', 'genuine-key'], chunk: Buffer.from('genuine') }, 10_000), { rc: 0 });
  t.deepEqual(puts, ['genuine-key'], 'the MAC-carrying put of a gateway actor runs');
});

test.serial('a genuine call whose chunk or block_vec is changed in Redis before it runs is refused unrun', async (t) => {
  const redisServer = await testRedis();
  const target = redisAt(redisServer.url);
  const gw = 'rg.7003';
  const mac = JobMac.forGateway(gateway.f.rgKey, gw);
  const asker = new Asker(target, gw, mac);
  const name = modeQueueName(gw, 'write');
  const queue = new Queue(name, { connection: gateway.redis, prefix: queuePrefix(name) });
  const ran: string[] = [];
  let server: CallServer | null = null;
  t.teardown(async () => { await queue.close(); await asker.close(); await server?.close(1000); });
  await whenReady(asker.redis);
  // Asked while no actor serves: the jobs wait in Redis, where the attacker changes them.
  const vec = await asker.share(Buffer.from(encodeBlockVec([1n, 2n])), Date.now() + 20_000);
  const changedChunk = asker.ask('write', { request: Buffer.from('req a'), chunk: Buffer.from('genuine bytes') }, 15_000);
  const changedVec = asker.ask('write', { request: Buffer.from('req b'), blockVec: vec }, 15_000);
  const waiting = await waitFor('both calls to wait in the queue', async () => {
    const jobs = (await queue.getJobs(['waiting'])) as Job<JobData>[];
    return jobs.flatMap((j) => j.data.calls.map((c) => ({ job: j, c }))).length === 2 ? jobs : null;
  }, 20_000);
  for (const job of waiting) {
    await job.updateData({ calls: job.data.calls.map((c) => (c.chunk !== undefined ? { ...c, chunk: Buffer.from('altered bytes').toString('base64') } : c)) });
  }
  await gateway.redis.set(vec.key, Buffer.from(encodeBlockVec([1n, 3n])));
  server = new CallServer({ redis: target, gateway: gw, mode: 'write', concurrency: 2, mac, handler: async (call) => { ran.push(call.request.toString()); return { rc: 0 }; } });
  t.like(await changedChunk, { rc: -5 }, 'the altered chunk is an error, not a write');
  t.like(await changedVec, { rc: -5 });
  t.deepEqual(ran, [], 'the driver ran neither');
});
