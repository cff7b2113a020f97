// Pure parts of the user gateway: Range parsing, the CLI's progress line, the CDN rewrite and
// the encrypting driver's sealing.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { ConfigError, parseConfig } from '../proto/config/config.js';
import { configFolder } from './support/config-folder.js';
import { TransferProgress } from '../actors/cli/progress.js';
import { parseRange } from '../http/ug-api.js';
import { HttpError } from '../http/errors.js';
import { cdn_url } from '../drivers/builtin/cdn/driver.js';
import * as encrypt from '../drivers/builtin/encrypt/driver.js';
import { DriverRequestType, IoType, type DriverRequest } from '../proto/messages.js';

test('parseRange reads one bytes= range and refuses what it cannot serve with 416', (t) => {
  t.is(parseRange(undefined, 10), null);
  t.deepEqual(parseRange('bytes=0-0', 10), [0, 1]);
  t.deepEqual(parseRange('bytes=2-', 10), [2, 10]);
  t.deepEqual(parseRange('bytes=-3', 10), [7, 10]);
  t.deepEqual(parseRange('bytes=-30', 10), [0, 10]);
  t.deepEqual(parseRange('bytes=5-100', 10), [5, 10]);
  for (const bad of ['bytes=10-', 'bytes=5-4', 'bytes=-0', 'bytes=-', 'items=0-1', 'bytes=0-1,3-4']) {
    const err = t.throws(() => parseRange(bad, 10), { instanceOf: HttpError }, bad);
    t.is(err?.status, 416, bad);
    t.is(err?.headers['Content-Range'], 'bytes */10');
  }
});

function fakeStream(isTTY: boolean): { stream: { isTTY: boolean; write(s: string): boolean }; written: () => string } {
  let out = '';
  return { stream: { isTTY, write: (s: string) => { out += s; return true; } }, written: () => out };
}

test('the progress line of a transfer shows bytes, percent and rate on a terminal, and nothing in a pipe', (t) => {
  let clock = 0;
  let tick = () => {};
  const opts = { now: () => clock, every: (fn: () => void) => { tick = fn; return { stop() {} }; } };
  const tty = fakeStream(true);
  const p = new TransferProgress('put /a', 4 * 1024 * 1024, tty.stream, opts);
  clock = 2000;
  p.add(2 * 1024 * 1024);
  tick();
  t.regex(tty.written(), /put \/a \(2\.0 MiB \/ 4\.0 MiB, 50%, 1\.0 MB\/s\) 2\.0s$/);
  p.finish();
  t.true(tty.written().endsWith('\r\x1b[K'), 'the line is erased at the end');
  const pipe = fakeStream(false);
  const q = new TransferProgress('get /b', null, pipe.stream, opts);
  q.add(5);
  tick();
  q.finish();
  t.is(pipe.written(), '');
});

const req = (over: Partial<DriverRequest> = {}): DriverRequest => ({
  volume_id: 3n, user_id: 7n, coordinator_id: 10n, file_id: 0xABCn, file_version: 5n, request_type: DriverRequestType.BLOCK,
  path: '/a', io_type: IoType.WRITE, io_context: 1n, block_size: 4096n, block_id: 2n, block_version: -9n, ...over,
});

test('the CDN driver rewrites to {scheme}://{CDN_PREFIX}/{host:port}{path}', (t) => {
  const config = { CDN_PREFIX: 'cdn.example.net' };
  t.is(cdn_url(req(), 'http://rg.example:8080/DATA/3/a.ABC.5/2.-9', config), 'http://cdn.example.net/rg.example:8080/DATA/3/a.ABC.5/2.-9');
  t.is(cdn_url(req(), 'https://rg.example/DATA/3/a.ABC.5/manifest.1.2', { CDN_PREFIX: 'https://cdn.example.net/' }), 'https://cdn.example.net/rg.example/DATA/3/a.ABC.5/manifest.1.2');
  t.is(cdn_url(req(), 'not a url', config), undefined);
});

test('the encrypting driver seals with AES-256-GCM bound to the chunk it belongs to', (t) => {
  t.false(encrypt.driver_init({}, { KEY: 'short' }));
  t.true(encrypt.driver_init({}, { KEY: randomBytes(32).toString('hex') }));
  const plain = Buffer.from('attack at dawn');
  const sealed = encrypt.serialize(req(), plain) as Buffer;
  t.false(sealed.includes(plain));
  t.is(sealed.length, plain.length + 12 + 16);
  t.deepEqual(encrypt.deserialize(req(), sealed), plain);
  t.is(encrypt.deserialize(req({ block_id: 3n }), sealed), -74, 'another block\'s address does not open it (EBADMSG)');
  const flipped = Buffer.from(sealed);
  flipped[13]! ^= 1;
  t.is(encrypt.deserialize(req(), flipped), -74, 'an altered chunk does not open');
});

test('config: a UG needs its application token (ug.token or SGW_UG_TOKEN); the ug section is checked', (t) => {
  const { dir, base } = configFolder(t, 'UG', 10);
  t.throws(() => parseConfig(base, dir), { instanceOf: ConfigError, message: /ug\.token or SGW_UG_TOKEN/ });
  const c = parseConfig({ ...base, ug: { token: 'file' } }, dir);
  t.deepEqual(c.ug, { token: 'file', parallel_blocks: 8, batch_bytes: 4 << 20, posts_in_flight: 4 });
  t.is(parseConfig({ ...base, ug: { token: 'file' } }, dir, { SGW_UG_TOKEN: 'env' }).ug.token, 'env');
  t.throws(() => parseConfig({ ...base, ug: { token: 'x', parallel_blocks: 0 } }, dir), { instanceOf: ConfigError, message: /ug\.parallel_blocks/ });
  t.is(parseConfig({ ...base, gateway: { ...base.gateway, type: 'RG' } }, dir).ug.token, null, 'other gateways need none');
});
