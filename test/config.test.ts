// The configuration file: its schema's defaults, the messages of its refusals, environment
// overrides, and the key table of docs/configuration.md, which must be the one the schema writes.
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, parseConfig } from '../proto/config/config.js';
import { configKeysMarkdown, BEGIN_MARKER, END_MARKER } from '../proto/config/docs.js';
import { configFolder } from './support/config-folder.js';
import { ALL_REPLICAS } from '../queues/replicas.js';

const DOCS = fileURLToPath(new URL('../../docs/configuration.md', import.meta.url));

test('docs/configuration.md holds the key table the schema generates (run `npm run docs:config` after changing a key)', (t) => {
  const page = readFileSync(DOCS, 'utf8');
  const start = page.indexOf(BEGIN_MARKER);
  const end = page.indexOf(END_MARKER);
  t.true(start >= 0 && end > start, 'the page has the generated section');
  t.is(page.slice(start, end + END_MARKER.length), configKeysMarkdown());
});

test('a minimal config gets every documented default', (t) => {
  const { dir, base } = configFolder(t);
  const c = parseConfig(base, dir);
  t.is(c.gateway.block_size, 65536);
  t.is(c.gateway.host, '127.0.0.1');
  t.is(c.gateway.port, 8080);
  t.is(c.volume.version, 1n);
  t.is(c.volume.gateways.size, 0);
  t.is(c.redis, null);
  t.is(c.driver, null);
  t.is(c.cache.dir, `${dir}/cache`);
  t.is(c.cache.max_bytes, 1 << 30);
  t.is(c.state.dir, `${dir}/state`);
  t.is(c.state.appendfsync, 'always');
  t.is(c.limits.request_timeout_ms, 30_000);
  t.is(c.limits.call_timeout_ms, 10_000);
  t.is(c.actors.count.read, 1);
  t.is(c.actors.python_processes, 2);
  t.is(c.actors.activation, 'fork');
  t.is(c.log.level, 'info');
  t.true(c.metrics.enabled);
});

test('an unknown key is refused with its full name, so a typo never passes silently', (t) => {
  const { dir, base } = configFolder(t);
  t.throws(() => parseConfig({ ...base, limits: { max_upload_byte: 5 } }, dir), { instanceOf: ConfigError, message: /^limits: unknown key "max_upload_byte"$/m });
  t.throws(() => parseConfig({ ...base, cahce: {} }, dir), { instanceOf: ConfigError, message: /config: unknown key "cahce"/ });
});

test('every problem is named by its key, one line each', (t) => {
  const { dir, base } = configFolder(t);
  const err = t.throws(() => parseConfig({ ...base, gateway: { ...base.gateway, port: 'eighty' }, limits: { call_timeout_ms: 3 }, log: { level: 'loud' } }, dir), { instanceOf: ConfigError });
  const lines = err!.message.split('\n');
  t.true(lines.includes('gateway.port: must be an integer'), err!.message);
  t.true(lines.includes('limits.call_timeout_ms: must be an integer ≥ 50'), err!.message);
  t.true(lines.some((l) => l.startsWith('log.level: must be one of "trace", "debug"')), err!.message);
});

test('64-bit ids: strings for large values, and numbers beyond 2^53 are refused rather than rounded', (t) => {
  const { dir, base } = configFolder(t);
  const big = parseConfig({ ...base, gateway: { ...base.gateway, id: '18446744073709551615' } }, dir);
  t.is(big.gateway.id, 18446744073709551615n);
  t.is(big.gateway.key, 'rg.18446744073709551615');
  t.throws(() => parseConfig({ ...base, gateway: { ...base.gateway, id: 2 ** 60 } }, dir), { message: /gateway\.id: .* write it as a string/ });
  t.throws(() => parseConfig({ ...base, gateway: { ...base.gateway, id: '18446744073709551616' } }, dir), { message: /gateway\.id: .*out of range/ });
  t.throws(() => parseConfig({ ...base, gateway: { ...base.gateway, id: '0x10' } }, dir), { message: /gateway\.id: must be an integer/ });
});

