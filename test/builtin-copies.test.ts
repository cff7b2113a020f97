// The built-in drivers are the examples to copy, so each TypeScript one is a folder that works as it
// is wherever it is copied: the copy imports the helper API as 'sgw' (and a module of another
// built-in as 'sgw/builtin/<name>/<module>'), bundles, publishes, and a relative folder in its
// config.json is taken from the copy.
import test from 'ava';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { buildBundle, currentBundleHash, loadDriverModule, publishBundle } from '../drivers/bundle.js';
import { ChunkSink, DriverRequestType, IoType } from '../drivers/helpers.js';
import { generateKeyPair } from '../drivers/secrets.js';
import { parsePrivateKey } from '../proto/signature.js';
import { cleanup } from './support/gateway.js';
import { testRedis } from './support/redis.js';

const SOURCE = fileURLToPath(new URL('../../drivers/builtin/', import.meta.url));
const dirs: string[] = [];
let redis: Redis;
test.before(async () => {
  redis = new Redis((await testRedis()).url);
});
test.after.always(() => {
  redis?.disconnect();
  cleanup(dirs);
});

/** A copy of a built-in driver folder somewhere else entirely. */
function copyOf(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-copied-driver-'));
  dirs.push(dir);
  cpSync(join(SOURCE, name), join(dir, name), { recursive: true });
  return join(dir, name);
}

const BUILTINS: { name: string; type: 'rg' | 'ag' | 'ug'; methods: string[] }[] = [
  { name: 'disk', type: 'rg', methods: ['delete_chunk', 'driver_init', 'read_chunk', 'rename_file', 'write_chunk'] },
  { name: 'dataset', type: 'ag', methods: ['driver_init', 'driver_shutdown', 'next_dataset', 'read', 'refresh'] },
  { name: 'cdn', type: 'ug', methods: ['cdn_url', 'driver_init'] },
  { name: 'encrypt', type: 'ug', methods: ['deserialize', 'driver_init', 'serialize'] },
  { name: 's3', type: 'rg', methods: ['delete_chunk', 'driver_init', 'driver_shutdown', 'read_chunk', 'rename_file', 'write_chunk'] },
  { name: 's3-dataset', type: 'ag', methods: ['driver_init', 'driver_shutdown', 'next_dataset', 'read', 'refresh'] },
];

for (const { name, type, methods } of BUILTINS) {
  test(`the built-in ${name} driver folder, copied elsewhere, bundles and publishes as it is`, async (t) => {
    const folder = copyOf(name);
    const bundle = await buildBundle(folder);
    t.deepEqual(bundle.meta.methods, methods);
    const gateway = `${type}.${randomBytes(4).readUInt32BE()}`;
    t.true((await publishBundle(redis, gateway, bundle, parsePrivateKey(generateKeyPair(2048).privatePem))).changed);
    t.is(await currentBundleHash(redis, gateway), bundle.hash);
  });
}

test('a copied disk driver stores under the storage folder of its copy, and a copied dataset driver publishes the sample of its copy', async (t) => {
  const disk = copyOf('disk');
  const bundle = await buildBundle(disk);
  const config = JSON.parse(bundle.config.toString()) as { STORAGE_DIR: string };
  t.is(config.STORAGE_DIR, join(disk, 'storage'), 'STORAGE_DIR "./storage" is taken from the driver folder');
  const { methods } = loadDriverModule(bundle, join(disk, '..', 'work'));
  const request = {
    volume_id: 1n, user_id: 1n, coordinator_id: 1n, file_id: 0xabcn, file_version: 1n, request_type: DriverRequestType.BLOCK,
    path: '/f', block_id: 0n, block_version: 7n, io_type: IoType.WRITE, block_size: 4096n,
  };
  const call = (method: string, ...args: unknown[]) => methods.get(method)!(...args) as Promise<number>;
  t.true(await call('driver_init', config, {}));
  t.is(await call('write_chunk', request, Buffer.from('kept by a copy'), config, {}), 0);
  const sink = new ChunkSink();
  t.is(await call('read_chunk', { ...request, io_type: IoType.READ }, sink, config, {}), 0);
  t.is((await sink.collect()).toString(), 'kept by a copy');

  const dataset = copyOf('dataset');
  const published = JSON.parse((await buildBundle(dataset)).config.toString()) as { DATASET_DIR: string };
  t.is(published.DATASET_DIR, join(dataset, 'sample'), 'DATASET_DIR "sample" is the sample folder of the copy');
});
