// Finished jobs stay in Redis a while, to watch in a dashboard, but not their chunks: after
// megabytes of writes whose chunks rode inside their jobs, the retained jobs hold a few bytes each.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { ChunkType } from '../proto/messages.js';
import { layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import { INLINE_CHUNK_MAX, type JobData } from '../queues/ask.js';
import { modeQueueName, queuePrefix } from '../queues/names.js';
import { cleanup, fileRef, makeGatewayFolder, startGatewayProcess, waitFor, waitForGateway } from './support/gateway.js';
import { testRedis } from './support/redis.js';

test('after 10 MB of writes the retained write jobs keep no chunk bytes in Redis', async (t) => {
  const redis = new Redis((await testRedis()).url);
  const f = await makeGatewayFolder();
  const gw = startGatewayProcess(f.configFile);
  const name = modeQueueName(f.gatewayKey, 'write');
  const queue = new Queue(name, { connection: redis, prefix: queuePrefix(name) });
  t.teardown(async () => {
    await queue.close();
    await gw.stop();
    redis.disconnect();
    cleanup([f.dir]);
  });
  await waitForGateway(f, redis);

  // Chunks just under the inline limit: each rides inside its job (16 calls to a job at most).
  const chunkBytes = INLINE_CHUNK_MAX - 1024;
  const posts = 10;
  for (let p = 0; p < posts; p++) {
    const chunks = Array.from({ length: 16 }, (_, i) => ({
      block: { block_id: BigInt(i), block_version: BigInt(p + 1), chunk_type: ChunkType.BLOCK }, bytes: randomBytes(chunkBytes),
    }));
    const { blocks, data } = layOutChunks(chunks);
    const put = await sendControlPlane(f.url, putChunksFields(fileRef(f, { file_id: 0x5000n + BigInt(p) }), blocks), f.ugKey, data);
    t.is(put.status, 200, put.body.toString());
    t.is(put.reply!.error_code, 0);
  }
  const written = posts * 16 * chunkBytes;

  const jobs = await waitFor('every write job finished and stripped of its chunks', async () => {
    const done = await queue.getCompleted(0, -1);
    const calls = done.reduce((n, j) => n + ((j.data as JobData).calls?.length ?? 0), 0);
    return calls >= posts * 16 && done.every((j) => (j.data as JobData).calls.every((c) => c.chunk === undefined)) && done;
  });
  let bytes = 0;
  for (const job of jobs) bytes += (await redis.memory('USAGE', `${queuePrefix(name)}:${queue.name}:${job.id}`)) ?? 0;
  const used = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
  t.log(`${(written / 2 ** 20).toFixed(1)} MiB written in ${jobs.length} jobs: they keep ${(bytes / 1024).toFixed(1)} KiB in Redis (whole Redis: ${(used / 2 ** 20).toFixed(1)} MiB)`);
  t.true(jobs.length > 0, 'the finished jobs are still there to look at');
  // Each call carried a chunk of ~63 KiB; what is kept of it is its request and BullMQ's bookkeeping.
  const calls = jobs.reduce((n, j) => n + (j.data as JobData).calls.length, 0);
  t.true(bytes < calls * 4096, `the retained jobs hold ${bytes} bytes for ${calls} calls, not the ${written} written`);
  t.true(jobs.every((j) => (j.data as JobData).calls.every((c) => typeof c.req === 'string' && c.req.length > 0)), 'each keeps its request');
});