test('environment variables override their keys, and an empty one counts as unset', (t) => {
  const { dir, base } = configFolder(t);
  const c = parseConfig({ ...base, redis: 'redis://file:1' }, dir, { SGW_PORT: '9001', SGW_REDIS_URL: 'redis://env:2', SGW_LOG_LEVEL: 'debug', SGW_CACHE_DIR: '/tmp/x', SGW_STATE_DIR: '/tmp/y' });
  t.is(c.gateway.port, 9001);
  t.deepEqual(c.redis, { kind: 'single', url: 'redis://env:2', tls: null });
  t.is(c.log.level, 'debug');
  t.is(c.cache.dir, '/tmp/x');
  t.is(c.state.dir, '/tmp/y');
  t.is(parseConfig({ ...base, redis: 'redis://file:1' }, dir, { SGW_REDIS_URL: '' }).redis, null);
  t.throws(() => parseConfig(base, dir, { SGW_PORT: 'x' }), { message: /gateway\.port/ });
});

test('the private Redis flushes its append-only file every second or before every answer, nothing else', (t) => {
  const { dir, base } = configFolder(t);
  t.is(parseConfig({ ...base, state: { appendfsync: 'always' } }, dir).state.appendfsync, 'always');
  t.throws(() => parseConfig({ ...base, state: { appendfsync: 'no' } }, dir), { message: /^state\.appendfsync: must be one of "everysec", "always"$/m });
});

test('call_timeout_ms is capped by request_timeout_ms', (t) => {
  const { dir, base } = configFolder(t);
  t.is(parseConfig({ ...base, limits: { request_timeout_ms: 2000, call_timeout_ms: 5000 } }, dir).limits.call_timeout_ms, 2000);
});

test('redis: a URL, or an object for TLS files, Sentinel or Cluster; files relative to the config; SGW_REDIS_URL replaces any of them', (t) => {
  const { dir, base } = configFolder(t);
  writeFileSync(join(dir, 'ca.pem'), 'the CA');
  t.deepEqual(parseConfig({ ...base, redis: 'rediss://u:p@db.example:6380/2' }, dir).redis, { kind: 'single', url: 'rediss://u:p@db.example:6380/2', tls: null });
  t.deepEqual(parseConfig({ ...base, redis: { url: 'rediss://db.example:6380', tls: { ca: 'ca.pem' } } }, dir).redis,
    { kind: 'single', url: 'rediss://db.example:6380', tls: { ca: Buffer.from('the CA'), cert: null, key: null } });
  const sentinel = { sentinels: ['10.0.0.1:26379', '[::1]:26380'], name: 'mymaster', password: 'pw', sentinel_password: 'spw' };
  t.deepEqual(parseConfig({ ...base, redis: sentinel }, dir).redis, {
    kind: 'sentinel', sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: '::1', port: 26380 }], name: 'mymaster',
    user: null, password: 'pw', sentinelPassword: 'spw', tls: null,
  });
  t.deepEqual(parseConfig({ ...base, redis: { cluster: ['n1:7000'], user: 'sgw', password: 'pw' } }, dir).redis,
    { kind: 'cluster', nodes: [{ host: 'n1', port: 7000 }], user: 'sgw', password: 'pw', tls: null });
  t.deepEqual(parseConfig({ ...base, redis: sentinel }, dir, { SGW_REDIS_URL: 'redis://env:2' }).redis, { kind: 'single', url: 'redis://env:2', tls: null });
  t.is(parseConfig(base, dir).replication.acks, ALL_REPLICAS, 'by default every replica the master has confirms');
  t.is(parseConfig({ ...base, replication: { acks: 1 } }, dir).replication.acks, 1);
  t.throws(() => parseConfig({ ...base, replication: { acks: 'most' } }, dir), { instanceOf: ConfigError, message: /replication\.acks/ });
});

test('redis: a form that is ambiguous, incomplete or unreadable is refused by key', (t) => {
  const { dir, base } = configFolder(t);
  const refused = (redis: unknown, message: RegExp) => t.throws(() => parseConfig({ ...base, redis }, dir), { instanceOf: ConfigError, message });
  refused({ url: 'redis://a:1', cluster: ['b:2'] }, /^redis: give exactly one of "url", "sentinels" or "cluster"$/m);
  refused({ sentinels: ['a:1'] }, /^redis\.name: the master group name is needed with "sentinels"$/m);
  refused({ cluster: ['no-port'] }, /^redis\.cluster\.0: must be "host:port"$/m);
  refused('http://a:1', /^redis\.url: must start with redis:\/\/ or rediss:\/\/$/m);
  refused({ url: 'redis://a:1', password: 'x' }, /a URL carries its own user and password/);
  refused({ url: 'rediss://a:1', tls: { ca: 'missing.pem' } }, /^redis\.tls\.ca: cannot read .*missing\.pem/m);
  refused({ url: 'redis://a:1', tsl: {} }, /unknown key "tsl"/);
});
