// Issue 15, items 6 and 7: who may reach a gateway, and what a refusal costs its log. /NAMESPACE
// follows the gateway's access rule (a UG's token, as /FILES; on an RG the admin credential by
// default); a gateway listening on loopback answers only to its own names in the Host header (DNS
// rebinding); and an expected refusal is one info line with its reason, never an error with a stack.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { parseConfig } from '../proto/config/config.js';
import { putChunksFields } from '../http/rg-client.js';
import {
  cleanup, fileRef, makeGatewayFolder, rawGet, startGatewayProcess, UG_TEST_TOKEN, waitFor, waitForGateway, type GatewayFolder, type RunningGateway,
} from './support/gateway.js';
import { configFolder } from './support/config-folder.js';
import { testRedis } from './support/redis.js';
import { postHead, signRequest, streamingPost, MiB } from './support/attack.js';

const ADMIN = `admin-${randomBytes(8).toString('hex')}`;
let rg: { f: GatewayFolder; gw: RunningGateway };
let ug: { f: GatewayFolder; gw: RunningGateway };
let redis: Redis;

test.before(async () => {
  redis = new Redis((await testRedis()).url);
  const start = async (f: GatewayFolder, roles?: string[]) => {
    const gw = startGatewayProcess(f.configFile, undefined, undefined, { env: { SGW_LOG_LEVEL: 'info' } });
    try {
      await waitForGateway(f, redis, roles);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${gw.output()}`);
    }
    return { f, gw };
  };
  [rg, ug] = await Promise.all([
    makeGatewayFolder({
      config: {
        admin: { token: ADMIN }, http: { allowed_hosts: ['rg.example'] },
        limits: { call_timeout_ms: 3000, request_timeout_ms: 5000, max_upload_bytes: 8 << 20, header_timeout_ms: 1000, body_idle_timeout_ms: 1000 },
      },
    }).then((f) => start(f)),
    makeGatewayFolder({ type: 'UG' }).then((f) => start(f, [])),
  ]);
});

test.after.always(async () => {
  await Promise.all([rg?.gw.stop(), ug?.gw.stop()]);
  redis?.disconnect();
  cleanup([rg?.f.dir, ug?.f.dir].filter((d): d is string => d !== undefined));
});

// ---- item 6: /NAMESPACE ----

test('a user gateway\'s /NAMESPACE wants its application token, as /FILES does', async (t) => {
  const without = await fetch(`${ug.f.url}/NAMESPACE/`);
  t.is(without.status, 401, await without.text());
  t.is((await fetch(`${ug.f.url}/NAMESPACE/?token=wrong`)).status, 401);
  const withToken = await fetch(`${ug.f.url}/NAMESPACE/?list`, { headers: { Authorization: `Bearer ${UG_TEST_TOKEN}` } });
  t.is(withToken.status, 200, await withToken.clone().text());
  t.like(await withToken.json(), { entry: { type: 'directory' } });
});

test('a replica gateway\'s /NAMESPACE wants the admin credential by default', async (t) => {
  t.is((await fetch(`${rg.f.url}/NAMESPACE/`)).status, 401);
  const ok = await fetch(`${rg.f.url}/NAMESPACE/`, { headers: { Authorization: `Bearer ${ADMIN}` } });
  t.is(ok.status, 200, await ok.text());
});

test('config: /NAMESPACE is open on an AG and admin-only on an RG unless http.namespace_access says otherwise', (t) => {
  const ag = configFolder(t, 'AG');
  t.is(parseConfig({ ...ag.base, volume: { archive: true } }, ag.dir).http.namespace_access, 'open');
  const r = configFolder(t, 'RG');
  t.is(parseConfig(r.base, r.dir).http.namespace_access, 'admin');
  t.is(parseConfig({ ...r.base, http: { namespace_access: 'open' } }, r.dir).http.namespace_access, 'open');
  t.throws(() => parseConfig({ ...r.base, http: { namespace_access: 'everyone' } }, r.dir), { message: /http\.namespace_access/ });
});

// ---- item 6: the Host header (DNS rebinding) ----

test('a gateway listening on loopback refuses a request whose Host is not one of its names (403), whatever the route, and serves its own names', async (t) => {
  for (const g of [rg, ug]) {
    const port = g.f.port;
    for (const path of ['/PING', '/NAMESPACE/', '/metrics', `/FILES/?token=${UG_TEST_TOKEN}`]) {
      const r = await rawGet(g.f.url, path, { Host: `evil.example:${port}` });
      t.is(r.status, 403, `${path}: ${r.body.toString()}`);
      t.regex(r.body.toString(), /is not a name of this gateway/);
    }
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'LOCALHOST.']) {
      t.is((await rawGet(g.f.url, '/PING', { Host: host })).status, 200, host);
    }
  }
  t.is((await rawGet(rg.f.url, '/PING', { Host: 'rg.example' })).status, 200, 'a name from http.allowed_hosts');
  t.is((await rawGet(ug.f.url, '/PING', { Host: 'rg.example' })).status, 403, 'only the gateway that lists it');
});

// ---- item 2: slow clients ----

/** Opens a raw connection, writes `bytes`, then nothing; resolves with what came back once the gateway closed it. */
function stall(url: string, bytes: Buffer): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    let got = '';
    const socket = connect(Number(port), hostname, () => socket.write(bytes));
    socket.on('data', (d) => { got += d.toString('latin1'); });
    socket.on('close', () => resolve(got));
    socket.on('error', reject);
  });
}

test('a connection that stalls in its headers, or in a POST body, is answered 408 and closed (limits.header_timeout_ms, body_idle_timeout_ms)', async (t) => {
  const headers = await stall(rg.f.url, Buffer.from('POST / HTTP/1.1\r\nHost: localhost\r\nContent-Ty'));
  t.regex(headers, /^HTTP\/1\.1 408/);
  const control = signRequest(putChunksFields(fileRef(rg.f), [{ block_id: 0n, block_version: 1n, offset: 0n, size: BigInt(MiB), hash: randomBytes(32) }]), rg.f.ugKey);
  const { head, contentType } = postHead(control);
  const request = `POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${contentType}\r\nContent-Length: ${head.length + MiB}\r\n\r\n`;
  const body = await stall(rg.f.url, Buffer.concat([Buffer.from(request), head, Buffer.alloc(1000, 0x78)]));
  t.regex(body, /^HTTP\/1\.1 408/);
  t.regex(body, /body_idle_timeout_ms/);
  t.regex(body, /[Cc]onnection: close/);
});

// ---- item 7: refusals in the log ----

interface LogLine { level: number; msg: string; rid?: string; status?: number; reason?: string; method?: string; path?: string; err?: unknown }

test.serial('expected refusals are logged as one info line each with the reason, never as an error with a stack', async (t) => {
  const before = rg.gw.output().length;
  const marker = `marker-${randomBytes(4).toString('hex')}`;
  const bogus = await fetch(`${rg.f.url}/`, { method: 'POST', headers: { 'Content-Type': 'multipart/form-data; boundary=x', 'X-Request-Id': `${marker}-1` }, body: '--x\r\nContent-Disposition: form-data; name="control-plane"\r\n\r\n\xff\xff\r\n--x--\r\n' });
  t.is(bogus.status, 400);
  t.is((await fetch(`${rg.f.url}/`, { method: 'POST', headers: { 'Content-Type': 'text/plain', 'X-Request-Id': `${marker}-2` }, body: 'hello' })).status, 400);
  t.is((await fetch(`${rg.f.url}/DATA/1/../x.1.1/1.1`, { headers: { 'X-Request-Id': `${marker}-3` } })).status, 400);
  t.is((await fetch(`${rg.f.url}/NAMESPACE/`, { headers: { 'X-Request-Id': `${marker}-4` } })).status, 401);
  const unknown = signRequest(putChunksFields(fileRef(rg.f, { src_gateway_id: 999n, coordinator_id: 999n }), [{ block_id: 0n, block_version: 1n, offset: 0n, size: BigInt(MiB), hash: randomBytes(32) }]), rg.f.ugKey);
  const { head, contentType } = postHead(unknown);
  t.is((await streamingPost(rg.f.url, contentType, head, head.length + MiB, { holdAfter: head.length, headers: { 'X-Request-Id': `${marker}-5` } }).answer).status, 401);
  await waitFor('the request lines', async () => rg.gw.output().slice(before).split('\n').filter((l) => l.includes(marker)).length >= 5);
  const lines = rg.gw.output().slice(before).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
  t.deepEqual(lines.filter((l) => l.level >= 50), [], 'no error line');
  const requestLines = lines.filter((l) => l.msg === 'request' && l.rid?.startsWith(marker));
  t.is(requestLines.length, 5, JSON.stringify(requestLines));
  for (const l of requestLines) {
    t.is(l.level, 30, 'info');
    t.truthy(l.reason, `${l.method} ${l.path} says why`);
    t.is(l.err, undefined, 'no error object, no stack');
  }
  t.regex(requestLines.map((l) => l.reason).join('\n'), /malformed Request/);
  t.regex(requestLines.map((l) => l.reason).join('\n'), /unknown sender gateway 999/);
});
