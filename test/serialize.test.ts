// serialize/deserialize run through their own queues when the driver has them, and are
// short-circuited (no queue, no actor) when it does not.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ChunkType } from '../proto/messages.js';
import { formatBlockUrl } from '../http/data-url.js';
import { layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import { testRedis } from './support/redis.js';
import { modeQueueName, queuePrefix } from '../queues/names.js';
import {
  cleanup, DISK_DRIVER_JS, DISK_DRIVER_PY, DISK_DRIVERS, fileRef, liveActors, makeGatewayFolder, startGatewayProcess, waitForGateway,
  type FolderOptions,
} from './support/gateway.js';

// The disk driver, plus: stores chunks reversed (deserialize) and serves them with a marker (serialize).
const TRANSFORMING: Record<string, FolderOptions> = {
  TypeScript: {
    driverSource: `
export * from ${JSON.stringify(DISK_DRIVER_JS)};
export function deserialize(request, chunk) { return Buffer.from(chunk).reverse(); }
export function serialize(request, chunk) { return Buffer.concat([Buffer.from('S:'), chunk]); }
`,
  },
  Python: {
    driverFile: 'driver.py',
    driverSource: `${DISK_DRIVER_PY}

def deserialize(request, chunk):
    return bytes(reversed(chunk))

def serialize(request, chunk):
    return b"S:" + chunk
`,
  },
};

async function putAndGet(f: Awaited<ReturnType<typeof makeGatewayFolder>>, bytes: Buffer): Promise<Buffer> {
  const file = fileRef(f, { file_id: 0xc0ffeen });
  const { blocks, data } = layOutChunks([{ block: { block_id: 1n, block_version: 2n, chunk_type: ChunkType.BLOCK }, bytes }]);
  const put = await sendControlPlane(f.url, putChunksFields(file, blocks), f.ugKey, data);
  if (put.status !== 200 || put.reply?.error_code !== 0) throw new Error(`put failed: ${put.status} ${put.body}`);
  const res = await fetch(formatBlockUrl(f.url, { volume_id: 3n, fs_path: file.fs_path, file_id: 0xc0ffeen, file_version: file.file_version, block_id: 1n, block_version: 2n }));
  return Buffer.from(await res.arrayBuffer());
}

function storedFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name));
}

for (const { language, options } of DISK_DRIVERS) {
  test.serial(`${language} driver with serialize and deserialize: both run, each in its own actor`, async (t) => {
    const redis = new Redis((await testRedis()).url);
    const f = await makeGatewayFolder(TRANSFORMING[language]);
    const gw = startGatewayProcess(f.configFile);
    try {
      await waitForGateway(f, redis, ['driver:read', 'driver:write', 'driver:serialize', 'driver:deserialize']);
      const got = await putAndGet(f, Buffer.from('abc'));
      t.is(got.toString(), 'S:cba', 'GET = serialize(read(deserialize(PUT)))');
      const [stored] = storedFiles(f.storageDir);
      t.is(readFileSync(stored!).toString(), 'cba', 'the back-end holds the deserialized chunk');

      // One chunk's hash is checked by the deserialize actor, before its driver sees the chunk.
      const file = fileRef(f, { file_id: 0xbadn });
      const { blocks, data } = layOutChunks([{ block: { block_id: 1n, block_version: 1n, chunk_type: ChunkType.BLOCK }, bytes: Buffer.from('xyz') }]);
      data[0] ^= 1;
      const bad = await sendControlPlane(f.url, putChunksFields(file, blocks), f.ugKey, data);
      t.is(bad.status, 400, bad.body.toString());
      t.regex(bad.body.toString(), /block 0 does not match its hash/);
      t.is(storedFiles(f.storageDir).length, 1, 'nothing stored for the refused chunk');
    } finally {
      await gw.stop();
      redis.disconnect();
      cleanup([f.dir]);
    }
  });

  test.serial(`${language} driver without serialize and deserialize: bytes pass through and no such queue or actor exists`, async (t) => {
    const redis = new Redis((await testRedis()).url);
    const f = await makeGatewayFolder(options);
    const gw = startGatewayProcess(f.configFile);
    try {
      await waitForGateway(f, redis);
      t.is((await putAndGet(f, Buffer.from('abc'))).toString(), 'abc');
      t.deepEqual(await liveActors(redis, f.gatewayKey, 'driver:serialize'), []);
      t.deepEqual(await liveActors(redis, f.gatewayKey, 'driver:deserialize'), []);
      t.deepEqual(await redis.keys(`${queuePrefix(modeQueueName(f.gatewayKey, 'serialize'))}*`), []);
      t.deepEqual(await redis.keys(`${queuePrefix(modeQueueName(f.gatewayKey, 'deserialize'))}*`), []);
      t.true((await redis.keys(`${queuePrefix(modeQueueName(f.gatewayKey, 'read'))}*`)).length > 0, 'the read queue exists (the check can fail)');
    } finally {
      await gw.stop();
      redis.disconnect();
      cleanup([f.dir]);
    }
  });
}
