// Logs as JSON lines: the request id of an HTTP request reaches the driver actor's lines for its
// calls, and at debug level no secret (driver secrets, admin token, private key) is ever written.
import test from 'ava';
import { createPublicKey, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ChunkType } from '../proto/messages.js';
import { formatBlockUrl } from '../http/data-url.js';
import { layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import { sealSecrets } from '../drivers/secrets.js';
import { testRedis } from './support/redis.js';
import {
  cleanup, DISK_DRIVER_JS, fileRef, makeGatewayFolder, startGatewayProcess, waitFor, waitForGateway, writeDriver,
  type GatewayFolder, type RunningGateway,
} from './support/gateway.js';

const API_KEY = `driver-secret-${randomUUID()}`;
const ADMIN_TOKEN = `admin-token-${randomUUID()}`;

// The disk driver, refusing to start without its secret, and failing reads of paths with "fail".
const DRIVER = `
import { driver_init as diskInit, read_chunk as diskRead } from ${JSON.stringify(DISK_DRIVER_JS)};
export * from ${JSON.stringify(DISK_DRIVER_JS)};
export async function driver_init(config, secrets) {
  return secrets.API_KEY === ${JSON.stringify(API_KEY)} && diskInit(config, secrets);
}
export async function read_chunk(request, fd, config, secrets) {
  return request.path.includes('fail') ? -5 : diskRead(request, fd, config, secrets);
}
`;

let f: GatewayFolder;
let gw: RunningGateway;
let redis: Redis;

test.before(async () => {
  redis = new Redis((await testRedis()).url);
  f = await makeGatewayFolder({ config: { admin: { token: ADMIN_TOKEN } } });
  writeDriver(f.dir, DRIVER, { STORAGE_DIR: f.storageDir });
  writeFileSync(join(f.dir, 'driver', 'secrets.sealed.json'), sealSecrets(Buffer.from(JSON.stringify({ API_KEY })), createPublicKey(f.rgKey)));
  gw = startGatewayProcess(f.configFile, undefined, f.dir, { env: { SGW_LOG_LEVEL: 'debug' } });
  await waitForGateway(f, redis);
});

test.after.always(async () => {
  await gw?.stop();
  redis?.disconnect();
  cleanup([f.dir]);
});

interface Line { level: number; msg: string; rid?: string; actor?: string; [k: string]: unknown }

/** The gateway's complete pino lines so far (the supervisor's start banner is plain text and skipped). */
function lines(): Line[] {
  const complete = gw.output().split('\n').slice(0, -1); // the last piece may be a line still being written
  return complete.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);
}

const PINO = { debug: 20, info: 30, warn: 40 };

test.serial('the X-Request-Id of a GET appears in the http line and in the read actor\'s debug line for its call', async (t) => {
  const file = fileRef(f, { file_id: 0x1091n });
  const { blocks, data } = layOutChunks([{ block: { block_id: 0n, block_version: 1n, chunk_type: ChunkType.BLOCK }, bytes: Buffer.from('logged') }]);
  t.is((await sendControlPlane(f.url, putChunksFields(file, blocks), f.ugKey, data)).status, 200, 'driver_init accepted the unsealed secret');
  const rid = randomUUID();
  const res = await fetch(formatBlockUrl(f.url, { volume_id: 3n, fs_path: file.fs_path, file_id: file.file_id, file_version: file.file_version, block_id: 0n, block_version: 1n }), { headers: { 'X-Request-Id': rid } });
  t.is(res.status, 200);
  t.is(res.headers.get('x-request-id'), rid);
  const driverLine = await waitFor('the read actor\'s line', async () => lines().find((l) => l.rid === rid && l.actor === 'driver:read'));
  t.is(driverLine.level, PINO.debug);
  t.is(driverLine.msg, 'driver call');
  t.is(driverLine.rc, 0);
  const httpLine = await waitFor('the http actor\'s line', async () => lines().find((l) => l.rid === rid && l.actor === 'http'));
  t.like(httpLine, { level: PINO.info, msg: 'request', status: 200, cache: 'miss' });
});

test.serial('a failed driver call is logged at warn with the request id', async (t) => {
  const rid = randomUUID();
  const res = await fetch(formatBlockUrl(f.url, { volume_id: 3n, fs_path: '/fail/here', file_id: 0x1092n, file_version: 1n, block_id: 0n, block_version: 1n }), { headers: { 'X-Request-Id': rid } });
  t.is(res.status, 500);
  const line = await waitFor('the warn line', async () => lines().find((l) => l.rid === rid && l.actor === 'driver:read'));
  t.like(line, { level: PINO.warn, msg: 'driver call failed', rc: -5 });
});

test.serial('a request id that is not a short token is replaced by a fresh one', async (t) => {
  const res = await fetch(`${f.url}/PING`, { headers: { 'X-Request-Id': `${'x'.repeat(200)}` } });
  const rid = res.headers.get('x-request-id') ?? '';
  t.regex(rid, /^[0-9a-f-]{36}$/);
  const spaced = await fetch(`${f.url}/PING`, { headers: { 'X-Request-Id': 'a b' } });
  t.not(spaced.headers.get('x-request-id'), 'a b');
});

test.serial('at debug level no secret reaches the logs: driver secrets, admin token, private key', async (t) => {
  // Give every secret a chance to be logged: an authorized and a refused scrape, a bad POST.
  t.is((await fetch(`${f.url}/metrics`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } })).status, 200);
  t.is((await fetch(`${f.url}/metrics`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}x` } })).status, 401);
  const refusals = () => lines().filter((l) => l.status === 400).length;
  const before = refusals();
  t.is((await fetch(`${f.url}/`, { method: 'POST', body: 'x' })).status, 400);
  await waitFor('the refused POST logged', async () => refusals() > before);
  const out = gw.output();
  t.true(lines().some((l) => l.level === PINO.debug), 'the gateway did log at debug level');
  t.false(out.includes(API_KEY), 'driver secret');
  t.false(out.includes(ADMIN_TOKEN), 'admin token');
  const pem = readFileSync(join(f.dir, 'keys', 'rg.pem'), 'utf8');
  const keyLines = pem.split('\n').filter((l) => l.length > 40 && !l.startsWith('-----'));
  t.true(keyLines.length > 10);
  for (const l of keyLines) t.false(out.includes(l), 'a line of the private key');
});
