// The command line as a user meets it: keys, sealed secrets reaching the driver actors, and clear
// errors (the demo `sgw start` runs in quickstart.test.ts).
import test from 'ava';
import { execFile } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { formatBlockUrl } from '../http/data-url.js';
import { testRedis } from './support/redis.js';
import { keys } from '../queues/names.js';
import {
  CLI, cleanup, DISK_DRIVER_JS, makeGatewayFolder, startGatewayProcess, waitForGateway, writeDriver,
} from './support/gateway.js';

const run = promisify(execFile);
const dirs: string[] = [];
test.after.always(() => cleanup(dirs));

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sgw-cli-'));
  dirs.push(d);
  return d;
}

test('sgw start explains how to install Redis when redis-server is missing', async (t) => {
  const home = tempDir();
  const err = await run(process.execPath, [CLI, 'start'], { cwd: home, env: { ...process.env, SGW_HOME: join(home, 'demo'), SGW_REDIS_SERVER: '/nonexistent/redis-server' } })
    .then(() => null, (e: { code: number; stderr: string }) => e);
  t.truthy(err);
  t.is(err!.code, 1);
  t.regex(err!.stderr, /apt-get install redis-server/);
});

test('sgw ug and sgw status without --config use the demo, and say where they looked when there is none', async (t) => {
  const home = tempDir();
  for (const [args, what] of [[['ug', 'ls', '/'], 'user gateway at .*ug\\.json'], [['status'], 'replica gateway at .*rg\\.json']] as const) {
    const err = await run(process.execPath, [CLI, ...args], { cwd: home, env: { ...process.env, SGW_HOME: join(home, 'nothing-here') } })
      .then(() => null, (e: { code: number; stderr: string }) => e);
    t.is(err?.code, 1);
    t.regex(err?.stderr ?? '', new RegExp(`no --config given, and there is no demo ${what} \\(sgw start without --config makes one\\)`));
  }
});

test('sgw keys new writes a PKCS#8 private key and an SPKI public key that belong together', async (t) => {
  const dir = tempDir();
  await run(process.execPath, [CLI, 'keys', 'new', 'gw', '--bits', '2048', '--dir', dir]);
  const priv = readFileSync(join(dir, 'gw.pem'), 'utf8');
  const pub = readFileSync(join(dir, 'gw.pub.pem'), 'utf8');
  t.regex(priv, /BEGIN PRIVATE KEY/);
  t.regex(pub, /BEGIN PUBLIC KEY/);
  t.is(createPublicKey(createPrivateKey(priv)).export({ type: 'spki', format: 'pem' }), createPublicKey(pub).export({ type: 'spki', format: 'pem' }));
  const again = await run(process.execPath, [CLI, 'keys', 'new', 'gw', '--dir', dir]).then(() => null, (e: { stderr: string }) => e);
  t.regex(again!.stderr, /exists/, 'refuses to overwrite a key');
});

const SECRET_DRIVER = `
import * as disk from ${JSON.stringify(DISK_DRIVER_JS)};
export const { write_chunk, delete_chunk } = disk;
export function driver_init(config, secrets) { return disk.driver_init(config, secrets) && secrets.token === 'open sesame'; }
export function read_chunk(request, chunk_fd, config, secrets) { chunk_fd.write('token=' + secrets.token); return 0; }
`;

test('sealed secrets reach the driver actors, which alone can open them', async (t) => {
  await testRedis();
  const f = await makeGatewayFolder();
  dirs.push(f.dir);
  writeDriver(f.dir, SECRET_DRIVER, { STORAGE_DIR: f.storageDir });
  writeFileSync(join(f.dir, 'driver', 'secrets.json'), JSON.stringify({ token: 'open sesame' }));
  await run(process.execPath, [CLI, 'secrets', 'seal', '--config', f.configFile]);
  const sealed = readFileSync(join(f.dir, 'driver', 'secrets.sealed.json'), 'utf8');
  t.false(sealed.includes('open sesame'), 'the sealed file does not hold the plaintext');
  writeFileSync(join(f.dir, 'driver', 'secrets.json'), '{}'); // only the sealed copy is published

  const redis = new Redis(f.redisUrl);
  const gw = startGatewayProcess(f.configFile);
  try {
    await waitForGateway(f, redis, ['driver:read']);
    const bundle = await redis.hget(keys.bundle(f.gatewayKey, (await redis.get(keys.driverCurrent(f.gatewayKey)))!), 'secrets');
    t.false((bundle ?? '').includes('open sesame'), 'Redis holds only the sealed form');
    const res = await fetch(formatBlockUrl(f.url, { volume_id: 3n, fs_path: '/s', file_id: 5n, file_version: 1n, block_id: 0n, block_version: 0n }));
    t.is(await res.text(), 'token=open sesame');
  } finally {
    await gw.stop();
    redis.disconnect();
  }
});

test('tampered sealed secrets are refused at publish time', async (t) => {
  await testRedis();
  const f = await makeGatewayFolder();
  dirs.push(f.dir);
  writeFileSync(join(f.dir, 'driver', 'secrets.json'), JSON.stringify({ token: 'x' }));
  await run(process.execPath, [CLI, 'secrets', 'seal', '--config', f.configFile]);
  const path = join(f.dir, 'driver', 'secrets.sealed.json');
  const doc = JSON.parse(readFileSync(path, 'utf8')) as { ciphertext: string };
  const c = Buffer.from(doc.ciphertext, 'base64');
  c[0]! ^= 1;
  doc.ciphertext = c.toString('base64');
  writeFileSync(path, JSON.stringify(doc));
  const gw = startGatewayProcess(f.configFile);
  const code = await new Promise<number | null>((resolve) => gw.proc.once('exit', resolve));
  t.not(code, 0);
  t.regex(gw.output(), /secret/i);
});

test('sgw start refuses a port that is already in use, saying how to change it', async (t) => {
  await testRedis();
  const f = await makeGatewayFolder();
  dirs.push(f.dir);
  const blocker = createServer().listen(f.port, '127.0.0.1');
  await new Promise((r) => blocker.once('listening', r));
  try {
    const err = await run(process.execPath, [CLI, 'start', '--config', f.configFile]).then(() => null, (e: { code: number; stderr: string }) => e);
    t.is(err?.code, 1);
    t.regex(err!.stderr, new RegExp(`127\\.0\\.0\\.1:${f.port} is already in use.*SGW_PORT`));
  } finally {
    blocker.close();
  }
});
