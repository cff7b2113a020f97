// Specification of driver bundles: a driver folder becomes one CommonJS file addressed by its
// content hash, travels through a real Redis, and loads back on a host that shares no files.
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import {
  BundleError, buildBundle, bundleHash, canonicalJson, currentBundleHash, DriverLoadError, fetchBundle,
  loadDriverModule, publishBundle, type DriverBundle,
} from '../drivers/bundle.js';
import { ChunkSink, DriverRequestType, Errno, IoType, type DriverRequest } from '../drivers/helpers.js';
import { generateKeyPair, sealSecrets, SecretsError, unsealSecrets } from '../drivers/secrets.js';
import { parsePrivateKey, parsePublicKey } from '../proto/signature.js';
import { keys } from '../queues/names.js';
import { BundleRefused, signBundle, verifyBundle } from '../drivers/bundle-signature.js';
import type { RedisServer } from '../actors/supervisor/embedded-redis.js';
import { testRedis } from './support/redis.js';

/** The key bundles are published with here (a gateway's private key signs its bundles). */
const SIGNER = parsePrivateKey(generateKeyPair(2048).privatePem);

const DISK_DRIVER_FOLDER = fileURLToPath(new URL('../../drivers/builtin/disk/', import.meta.url));

const TS_DRIVER = `
import { request_to_storage_path, Errno, type DriverRequest, type ChunkSink, type DriverConfig } from 'sgw';
import { prefixed } from './naming.js';

let prefix = '';
export function driver_init(config: DriverConfig): boolean {
  prefix = String(config.PREFIX);
  return true;
}
export function read_chunk(request: DriverRequest, chunk_fd: ChunkSink): number {
  if (request.block_id === 0n) return -Errno.ENOENT;
  chunk_fd.write(prefixed(prefix, request_to_storage_path(request)));
  return 0;
}
export const VERSION = 3; // not a function: not a method
`;
const TS_DRIVER_LIB = `export function prefixed(p: string, s: string): string { return p + ':' + s; }\n`;

const CJS_DRIVER = `
const { Errno } = require('sgw');
const zlib = require('node:zlib');
module.exports = {
  serialize(request, chunk) { return zlib.gzipSync(chunk); },
  deserialize(request, chunk) { try { return zlib.gunzipSync(chunk); } catch { return -Errno.EBADMSG; } },
  name: 'gzip',
};
`;

function freshDir(t: ExecutionContext, prefix = 'sgw-bundle-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes a driver folder: file name → content. */
function driverFolder(t: ExecutionContext, files: Record<string, string | Buffer>, under?: string): string {
  const dir = under ?? freshDir(t);
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content);
  return dir;
}

const tsFiles = { 'driver.ts': TS_DRIVER, 'naming.ts': TS_DRIVER_LIB, 'config.json': '{"PREFIX": "p", "b": [1, {"y": 1, "x": 2}]}' };

function blockRequest(block_id: bigint): DriverRequest {
  return {
    volume_id: 1n, user_id: 2n, coordinator_id: 3n, file_id: 0xDEADBEEFCAFEF00Dn, file_version: 1n,
    request_type: DriverRequestType.BLOCK, path: '/f', block_id, block_version: -1n, io_type: IoType.READ,
  };
}

let server: RedisServer;
let redis: Redis;
let subscriber: Redis;
test.before(async () => {
  server = await testRedis();
  redis = new Redis(server.url);
  subscriber = new Redis(server.url);
});
test.after.always(async () => {
  await redis?.quit();
  await subscriber?.quit();
  await server?.stop(); // a process 'exit' hook cannot wait for the server to stop
});

