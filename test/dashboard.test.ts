// The Bull dashboard as an operator meets it: a real gateway with traffic, Debian's chromium logging
// in and reading the queues' job counts, and the credential and read-only rules over plain HTTP.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { Queue } from 'bullmq';
import { chromium } from 'playwright-core';
import { ChunkType } from '../proto/messages.js';
import { formatBlockUrl } from '../http/data-url.js';
import { layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import { createDashboard, DASHBOARD_PATH } from '../http/dashboard.js';
import { answerErrors } from '../http/errors.js';
import { freePort } from '../actors/supervisor/embedded-redis.js';
import { keys, queuePrefix } from '../queues/names.js';
import { CLI, fileRef, waitFor, type GatewayFolder, stopChild } from './support/gateway.js';
import { gatewayPerFile } from './support/gateway-per-file.js';
import { redisAt } from '../queues/redis.js';

const ADMIN = { user: 'ops', password: 'dash s3cret' };
const gateway = gatewayPerFile({ config: { admin: ADMIN } });
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const AUTH = { Authorization: basic(ADMIN.user, ADMIN.password) };
/** A queue of the test's own, registered like sgw's, that the write tests may change freely. */
const SCRATCH = 'test.scratch';

test.serial.before('traffic through the gateway so its queues hold jobs', async () => {
  const { f, redis } = gateway;
  const file = fileRef(f);
  const { blocks, data } = layOutChunks([0n, 1n, 2n].map((id) => ({
    block: { block_id: id, block_version: 1n, chunk_type: ChunkType.BLOCK, logical_offset: 0n, logical_len: 4096n },
    bytes: Buffer.alloc(3000, Number(id)),
  })));
  const put = await sendControlPlane(f.url, putChunksFields(file, blocks), f.ugKey, data, f.rgKey);
  if (put.status !== 200 || put.reply?.error_code !== 0) throw new Error(`PUTCHUNKS failed: ${put.status} ${put.body.toString()}`);
  const addr = { volume_id: 3n, fs_path: file.fs_path, file_id: file.file_id, file_version: file.file_version };
  for (const id of [7n, 8n, 9n]) { // misses: each goes to the read queue
    const res = await fetch(formatBlockUrl(f.url, { ...addr, block_id: id, block_version: 1n }));
    if (res.status !== 404) throw new Error(`GET of a missing block answered ${res.status}`);
  }
  const scratch = new Queue(SCRATCH, { connection: redis, prefix: queuePrefix(SCRATCH) });
  await scratch.add('x', { n: 1 });
  await scratch.add('x', { n: 2 });
  await scratch.close();
  await redis.sadd(keys.queues, SCRATCH);
});

async function jobTotal(f: GatewayFolder, name: string): Promise<number> {
  const q = new Queue(name, { connection: gateway.redis, prefix: queuePrefix(name) });
  try {
    return Object.values(await q.getJobCounts()).reduce((a, b) => a + b, 0);
  } finally {
    await q.close();
  }
}

test('chromium logs in with basic auth and sees every queue of the gateway with its job count', async (t) => {
  const { f } = gateway;
  const expected = new Map<string, number>();
  for (const mode of ['read', 'write']) expected.set(`${f.gatewayKey}.${mode}`, await jobTotal(f, `${f.gatewayKey}.${mode}`));
  t.true([...expected.values()].every((n) => n > 0), 'the traffic left jobs in the read and write queues');

  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const context = await browser.newContext({ httpCredentials: { username: ADMIN.user, password: ADMIN.password } });
    const page = await context.newPage();
    const res = await page.goto(`${f.url}${DASHBOARD_PATH}`, { waitUntil: 'domcontentloaded', timeout: 20_000 });
    t.is(res?.status(), 200);
    for (const [name, total] of expected) {
      // The overview shows one card per queue: its name, maybe "No workers", then "<n> Jobs".
      const card = new RegExp(`^${name.replace(/\./g, '\\.')}\n(?:[^\n]*workers\n)?${total} Jobs?$`, 'm');
      const text = await waitFor(`the card of ${name}`, async () => {
        const body = await page.locator('body').innerText();
        return card.test(body) ? body : null;
      }).catch(async () => page.locator('body').innerText());
      t.regex(text, card, `${name} shows its ${total} jobs`);
    }
    mkdirSync('test-output', { recursive: true });
    await page.screenshot({ path: join('test-output', 'dashboard.png'), fullPage: true });
  } finally {
    await browser.close();
  }
});

