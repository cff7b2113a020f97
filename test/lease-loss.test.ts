// A driver call that finishes after its job was given to another worker (its lock lost while the
// first worker's process was paused) is not the answer: the paused worker drops it, and the asker
// takes only answers of the attempt that owns the job. Real Redis, real BullMQ, real processes
// paused with SIGSTOP.
import test from 'ava';
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Asker, encodeReply, encodeStarted, type JobData } from '../queues/ask.js';
import { modeQueueName, queuePrefix } from '../queues/names.js';
import { redisAt, whenReady } from '../queues/redis.js';
import { testRedis } from './support/redis.js';
import { stopChild } from './support/gateway.js';

const LEASE_SERVER = fileURLToPath(new URL('./support/lease-server.js', import.meta.url));
const LOCK_MS = 2000;

interface Server {
  child: ChildProcess;
  /** Resolves with the first message that has this field. */
  next(field: 'started' | 'stale' | 'done'): Promise<void>;
  seen: Record<string, number>;
}

async function startServer(redisUrl: string, gateway: string): Promise<Server> {
  const child = fork(LEASE_SERVER, [redisUrl, gateway, String(LOCK_MS)], { stdio: 'inherit' });
  const seen: Record<string, number> = {};
  const waiters: { field: string; resolve: () => void }[] = [];
  child.on('message', (m: Record<string, unknown>) => {
    for (const k of Object.keys(m)) {
      seen[k] = (seen[k] ?? 0) + 1;
      for (const w of waiters.filter((x) => x.field === k)) w.resolve();
    }
  });
  const server: Server = {
    child, seen,
    next: (field) => (seen[field] ? Promise.resolve() : new Promise((resolve) => waiters.push({ field, resolve }))),
  };
  await new Promise<void>((resolve, reject) => {
    waiters.push({ field: 'ready', resolve });
    child.once('exit', (code) => reject(new Error(`lease server exited with ${code}`)));
  });
  return server;
}

test.serial('a worker paused past its lock drops its late answer; the asker gets exactly one, from the worker that owns the job', async (t) => {
  const redis = await testRedis();
  const gateway = `rg.${randomUUID()}`;
  const asker = new Asker(redisAt(redis.url), gateway);
  const servers: Server[] = [];
  t.teardown(async () => {
    for (const s of servers) {
      s.child.kill('SIGCONT');
      if (s.child.connected) s.child.disconnect();
      await stopChild(s.child, 5000);
    }
    await asker.close();
  });
  await whenReady(asker.redis, 10_000);
  const first = await startServer(redis.url, gateway);
  servers.push(first);

  const answer = asker.ask('write', { request: Buffer.from('req') }, 60_000);
  await first.next('started');
  first.child.kill('SIGSTOP');
  // The second worker finds the job stalled once the first one's lock expires, and runs it again.
  const second = await startServer(redis.url, gateway);
  servers.push(second);
  await second.next('started');
  first.child.kill('SIGCONT');
  first.child.send('release');
  await Promise.race([first.next('stale'), first.next('done')]);
  second.child.send('release');

  const result = await answer;
  t.is(result.value, String(second.child.pid), 'the answer is the live attempt\'s');
  await second.next('done');
  t.false('done' in first.seen, 'the paused worker answered nothing');
  t.is(first.seen.stale, 1);
  t.is(second.seen.done, 1);
  t.is(asker.staleAnswers, 0, 'no stale answer even reached the asker');

  // The paused worker rejoins without a restart: alone again, it serves the next call.
  second.child.disconnect();
  await stopChild(second.child, 5000);
  const next = await asker.ask('write', { request: Buffer.from('req') }, 30_000);
  t.is(next.value, String(first.child.pid));
  await first.next('done');
  t.is(first.seen.done, 1);
});

test.serial('the asker drops an answer of an attempt older than one that started', async (t) => {
  const redis = await testRedis();
  const gateway = `rg.${randomUUID()}`;
  const asker = new Asker(redisAt(redis.url), gateway);
  const pusher = new Redis(redis.url);
  const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
  const queueName = modeQueueName(gateway, 'write');
  // Plays both attempts of the job by hand: the second one announces itself, then the first one
  // answers late, then the second one answers.
  const worker = new Worker<JobData>(queueName, async (job) => {
    const [call] = job.data.calls;
    await pusher.rpush(call!.reply, encodeStarted(call!.id, 2), encodeReply(call!.id, { rc: 0, value: 'first attempt' }, null, 1), encodeReply(call!.id, { rc: 0, value: 'second attempt' }, null, 2));
  }, { connection, prefix: queuePrefix(queueName) });
  t.teardown(async () => { await worker.close(); await asker.close(); pusher.disconnect(); connection.disconnect(); });
  await whenReady(asker.redis, 10_000);

  const result = await asker.ask('write', { request: Buffer.from('req') }, 20_000);

  t.is(result.value, 'second attempt');
  t.is(asker.staleAnswers, 1);
});
