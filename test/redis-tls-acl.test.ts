// sgw over TLS, as an ACL user with only what docs/redis.md grants: a replica gateway and a user
// gateway on a rediss:// URL whose CA comes from the config, a user that cannot reach other keys
// or administer Redis, and the refusals a wrong CA or a wrong password get: at once, saying why.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { CLI, cleanup, makeGatewayFolder, startGatewayProcess } from './support/gateway.js';
import { useTestRedis } from './support/redis.js';
import { makeTestCa, startTlsRedis, type TlsRedis } from './support/redis-topologies.js';
import { patternBytes } from './support/ug.js';
import { ugVolumePerFile } from './support/ug-per-file.js';

const run = promisify(execFile);
const DOCS = fileURLToPath(new URL('../../docs/redis.md', import.meta.url));
const PASSWORD = 'tls-acl-test-password';

/** The ACL line of docs/redis.md, with a password. */
function documentedAcl(): string[] {
  const line = readFileSync(DOCS, 'utf8').split('\n').find((l) => l.startsWith('ACL SETUSER sgw '));
  if (!line) throw new Error('docs/redis.md has no "ACL SETUSER sgw" line');
  return line.replace('>CHANGE-ME', `>${PASSWORD}`).split(/\s+/).slice(1);
}

let server: TlsRedis;
const url = () => `rediss://sgw:${PASSWORD}@127.0.0.1:${server.tlsPort}`;

function aclClient(): Redis {
  const client = new Redis(url(), { tls: { ca: readFileSync(server.ca.ca) }, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  return client;
}

useTestRedis(async () => {
  server = await startTlsRedis();
  await server.node.command('ACL', ...documentedAcl());
  return { config: { url: url(), tls: { ca: server.ca.ca } }, client: aclClient };
});

const vol = ugVolumePerFile({ rgs: 1 });

test.serial('over rediss:// as the documented ACL user, a UG writes, renames, reads and deletes through its replica', async (t) => {
  const { client } = vol.v;
  const data = patternBytes(200_000, 3);
  t.is((await client.put('/tls/a.bin', data)).status, 201);
  t.is((await client.mv('/tls/a.bin', '/tls/b.bin')).status, 200);
  const got = await client.get('/tls/b.bin');
  t.is(got.status, 200, got.body.toString());
  t.true(got.body.equals(data));
  t.is((await client.rm('/tls/b.bin')).status, 200);
  t.is((await client.stat('/tls/b.bin')).status, 404);
  const log = (await server.node.command('ACL', 'LOG')) as unknown[];
  t.deepEqual(log, [], 'sgw never needed anything the ACL denies');
});

test('sgw status reads the gateway over TLS as that user', async (t) => {
  const { stdout } = await run(process.execPath, [CLI, 'status', '--config', vol.v.ug.configFile, '--json'], { timeout: 60_000 });
  const status = JSON.parse(stdout) as { redis: string; actors: unknown[] };
  t.regex(status.redis, /^rediss:\/\/sgw:\*\*\*@127\.0\.0\.1:\d+/);
  t.false(stdout.includes(PASSWORD));
  t.true(status.actors.length > 0);
});

test('the ACL user reaches only sgw keys and channels, and cannot administer or flush Redis', async (t) => {
  const redis = aclClient();
  try {
    t.is(await redis.set('sgw:acl-test', '1'), 'OK');
    for (const [what, attempt] of [
      ['a key outside sgw:*', () => redis.set('other:key', '1')],
      ['FLUSHALL', () => redis.flushall()],
      ['FLUSHDB', () => redis.flushdb()],
      ['KEYS', () => redis.keys('*')],
      ['CONFIG SET', () => redis.config('SET', 'appendonly', 'no')],
      ['CLIENT LIST', () => redis.call('CLIENT', 'LIST')],
      ['ACL SETUSER', () => redis.call('ACL', 'SETUSER', 'sgw', '+@all')],
      ['SCRIPT FLUSH', () => redis.script('FLUSH')],
      ['FUNCTION', () => redis.call('FUNCTION', 'FLUSH')],
      ['a channel outside sgw:*', () => redis.publish('other', 'x')],
      ['a script touching a key outside sgw:*', () => redis.eval("return redis.call('GET', KEYS[1])", 1, 'other:key')],
    ] as const) {
      const err = await t.throwsAsync((attempt as () => Promise<unknown>)(), undefined, what);
      t.regex(err?.message ?? '', /NOPERM|no permissions/, what);
    }
  } finally {
    redis.disconnect();
  }
});

test('a server certificate the configured CA did not sign, or a wrong password, is refused at once with a message that says so', async (t) => {
  const stranger = makeTestCa('another-ca');
  for (const [redis, expected] of [
    [{ url: url(), tls: { ca: stranger.ca } }, /TLS certificate was refused \(SELF_SIGNED_CERT_IN_CHAIN.*check redis\.tls\.ca/],
    [{ url: url().replace(PASSWORD, 'wrong'), tls: { ca: server.ca.ca } }, /refused the credentials \(WRONGPASS/],
  ] as const) {
    const f = await makeGatewayFolder({ config: { redis } });
    const gw = startGatewayProcess(f.configFile);
    try {
      const code = await new Promise<number | null>((resolve) => gw.proc.once('exit', resolve));
      t.is(code, 1, gw.output());
      t.regex(gw.output(), expected);
      t.false(gw.output().includes(PASSWORD));
    } finally {
      await gw.stop();
      cleanup([f.dir]);
    }
  }
});

// Serial and last: after every other after hook, so the gateways stop while Redis still answers.
test.serial.after.always(() => server?.stop());