test('without the credential the page, its API and its static assets answer 401', async (t) => {
  const { f } = gateway;
  for (const path of ['', '/', '/api/queues', '/api/redis/stats', '/static/images/logo.svg', `/queue/${f.gatewayKey}.read`]) {
    for (const headers of [{}, { Authorization: basic(ADMIN.user, 'wrong') }, { Authorization: 'Bearer dash s3cret' }] as Record<string, string>[]) {
      const res = await fetch(`${f.url}${DASHBOARD_PATH}${path}`, { headers });
      t.is(res.status, 401, `${path} with ${JSON.stringify(headers)}`);
      t.regex(res.headers.get('www-authenticate') ?? '', /^Basic/);
    }
  }
  const ok = await fetch(`${f.url}${DASHBOARD_PATH}/static/images/logo.svg`, { headers: AUTH });
  t.is(ok.status, 200, 'the same asset with the credential');
});

test('with the credential the API lists the gateway queues and the registered scratch queue', async (t) => {
  const { f } = gateway;
  const res = await fetch(`${f.url}${DASHBOARD_PATH}/api/queues`, { headers: AUTH });
  t.is(res.status, 200);
  const body = await res.json() as { queues: { name: string; readOnlyMode: boolean }[] };
  const names = body.queues.map((q) => q.name);
  for (const name of [`${f.gatewayKey}.read`, `${f.gatewayKey}.write`, SCRATCH]) t.true(names.includes(name), name);
  t.true(body.queues.every((q) => q.readOnlyMode), 'every queue is read-only');
});

/** Every write the dashboard's API offers, on one queue. */
function writeActions(queue: string, jobId: string): [string, string][] {
  const q = `${DASHBOARD_PATH}/api/queues/${encodeURIComponent(queue)}`;
  return [
    ['PUT', `${q}/pause`], ['PUT', `${q}/resume`], ['PUT', `${q}/empty`], ['PUT', `${q}/promote`],
    ['PUT', `${q}/retry/failed`], ['PUT', `${q}/clean/completed`], ['PUT', `${q}/clean/waiting`], ['PUT', `${q}/obliterate`],
    ['POST', `${q}/add`], ['PUT', `${q}/${jobId}/retry`], ['PUT', `${q}/${jobId}/clean`], ['PUT', `${q}/${jobId}/promote`],
    ['PATCH', `${q}/${jobId}/update-data`], ['PUT', `${DASHBOARD_PATH}/api/queues/pause`], ['PUT', `${DASHBOARD_PATH}/api/queues/resume`],
    ['DELETE', `${q}/${jobId}`],
  ];
}

// Serial: the allow_writes test adds a job to the scratch queue, which this one counts.
test.serial('read-only by default: every write action answers 405 and changes nothing', async (t) => {
  const { f } = gateway;
  const before = await jobTotal(f, SCRATCH);
  for (const [method, path] of writeActions(SCRATCH, '1')) {
    const res = await fetch(`${f.url}${path}`, { method, headers: { ...AUTH, 'Content-Type': 'application/json' }, body: '{"name":"x","data":{}}' });
    t.is(res.status, 405, `${method} ${path}`);
    t.regex(await res.text(), /read-only/);
  }
  t.is(await jobTotal(f, SCRATCH), before, 'no job was added, cleaned or removed');
  const q = new Queue(SCRATCH, { connection: gateway.redis, prefix: queuePrefix(SCRATCH) });
  t.false(await q.isPaused(), 'the queue was not paused');
  await q.close();
});

