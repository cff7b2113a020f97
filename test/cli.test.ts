// The command line as a user meets it: the demo start with its private redis-server, keys,
// sealed secrets reaching the driver actors, and clear errors.
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { formatBlockUrl } from '../http/data-url.js';
import { loadConfig } from '../proto/config/config.js';
import { runningStateRedisUrl } from '../actors/supervisor/state-redis.js';
import { freePort } from '../actors/supervisor/embedded-redis.js';
import { testRedis } from './support/redis.js';
import { keys } from '../queues/names.js';
import {
  CLI, cleanup, DISK_DRIVER_JS, makeGatewayFolder, startGatewayProcess, waitFor, waitForGateway, writeDriver, processAlive,
} from './support/gateway.js';

const run = promisify(execFile);
const dirs: string[] = [];
test.after.always(() => cleanup(dirs));

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sgw-cli-'));
  dirs.push(d);
  return d;
}

test('sgw start with no config runs a demo gateway on a private redis-server and stops it all on SIGTERM', async (t) => {
  const home = tempDir();
  const port = await freePort();
  const proc = spawn(process.execPath, [CLI, 'start'], { cwd: home, env: { ...process.env, SGW_HOME: join(home, 'demo'), SGW_PORT: String(port), SGW_LOG_LEVEL: 'warn' } });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const base = `http://127.0.0.1:${port}`;
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
  await waitFor('the demo gateway', async () => (await fetch(`${base}/PING`)).status === 200);
  // The summary comes once the actors are ready, which may be after /PING first answers.
  await waitFor('the summary', async () => /stop with/.test(out));
  t.regex(out, new RegExp(`http://127\\.0\\.0\\.1:${port}/`), 'prints its URL');
  t.regex(out, /private redis-server/, 'says it started its own Redis');
  t.regex(out, /storage\s+.*demo[/\\]storage/, 'says where its data lives');
  t.regex(out, /stop with/, 'says how to stop it');
  t.regex(out, /redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ {2}\(private redis-server, data in .*demo[/\\]state[/\\]redis/, 'says where the state lives, not the password');
  const redis = new Redis(runningStateRedisUrl(loadConfig(join(home, 'demo', 'config.json'))));
  await waitFor('demo driver actors', async () => (await redis.zcount(keys.alive('rg.20', 'driver:read'), Date.now(), '+inf')) > 0);
  await waitFor('the demo gateway ready', async () => (await fetch(`${base}/ready`)).status === 200);
  const info = await redis.info('server');
  const redisPid = Number(/process_id:(\d+)/.exec(info)![1]);
  redis.disconnect();
  const miss = await fetch(formatBlockUrl(base, { volume_id: 1n, fs_path: '/a', file_id: 1n, file_version: 1n, block_id: 0n, block_version: 0n }));
  t.is(miss.status, 404, 'the built-in disk driver answers: no such chunk');

  const code = await new Promise<number | null>((resolve) => { proc.once('exit', resolve); proc.kill('SIGTERM'); });
  t.is(code, 0);
  await waitFor('the private redis-server to stop', async () => !processAlive(redisPid));
  t.false(processAlive(redisPid));
});

test('sgw start explains how to install Redis when redis-server is missing', async (t) => {
  const home = tempDir();
  const err = await run(process.execPath, [CLI, 'start'], { cwd: home, env: { ...process.env, SGW_HOME: join(home, 'demo'), SGW_REDIS_SERVER: '/nonexistent/redis-server' } })
    .then(() => null, (e: { code: number; stderr: string }) => e);
  t.truthy(err);
  t.is(err!.code, 1);
  t.regex(err!.stderr, /apt-get install redis-server/);
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
