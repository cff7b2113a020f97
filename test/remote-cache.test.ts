// An http actor without the cache role asks a cache actor on another process tree through
// the "<gateway>.cache" queue; the chunk store lives only there.
import test from 'ava';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ChunkType } from '../proto/messages.js';
import { formatBlockUrl } from '../http/data-url.js';
import { layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import { testRedis } from './support/redis.js';
import { LOCK_FILE } from '../actors/supervisor/folder-lock.js';
import { cleanup, fileRef, makeGatewayFolder, startGatewayProcess, waitForGateway } from './support/gateway.js';
import { parsePrometheusText, sampleValue } from './support/prom-text.js';

async function scrape(url: string) {
  return parsePrometheusText(await (await fetch(`${url}/metrics`)).text());
}

test('a remote cache actor stores what the http actor reads, and serves it after the back-end lost it', async (t) => {
  const redis = new Redis((await testRedis()).url);
  const front = await makeGatewayFolder();
  const back = await makeGatewayFolder({ sameGatewayAs: front, noDriverFolder: true });
  const frontGw = startGatewayProcess(front.configFile, 'http,driver', front.dir);
  const backGw = startGatewayProcess(back.configFile, 'cache', back.dir);
  try {
    await waitForGateway(front, redis, ['driver:read', 'driver:write', 'cache']);
    const file = fileRef(front, { file_id: 0x4242n });
    const bytes = Buffer.from('kept by the cache actor on the other tree');
    const { blocks, data } = layOutChunks([{ block: { block_id: 3n, block_version: 1n, chunk_type: ChunkType.BLOCK }, bytes }]);
    t.is((await sendControlPlane(front.url, putChunksFields(file, blocks), front.ugKey, data)).status, 200);
    const url = formatBlockUrl(front.url, { volume_id: 3n, fs_path: file.fs_path, file_id: 0x4242n, file_version: file.file_version, block_id: 3n, block_version: 1n });
    const first = await fetch(url);
    t.is(first.status, 200);
    t.deepEqual(Buffer.from(await first.arrayBuffer()), bytes);

    const cached = readdirSync(join(back.dir, 'cache'), { recursive: true, withFileTypes: true }).filter((d) => d.isFile() && d.name !== LOCK_FILE);
    t.is(cached.length, 1, 'the chunk is in the cache actor\'s store');
    t.false(existsSync(join(front.dir, 'cache')), 'the http actor keeps no store of its own');

    // Remove the chunk from the back-end: only the cache can answer now.
    const stored = readdirSync(front.storageDir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
    for (const d of stored) rmSync(join(d.parentPath, d.name));
    const again = await fetch(url);
    t.is(again.status, 200);
    t.deepEqual(Buffer.from(await again.arrayBuffer()), bytes);

    // The http actor reports what it saw of the remote cache: one miss, one hit; the store's own
    // size and evictions live with the cache actor and are not exported here.
    const m = await scrape(front.url);
    t.is(sampleValue(m, 'sgw_cache_misses_total'), 1);
    t.is(sampleValue(m, 'sgw_cache_hits_total'), 1);
    t.is(sampleValue(m, 'sgw_cache_bytes'), undefined);
    t.is(sampleValue(m, 'sgw_driver_call_duration_seconds_count', { mode: 'cache' }), 3, 'get (miss), put, get (hit) asked through the cache queue');
    t.not(sampleValue(m, 'sgw_queue_jobs', { queue: `${front.gatewayKey}.cache`, state: 'waiting' }), undefined);
  } finally {
    await Promise.all([frontGw.stop(), backGw.stop()]);
    redis.disconnect();
    cleanup([front.dir, back.dir]);
  }
});
