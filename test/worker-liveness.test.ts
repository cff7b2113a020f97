// A queue worker that stops taking jobs while it still says it runs (BullMQ's failure mode after a
// failover) is found by its call server and replaced in-process, so waiting calls are answered;
// a worker that is merely busy is left alone.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { Asker, type CallResult } from '../queues/ask.js';
import { CallServer } from '../queues/serve.js';
import { redisAt, whenReady } from '../queues/redis.js';
import { testRedis } from './support/redis.js';

const STUCK_AFTER_MS = 2000;

async function serverAndAsker(t: import('ava').ExecutionContext, handler: () => Promise<CallResult>, concurrency: number) {
  const redis = redisAt((await testRedis()).url);
  const gateway = `rg.${randomUUID()}`;
  const server = new CallServer({ mac: null, redis, gateway, mode: 'read', concurrency, handler, stuckAfterMs: STUCK_AFTER_MS });
  const asker = new Asker(redis, gateway);
  t.teardown(async () => { await asker.close(); await server.close(1000); });
  await Promise.all([whenReady(asker.redis, 10_000), server.worker.waitUntilReady()]);
  return { server, asker };
}

test('a worker that idles while jobs wait, still "running", is replaced and the waiting calls are answered', async (t) => {
  const { server, asker } = await serverAndAsker(t, async () => ({ rc: 0, value: 'served' }), 4);
  const wedged = server.worker;
  await wedged.pause(true); // takes nothing more, and still says it runs
  t.true(wedged.isRunning(), 'the failure mode: isRunning() stays true');
  // Each call a job of its own, twice as many as the worker's slots: fetches it had already started
  // may still take some (on a busy machine, seen taking three), never all of them.
  const asks: Promise<CallResult>[] = [];
  for (let i = 0; i < 8; i++) {
    asks.push(asker.ask('read', { request: Buffer.from(`r${i}`) }, 30_000));
    await new Promise((r) => setImmediate(r));
  }
  const answers = await Promise.all(asks);
  t.deepEqual(answers.map((a) => a.value), Array(8).fill('served'));
  t.is(server.recycles, 1);
  t.not(server.worker, wedged, 'a new worker serves now');
  t.true(server.healthy());
});

test('a worker whose every slot is busy with a slow call is not replaced while jobs wait', async (t) => {
  let release!: () => void;
  const slow = new Promise<void>((r) => { release = r; });
  const { server, asker } = await serverAndAsker(t, async () => { await slow; return { rc: 0 }; }, 1);
  const first = asker.ask('read', { request: Buffer.from('1') }, 30_000);
  await new Promise((r) => setImmediate(r)); // the next call goes out as a job of its own
  const second = asker.ask('read', { request: Buffer.from('2') }, 30_000);
  // Longer than the stuck threshold, with a job waiting behind the busy slot.
  await new Promise((r) => setTimeout(r, STUCK_AFTER_MS * 2));
  release();
  t.deepEqual((await Promise.all([first, second])).map((a) => a.rc), [0, 0]);
  t.is(server.recycles, 0);
});