test('a TypeScript driver importing from sgw becomes one self-contained CommonJS file', async (t) => {
  const bundle = await buildBundle(driverFolder(t, tsFiles));
  t.regex(bundle.hash, /^[0-9a-f]{64}$/);
  t.deepEqual(bundle.meta.methods, ['driver_init', 'read_chunk']);
  t.is(bundle.meta.entry, 'driver.ts');
  t.false(Number.isNaN(Date.parse(bundle.meta.builtAt)));
  t.is(bundle.config.toString(), '{"PREFIX":"p","b":[1,{"x":2,"y":1}]}');
  t.is(bundle.secrets, null);
  t.notRegex(bundle.code, /require\(["']sgw["']\)|from ["']sgw["']/, 'sgw is compiled in, not required at run time');

  // Loaded from a folder with no sgw and no driver sources in reach, as on another host.
  const loaded = loadDriverModule(bundle, freshDir(t));
  t.is(loaded.hash, bundle.hash);
  t.deepEqual([...loaded.methods.keys()], ['driver_init', 'read_chunk']);
  t.true(loaded.methods.get('driver_init')!(JSON.parse(bundle.config.toString()), {}));
  const sink = new ChunkSink();
  t.is(loaded.methods.get('read_chunk')!(blockRequest(5n), sink), 0);
  t.is((await sink.collect()).toString(), 'p:1/DEADBEEFCAFEF00D/5/-1');
  t.is(loaded.methods.get('read_chunk')!(blockRequest(0n), new ChunkSink()), -Errno.ENOENT);
});

test('a CommonJS driver with module.exports is bundled and its methods found', async (t) => {
  const bundle = await buildBundle(driverFolder(t, { 'driver.cjs': CJS_DRIVER }));
  t.deepEqual(bundle.meta.methods, ['deserialize', 'serialize']);
  t.is(bundle.meta.entry, 'driver.cjs');
  t.is(bundle.config.toString(), '{}', 'no config.json means {}');
  const { methods } = loadDriverModule(bundle, freshDir(t));
  const packed = methods.get('serialize')!(blockRequest(1n), Buffer.from('hello hello hello')) as Buffer;
  t.is((methods.get('deserialize')!(blockRequest(1n), packed) as Buffer).toString(), 'hello hello hello');
  t.is(methods.get('deserialize')!(blockRequest(1n), Buffer.from('not gzip')), -Errno.EBADMSG);
});

test('an ESM driver exporting a default object has the methods of that object', async (t) => {
  const bundle = await buildBundle(driverFolder(t, { 'driver.mjs': 'export default { delete_chunk() { return 0; }, rename_file() { return 0; } };\n' }));
  t.deepEqual(bundle.meta.methods, ['delete_chunk', 'rename_file']);
});

test('identical content gives the identical hash wherever the folder lies and whenever it is built', async (t) => {
  const first = await buildBundle(driverFolder(t, tsFiles));
  const elsewhere = path.join(freshDir(t), 'deeper', 'still', 'deeper');
  const reordered = { ...tsFiles, 'config.json': '{\n  "b": [1, {"x": 2, "y": 1}],\n  "PREFIX": "p"\n}\n' };
  const second = await buildBundle(driverFolder(t, reordered, elsewhere));
  t.is(second.hash, first.hash);
  t.is(second.code, first.code);
  t.is(bundleHash(first.code, first.config, first.secrets), first.hash, 'builtAt is not part of the hash');
});

test('a relative folder under a *_DIR key of config.json is taken from the driver folder; other values stay as written', async (t) => {
  const config = '{"DATASET_DIR": "data", "STORAGE_DIR": "/abs/store", "CACHE_DIR": "", "PREFIX": "rel/x", "NESTED": {"A_DIR": "y"}}';
  const folder = driverFolder(t, { ...tsFiles, 'config.json': config });
  const bundle = await buildBundle(folder);
  t.deepEqual(JSON.parse(bundle.config.toString()), {
    DATASET_DIR: path.join(folder, 'data'), STORAGE_DIR: '/abs/store', CACHE_DIR: '', PREFIX: 'rel/x', NESTED: { A_DIR: 'y' },
  });
  const elsewhere = await buildBundle(driverFolder(t, { ...tsFiles, 'config.json': config }, path.join(freshDir(t), 'other')));
  t.not(elsewhere.hash, bundle.hash, 'another folder is another dataset, so another version');
});

test('changing the code, the config or the secrets changes the hash', async (t) => {
  const base = await buildBundle(driverFolder(t, tsFiles));
  const code = await buildBundle(driverFolder(t, { ...tsFiles, 'naming.ts': TS_DRIVER_LIB.replace("':'", "'/'") }));
  const config = await buildBundle(driverFolder(t, { ...tsFiles, 'config.json': '{"PREFIX": "q", "b": [1, {"y": 1, "x": 2}]}' }));
  t.not(code.hash, base.hash);
  t.not(config.hash, base.hash);
  t.not(bundleHash(base.code, base.config, Buffer.alloc(0)), base.hash, 'empty secrets differ from no secrets');
  t.not(bundleHash('ab', Buffer.from('c'), null), bundleHash('a', Buffer.from('bc'), null), 'parts cannot slide into each other');
});

test('canonical JSON sorts keys at every level and drops whitespace', (t) => {
  t.is(canonicalJson({ b: { d: [3, { f: 1, e: null }], c: 'x' }, a: true }), '{"a":true,"b":{"c":"x","d":[3,{"e":null,"f":1}]}}');
});

test('sealed secrets travel in the bundle and only the gateway key opens them', async (t) => {
  const gw = generateKeyPair(2048);
  const plaintext = Buffer.from('{"TOKEN":"s3cr3t"}');
  const sealed = sealSecrets(plaintext, parsePublicKey(gw.publicPem));
  const bundle = await buildBundle(driverFolder(t, { 'driver.cjs': CJS_DRIVER, 'secrets.sealed.json': sealed }));
  t.true(bundle.secrets?.equals(sealed));
  t.false(bundle.code.includes('s3cr3t'));
  t.true(unsealSecrets(bundle.secrets!, parsePrivateKey(gw.privatePem)).equals(plaintext));
  await t.throwsAsync(buildBundle(driverFolder(t, { 'driver.cjs': CJS_DRIVER, 'secrets.sealed.json': plaintext })), { instanceOf: SecretsError });
});

test('a folder without exactly one driver file, or with bad config, is refused with a clear error', async (t) => {
  await t.throwsAsync(buildBundle(driverFolder(t, { 'config.json': '{}' })), { instanceOf: BundleError, message: /has no driver file/ });
  await t.throwsAsync(buildBundle(driverFolder(t, { 'driver.js': '', 'driver.ts': '' })), { instanceOf: BundleError, message: /several driver files \(driver\.ts, driver\.js\)/ });
  await t.throwsAsync(buildBundle(driverFolder(t, { 'driver.js': '', 'config.json': '{nope' })), { instanceOf: BundleError, message: /config\.json is not valid JSON/ });
  await t.throwsAsync(buildBundle(driverFolder(t, { 'driver.js': '', 'config.json': '[1]' })), { instanceOf: BundleError, message: /JSON object/ });
});

test('a driver that does not compile is refused with the file and line', async (t) => {
  const err = await t.throwsAsync(buildBundle(driverFolder(t, { 'driver.ts': 'export function read_chunk( {\n' })), { instanceOf: BundleError });
  t.regex(err!.message, /driver\.ts:\d+:\d+: /);
  const missing = await t.throwsAsync(buildBundle(driverFolder(t, { 'driver.ts': "import { x } from './nowhere.js';\nexport const y = x;\n" })), { instanceOf: BundleError });
  t.regex(missing!.message, /nowhere/);
});

test('a driver whose top-level code throws fails with a DriverLoadError carrying its message', async (t) => {
  const folder = driverFolder(t, { 'driver.js': "export function read_chunk() { return 0; }\nthrow new Error('no API key configured');\n" });
  const err = await t.throwsAsync(buildBundle(folder), { instanceOf: DriverLoadError });
  t.regex(err!.message, /failed to load: no API key configured/);
});

test('loadDriverModule writes the code to workDir/bundles/<hash>.cjs and refuses a malformed hash', async (t) => {
  const bundle = await buildBundle(driverFolder(t, { 'driver.cjs': CJS_DRIVER }));
  const workDir = freshDir(t);
  loadDriverModule(bundle, workDir);
  t.deepEqual(fs.readdirSync(path.join(workDir, 'bundles')), [`${bundle.hash}.cjs`]);
  t.is(fs.readFileSync(path.join(workDir, 'bundles', `${bundle.hash}.cjs`), 'utf8'), bundle.code);
  t.throws(() => loadDriverModule({ ...bundle, hash: '../../etc/x' }, workDir), { instanceOf: BundleError });
});

/** Collects the messages published on a channel. */
async function listen(t: ExecutionContext, channel: string): Promise<string[]> {
  const messages: string[] = [];
  const onMessage = (ch: string, message: string) => { if (ch === channel) messages.push(message); };
  subscriber.on('message', onMessage);
  await subscriber.subscribe(channel);
  t.teardown(async () => { subscriber.off('message', onMessage); await subscriber.unsubscribe(channel); });
  return messages;
}

async function until(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

test('publish then fetch gives back the same bundle, and the gateway points at it', async (t) => {
  const gateway = 'rg.101';
  const gw = generateKeyPair(2048);
  const sealed = sealSecrets(Buffer.from('{"K":1}'), parsePublicKey(gw.publicPem));
  const bundle = await buildBundle(driverFolder(t, { ...tsFiles, 'secrets.sealed.json': sealed }));
  t.is(await currentBundleHash(redis, gateway), null);
  const published = await publishBundle(redis, gateway, bundle, SIGNER);
  t.like(published, { hash: bundle.hash, changed: true });
  t.is(await currentBundleHash(redis, gateway), bundle.hash);

  const fetched = await fetchBundle(redis, gateway, bundle.hash);
  const { signed, ...content } = fetched!;
  t.deepEqual(content, bundle);
  t.is(verifyBundle(signed, gateway, bundle.hash, SIGNER).seq, published.seq, 'stored with its signed manifest');
  t.true(fetched!.config.equals(bundle.config));
  t.true(fetched!.secrets!.equals(sealed));
  t.deepEqual(Object.keys(await redis.hgetall(keys.bundle(gateway, bundle.hash))).sort(), ['code', 'config', 'meta', 'secrets', 'signed']);

  const noSecrets = await buildBundle(driverFolder(t, { 'driver.cjs': CJS_DRIVER }));
  await publishBundle(redis, 'rg.102', noSecrets, SIGNER);
  t.is((await fetchBundle(redis, 'rg.102', noSecrets.hash))!.secrets, null);
  t.is(await fetchBundle(redis, gateway, noSecrets.hash), null, 'a bundle is kept with the gateway it was published for');
  t.is(await fetchBundle(redis, gateway, 'f'.repeat(64)), null);
  await t.throwsAsync(fetchBundle(redis, gateway, 'not-a-hash'), { instanceOf: BundleError });
});

test('a new version is announced once on the gateway channel; republishing the same is not', async (t) => {
  const gateway = 'rg.103';
  const heard = await listen(t, keys.driverChanged(gateway));
  const v1 = await buildBundle(driverFolder(t, tsFiles));
  const v2 = await buildBundle(driverFolder(t, { ...tsFiles, 'config.json': '{"PREFIX": "v2"}' }));

  t.true((await publishBundle(redis, gateway, v1, SIGNER)).changed);
  t.false((await publishBundle(redis, gateway, v1, SIGNER)).changed);
  t.false((await publishBundle(redis, gateway, { ...v1, meta: { ...v1.meta, builtAt: new Date(0).toISOString() } }, SIGNER)).changed);
  t.true((await publishBundle(redis, gateway, v2, SIGNER)).changed);
  await until(() => heard.length >= 2);
  await new Promise((r) => setTimeout(r, 100)); // room for a stray extra announcement to show up
  t.deepEqual(heard, [v1.hash, v2.hash]);
  t.is(await currentBundleHash(redis, gateway), v2.hash);
  t.is((await fetchBundle(redis, gateway, v1.hash))!.meta.builtAt, v1.meta.builtAt, 'a stored version is never rewritten');
  t.true((await publishBundle(redis, gateway, v1, SIGNER)).changed, 'rolling back is a change too');
});

test('a bundle whose content does not match its hash is refused, in Redis and on publish', async (t) => {
  const bundle = await buildBundle(driverFolder(t, { 'driver.cjs': `${CJS_DRIVER}module.exports.note = 'corrupted in Redis below';\n` }));
  await t.throwsAsync(publishBundle(redis, 'rg.104', { ...bundle, code: bundle.code + '\n' }, SIGNER), { instanceOf: BundleError });
  await publishBundle(redis, 'rg.104', bundle, SIGNER);
  await redis.hset(keys.bundle('rg.104', bundle.hash), 'code', bundle.code.replace('gzip', 'gunzip'));
  await t.throwsAsync(fetchBundle(redis, 'rg.104', bundle.hash), { instanceOf: BundleError, message: /does not match its hash/ });
});

test('the built-in disk driver bundles, travels through Redis and stores chunks from the loaded copy', async (t) => {
  const bundle = await buildBundle(DISK_DRIVER_FOLDER);
  t.deepEqual(bundle.meta.methods, ['delete_chunk', 'driver_init', 'read_chunk', 'rename_file', 'write_chunk']);
  t.deepEqual(JSON.parse(bundle.config.toString()), { STORAGE_DIR: path.join(DISK_DRIVER_FOLDER, 'storage') }, 'a relative *_DIR is taken from the driver folder');
  await publishBundle(redis, 'rg.105', bundle, SIGNER);
  const fetched = (await fetchBundle(redis, 'rg.105', (await currentBundleHash(redis, 'rg.105'))!)) as DriverBundle;
  const { methods } = loadDriverModule(fetched, freshDir(t));
  const config = { STORAGE_DIR: path.join(freshDir(t), 'store') };
  const call = (name: string, ...args: unknown[]) => methods.get(name)!(...args) as Promise<number>;

  t.true(await call('driver_init', config, {}));
  t.is(await call('write_chunk', blockRequest(9n), Buffer.from('nine'), config, {}), 0);
  const sink = new ChunkSink();
  t.is(await call('read_chunk', blockRequest(9n), sink, config, {}), 0);
  t.is((await sink.collect()).toString(), 'nine');
  t.is(await call('delete_chunk', blockRequest(9n), config, {}), 0);
  t.is(await call('read_chunk', blockRequest(9n), new ChunkSink(), config, {}), -Errno.ENOENT);
});

test('a driver.py is stored as it is, and its methods are found by parsing it, never by running it', async (t) => {
  const marker = path.join(freshDir(t), 'ran');
  const source = `import os
open(${JSON.stringify(marker)}, "w").close()   # top-level code a publisher must not run

def read_chunk(request, chunk_fd, config, secrets):
    def helper():
        return 0
    return helper()

def _own_helper():
    return 1

async def serialize(request, chunk):
    return chunk

class Cache:
    def write_chunk(self):
        return 0
`;
  const bundle = await buildBundle(driverFolder(t, { 'driver.py': source, 'config.json': '{"b": 1, "a": 2}' }));
  t.is(bundle.code, source);
  t.deepEqual(bundle.meta.methods, ['read_chunk', 'serialize'], 'top-level public functions only: not nested ones, not class methods, not _helpers');
  t.is(bundle.meta.entry, 'driver.py');
  t.is(bundle.hash, bundleHash(source, Buffer.from('{"a":2,"b":1}'), null));
  t.false(fs.existsSync(marker), 'publishing did not run the driver');
  t.throws(() => loadDriverModule(bundle, freshDir(t)), { instanceOf: BundleError, message: /Python driver/ });
});

test('a driver.py that is not Python, not UTF-8, or sits beside another driver file is refused', async (t) => {
  const err = await t.throwsAsync(buildBundle(driverFolder(t, { 'driver.py': 'def read_chunk(:\n    return 0\n' })), { instanceOf: BundleError });
  t.regex(err!.message, /driver\.py:1:\d+: /);
  await t.throwsAsync(buildBundle(driverFolder(t, { 'driver.py': Buffer.from([0x64, 0x65, 0x66, 0xff, 0x0a]) })), { instanceOf: BundleError, message: /not UTF-8/ });
  await t.throwsAsync(buildBundle(driverFolder(t, { 'driver.py': '', 'driver.js': '' })), { instanceOf: BundleError, message: /several driver files/ });
});

test('a driver folder anywhere imports @aws-sdk/client-s3 from sgw\'s pre-bundled copy; a folder with its own copy keeps it', async (t) => {
  const source = `import { S3Client } from '@aws-sdk/client-s3';\nexport function driver_init(): boolean { return typeof S3Client === 'function'; }\n`;
  const plain = await buildBundle(driverFolder(t, { 'driver.ts': source }));
  t.regex(plain.code, /^\/\/ sgw\/dist\/drivers\/provided\/aws-sdk-client-s3\.cjs$/m, 'the provided file, named by its place in sgw');
  const loaded = loadDriverModule(plain, freshDir(t));
  t.true(await loaded.methods.get('driver_init')!(), 'the SDK loads from the bundle alone');

  const own = driverFolder(t, { 'driver.ts': source });
  const pkg = path.join(own, 'node_modules', '@aws-sdk', 'client-s3');
  fs.mkdirSync(pkg, { recursive: true });
  fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: '@aws-sdk/client-s3', version: '0.0.1', main: 'index.js' }));
  fs.writeFileSync(path.join(pkg, 'index.js'), 'exports.S3Client = function OwnCopy() {};\n');
  const kept = await buildBundle(own);
  t.regex(kept.code, /OwnCopy/);
  t.notRegex(kept.code, /aws-sdk-client-s3\.cjs/);
});

test('\'sgw/builtin/<name>\' publishes a built-in driver as it is; other \'sgw/...\' imports are refused with what is allowed', async (t) => {
  const s3 = await buildBundle(driverFolder(t, { 'driver.mjs': "export * from 'sgw/builtin/s3';\n" }));
  t.deepEqual(s3.meta.methods, ['delete_chunk', 'driver_init', 'driver_shutdown', 'read_chunk', 'rename_file', 'write_chunk']);
  const dataset = await buildBundle(driverFolder(t, { 'driver.mjs': "export * from 'sgw/builtin/s3-dataset';\n" }));
  t.deepEqual(dataset.meta.methods, ['driver_init', 'driver_shutdown', 'next_dataset', 'read', 'refresh']);
  for (const bad of ['sgw/builtin/nope', 'sgw/drivers/helpers.js']) {
    const err = await t.throwsAsync(buildBundle(driverFolder(t, { 'driver.mjs': `export * from '${bad}';\n` })), { instanceOf: BundleError });
    t.regex(err!.message, /a driver may import 'sgw' \(the helpers\), 'sgw\/builtin\/<name>' of a built-in driver or 'sgw\/builtin\/<name>\/<module>'/);
  }
});

test('a bundle manifest holds only with this gateway key, for this gateway and content, and not below the running sequence', (t) => {
  const meta = { methods: ['read_chunk'], entry: 'driver.mjs', builtAt: '2026-12-05T00:00:00.000Z' };
  const hash = 'a'.repeat(64);
  const signed = signBundle('rg.1', hash, meta, 1000, SIGNER);
  t.like(verifyBundle(signed, 'rg.1', hash, SIGNER, 1000), { gateway: 'rg.1', hash, seq: 1000, meta });
  const refused = (bytes: Buffer | null, gateway: string, h: string, floor = 0) => {
    try {
      verifyBundle(bytes, gateway, h, SIGNER, floor);
      return 'accepted';
    } catch (err) {
      return (err as BundleRefused).reason;
    }
  };
  t.is(refused(signed, 'rg.2', hash), 'wrong-gateway');
  t.is(refused(signed, 'rg.1', 'b'.repeat(64)), 'wrong-hash');
  t.is(refused(signed, 'rg.1', hash, 1001), 'rollback');
  t.is(refused(null, 'rg.1', hash), 'unsigned');
  t.is(refused(Buffer.from('{"manifest":'), 'rg.1', hash), 'malformed');
  const record = JSON.parse(signed.toString()) as { manifest: string; signature: string };
  const more = { ...record, manifest: record.manifest.replace('"read_chunk"', '"read_chunk","write_chunk"') };
  t.is(refused(Buffer.from(JSON.stringify(more)), 'rg.1', hash), 'bad-signature', 'the methods cannot be changed apart from the signature');
  t.is(refused(signBundle('rg.1', hash, meta, 1000, parsePrivateKey(generateKeyPair(2048).privatePem)), 'rg.1', hash), 'bad-signature');
});
