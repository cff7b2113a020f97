// The UG's driver modes with the built-in drivers, through real processes: a UG needs no driver to
// be ready, the encrypting driver leaves only ciphertext on the replica (and files written before
// it are a 502 that says why), and the CDN driver's rewritten URLs are the ones fetched
// (a small recording proxy stands in for the CDN).
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { freePort } from '../actors/supervisor/embedded-redis.js';
import { testRedis } from './support/redis.js';
import { startUgVolume, type RunningVolume } from './support/ug.js';
import { CLI, liveActors, waitFor } from './support/gateway.js';
import { promisify } from 'node:util';

const run = promisify(execFile);

const BS = 16384;
const driverOf = (name: string) => `export * from ${JSON.stringify(fileURLToPath(new URL(`../drivers/builtin/${name}/driver.js`, import.meta.url)))};\n`;

let redis: Redis;
const volumes: RunningVolume[] = [];
const servers: Server[] = [];
test.before(async () => {
  redis = new Redis((await testRedis()).url);
});
test.after.always(async () => {
  await Promise.all(volumes.map((v) => v.stop()));
  servers.forEach((s) => s.close());
  redis?.disconnect();
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name));
}

test('with the encrypting driver the replica stores only ciphertext, and reads still return the file', async (t) => {
  const v = await startUgVolume(redis, {
    rgs: 1, blockSize: BS, ugDriverSource: driverOf('encrypt'), ugSecrets: { KEY: randomBytes(32).toString('hex') },
    ugRoles: ['driver:serialize', 'driver:deserialize'],
  });
  volumes.push(v);
  const marker = Buffer.from('PLAINTEXT-MARKER ');
  const data = Buffer.concat(Array.from({ length: Math.ceil((3 * BS + 10) / marker.length) }, () => marker)).subarray(0, 3 * BS + 10);
  const put = await v.client.put('/secret/s.txt', data);
  t.is(put.status, 201, put.body.toString());
  const got = await v.client.get('/secret/s.txt');
  t.is(got.status, 200, got.body.toString());
  t.true(got.body.equals(data), 'the UG decrypts what it reads');
  const stored = filesUnder(v.rgs[0]!.storageDir);
  t.is(stored.length, 4 + 1, 'four blocks and a manifest');
  for (const p of stored) {
    const bytes = readFileSync(p);
    t.false(bytes.includes(marker.subarray(0, 9)), `${p} holds no plaintext`);
  }
  const range = await v.client.get('/secret/s.txt', { Range: `bytes=${BS - 3}-${BS + 3}` });
  t.true(range.body.equals(data.subarray(BS - 3, BS + 4)));
});

test('a UG with no driver at all is ready and prints its summary; turning on the encrypting driver then makes earlier files a 502 that says why', async (t) => {
  const v = await startUgVolume(redis, { rgs: 1, blockSize: BS, ugNoDriver: true }); // waits for /ready 200
  volumes.push(v);
  t.regex(v.ugProc.output(), /sgw: UG gateway \d+[\s\S]*stop with/, 'sgw start printed its summary');
  const ready = (await (await fetch(`${v.ug.url}/ready`)).json()) as { ready: boolean; missing: string[] };
  t.deepEqual(ready, { ...ready, ready: true, missing: [] });
  const plain = Buffer.from('written before the encrypting driver was turned on');
  t.is((await v.client.put('/before.txt', plain)).status, 201);

  // The encrypting driver, published to the running UG, as docs/ug.md shows.
  writeFileSync(join(v.ug.dir, 'driver-secrets.json'), JSON.stringify({ KEY: randomBytes(32).toString('hex') }));
  mkdirSync(join(v.ug.dir, 'ug-driver'));
  writeFileSync(join(v.ug.dir, 'ug-driver', 'driver.mjs'), driverOf('encrypt'));
  await run(process.execPath, [CLI, 'secrets', 'seal', '--config', v.ug.configFile, '--in', join(v.ug.dir, 'driver-secrets.json'), '--out', join(v.ug.dir, 'ug-driver', 'secrets.sealed.json')]);
  await run(process.execPath, [CLI, 'driver', 'publish', '--config', v.ug.configFile, '--dir', join(v.ug.dir, 'ug-driver')]);
  await waitFor('the UG\'s deserialize actor', async () => (await liveActors(redis, v.ug.gatewayKey, 'driver:deserialize')).length > 0);
  await waitFor('the UG ready with its new driver', async () => (await fetch(`${v.ug.url}/ready`)).status === 200);

  const after = Buffer.from('written through the encrypting driver');
  t.is((await v.client.put('/after.txt', after)).status, 201);
  t.true((await v.client.get('/after.txt')).body.equals(after), 'files written since read back');
  const before = await v.client.get('/before.txt');
  t.is(before.status, 502);
  t.regex(before.body.toString(), /deserialize refused the chunk \(EBADMSG\): it does not decrypt .*Files written before that driver or its key was published stay unreadable/);
});

test('with the CDN driver every manifest and block is fetched through the rewritten URL', async (t) => {
  const port = await freePort();
  const seen: string[] = [];
  // The CDN: /{host:port}/{path} → GET http://{host:port}/{path}, recorded.
  const proxy = createServer(async (req, res) => {
    seen.push(req.url ?? '');
    const [, origin, ...rest] = (req.url ?? '').split('/');
    try {
      const r = await fetch(`http://${origin}/${rest.join('/')}`);
      res.writeHead(r.status, { 'Content-Type': 'application/octet-stream' });
      res.end(Buffer.from(await r.arrayBuffer()));
    } catch {
      res.writeHead(502).end();
    }
  });
  servers.push(proxy);
  await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
  const v = await startUgVolume(redis, {
    rgs: 1, blockSize: BS, ugDriverSource: driverOf('cdn'), ugDriverConfig: { CDN_PREFIX: `127.0.0.1:${port}` }, ugRoles: ['driver:cdn_url'],
  });
  volumes.push(v);
  const data = randomBytes(2 * BS + 1);
  t.is((await v.client.put('/cdn/c.bin', data)).status, 201);
  t.deepEqual(seen, [], 'writes go straight to the replicas');
  const got = await v.client.get('/cdn/c.bin');
  t.is(got.status, 200, got.body.toString());
  t.true(got.body.equals(data));
  const rgHost = new URL(v.rgs[0]!.url).host;
  t.is(seen.length, 1 + 3, 'one manifest and three blocks');
  for (const u of seen) t.true(u.startsWith(`/${rgHost}/DATA/${v.ug.volumeId}/cdn/c.bin.`), u);
  t.is(seen.filter((u) => /\/manifest\.\d+\.\d+$/.test(u)).length, 1);

  // The CDN is down: the read fails with a clear error instead of going around it.
  proxy.close();
  proxy.closeAllConnections();
  t.is((await v.client.put('/cdn/d.bin', data)).status, 201);
  const down = await v.client.get('/cdn/d.bin');
  t.is(down.status, 502);
  t.regex(down.body.toString(), new RegExp(`manifest of /cdn/d.bin.*127\\.0\\.0\\.1:${port}`));
});
