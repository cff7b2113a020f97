// With Redis gone, the gateway answers 503 with Retry-After at once — never a hang — and a
// cache hit is still served.
import test from 'ava';
import { Redis } from 'ioredis';
import { ChunkType } from '../proto/messages.js';
import { formatBlockUrl } from '../http/data-url.js';
import { layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import { testRedis } from './support/redis.js';
import { cleanup, fileRef, makeGatewayFolder, startGatewayProcess, waitForGateway } from './support/gateway.js';

test('with Redis stopped: misses and POSTs get 503 + Retry-After quickly, hits are still served', async (t) => {
  const server = await testRedis();
  const redis = new Redis(server.url);
  const f = await makeGatewayFolder();
  const gw = startGatewayProcess(f.configFile);
  try {
    await waitForGateway(f, redis);
    redis.disconnect();
    const file = fileRef(f, { file_id: 0x99n });
    const bytes = Buffer.from('cached before the outage');
    const { blocks, data } = layOutChunks([{ block: { block_id: 1n, block_version: 1n, chunk_type: ChunkType.BLOCK }, bytes }]);
    t.is((await sendControlPlane(f.url, putChunksFields(file, blocks), f.ugKey, data)).status, 200);
    const addr = { volume_id: 3n, fs_path: file.fs_path, file_id: 0x99n, file_version: file.file_version, block_version: 1n };
    t.is((await fetch(formatBlockUrl(f.url, { ...addr, block_id: 1n }))).status, 200);

    await server.stop();
    let started = Date.now();
    const miss = await fetch(formatBlockUrl(f.url, { ...addr, block_id: 2n }));
    t.is(miss.status, 503);
    t.truthy(miss.headers.get('retry-after'));
    t.true(Date.now() - started < 2000, `miss answered in ${Date.now() - started} ms`);

    started = Date.now();
    const post = await sendControlPlane(f.url, putChunksFields(file, blocks), f.ugKey, data);
    t.is(post.status, 503);
    t.true(Date.now() - started < 2000, `POST answered in ${Date.now() - started} ms`);

    const hit = await fetch(formatBlockUrl(f.url, { ...addr, block_id: 1n }));
    t.is(hit.status, 200);
    t.deepEqual(Buffer.from(await hit.arrayBuffer()), bytes);
  } finally {
    await gw.stop();
    cleanup([f.dir]);
  }
});