/** `sgw dashboard` as a child process; resolves once it printed its URL. */
async function startDashboardCli(args: string[]): Promise<{ proc: ChildProcess; url: string; output: () => string }> {
  const proc = spawn(process.execPath, [CLI, 'dashboard', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => { out += d; });
  proc.stderr!.on('data', (d) => { out += d; });
  const url = await waitFor('sgw dashboard to print its URL', async () => {
    if (proc.exitCode !== null) throw new Error(`sgw dashboard exited ${proc.exitCode}: ${out}`);
    return /(http:\/\/\S+\/admin\/queues)/.exec(out)?.[1];
  });
  return { proc, url, output: () => out };
}


function configVariant(f: GatewayFolder, name: string, admin: Record<string, unknown> | undefined): string {
  const config = JSON.parse(readFileSync(f.configFile, 'utf8')) as Record<string, unknown>;
  if (admin) config.admin = admin;
  else delete config.admin;
  const file = join(f.dir, name);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

test.serial('sgw dashboard with allow_writes: the same actions work, and it is still behind the credential', async (t) => {
  const { f } = gateway;
  const file = configVariant(f, 'dash-writes.json', { token: 'ops-token', allow_writes: true });
  const dash = await startDashboardCli(['--config', file, '--port', String(await freePort())]);
  const bearer = { Authorization: 'Bearer ops-token', 'Content-Type': 'application/json' };
  const q = new Queue(SCRATCH, { connection: gateway.redis, prefix: queuePrefix(SCRATCH) });
  try {
    t.is((await fetch(`${dash.url}/api/queues`)).status, 401);
    t.is((await fetch(`${dash.url}/api/queues/${SCRATCH}/pause`, { method: 'PUT' })).status, 401, 'a write without the credential');
    t.is((await fetch(`${dash.url}/api/queues`, { headers: bearer })).status, 200);
    t.is((await fetch(`${dash.url}/api/queues/${SCRATCH}/pause`, { method: 'PUT', headers: bearer })).status, 200);
    t.true(await q.isPaused(), 'pause reached BullMQ');
    t.is((await fetch(`${dash.url}/api/queues/${SCRATCH}/resume`, { method: 'PUT', headers: bearer })).status, 200);
    t.false(await q.isPaused());
    const before = await jobTotal(f, SCRATCH);
    const add = await fetch(`${dash.url}/api/queues/${SCRATCH}/add`, { method: 'POST', headers: bearer, body: JSON.stringify({ name: 'added', data: { n: 3 } }) });
    t.is(add.status, 200, await add.text());
    t.is(await jobTotal(f, SCRATCH), before + 1, 'the job was added');
  } finally {
    await q.close();
    t.is(await stopChild(dash.proc), 0, 'stops cleanly on SIGTERM');
  }
});

test('sgw dashboard refuses to start without a credential, and --insecure-local only on loopback', async (t) => {
  const { f } = gateway;
  const file = configVariant(f, 'dash-none.json', undefined);
  const run = (args: string[]) => new Promise<{ code: number | null; out: string }>((resolve) => {
    const proc = spawn(process.execPath, [CLI, 'dashboard', '--config', file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stderr.on('data', (d) => { out += d; });
    proc.once('exit', (code) => resolve({ code, out }));
  });
  const refused = await run(['--port', '0']);
  t.is(refused.code, 1);
  t.regex(refused.out, /no admin credential.*admin\.user and admin\.password.*--insecure-local/s);
  const wide = await run(['--insecure-local', '--host', '0.0.0.0', '--port', '0']);
  t.is(wide.code, 1);
  t.regex(wide.out, /only on 127\.0\.0\.1/);

  const local = await startDashboardCli(['--config', file, '--insecure-local', '--port', '0']);
  try {
    t.regex(local.url, /^http:\/\/127\.0\.0\.1:\d+\/admin\/queues$/);
    t.is((await fetch(`${local.url}/api/queues`)).status, 200, 'open on loopback');
    t.is((await fetch(`${local.url}/api/queues/${SCRATCH}/pause`, { method: 'PUT' })).status, 405, 'and still read-only');
  } finally {
    await stopChild(local.proc);
  }
});

test('with no credential configured the dashboard of an http actor is off: 404 everywhere', async (t) => {
  const dashboard = createDashboard({ redis: redisAt(gateway.f.redisUrl), admin: { token: null, user: null, password: null, allow_writes: false } });
  const app = new Koa();
  app.use(answerErrors);
  app.use(dashboard.middleware);
  app.use((ctx) => { ctx.body = 'data plane'; });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    for (const path of ['', '/', '/api/queues', '/static/images/logo.svg']) {
      const res = await fetch(`${base}${DASHBOARD_PATH}${path}`, { headers: AUTH });
      t.is(res.status, 404, path);
      t.regex(await res.text(), /configure admin/);
    }
    t.is(await (await fetch(`${base}/PING`)).text(), 'data plane', 'other paths pass through');
  } finally {
    server.close();
    await dashboard.close();
  }
});
