// What a replica gateway refuses, as a specification: every bad POST or GET gets its status from
// WIRE.md ("Status codes of the original" plus 413 and replay protection from issue 2) with a
// message saying what is wrong, and NOTHING of a refused POST reaches the back-end: afterwards the
// storage folder holds no file of that file id and a GET of each chunk answers 404.
// This file: data-plane GET URLs (400).
// One real gateway (sgw start: supervisor, http actor, driver actors, disk driver) for the file;
// each test works on its own random file id, so the tests may run concurrently.
// Helpers and the gateway's volume configuration: support/rejections.ts.
import test from 'ava';
import { rawGet } from './support/gateway.js';
import { rejectionGateway, why } from './support/rejections.js';

const gw = rejectionGateway();

// ---- data-plane URLs: 400 ----

test('a GET whose URL climbs out with "..", raw or percent-encoded, is refused with 400', async (t) => {
  for (const path of [
    '/DATA/3/a/../b.1F.1/0.0',
    '/DATA/3/../../../etc/passwd.1F.1/0.0',
    '/DATA/3/a/..',
    '/DATA/3/a/%2e%2e/b.1F.1/0.0',
    '/DATA/3/a/%2E%2E/b.1F.1/0.0',
    '/DATA/3/a/.%2e/b.1F.1/0.0',
    '/DATA/3/a/b.1F.1/%2e%2e',
    '/DATA/3/a/..%2Fb.1F.1/0.0',
  ]) {
    const res = await rawGet(gw.f.url, path);
    t.is(res.status, 400, `${path}: ${why(res)}`);
    t.regex(res.body.toString(), /bad data URL/, path);
  }
});

test('a GET with a non-hex file id or an out-of-range number is refused with 400 naming the bad part', async (t) => {
  const cases: [string, RegExp][] = [
    ['/DATA/3/x.ZZ.1/0.0', /file id "ZZ" is not hexadecimal/],
    ['/DATA/3/x.0x1F.1/0.0', /not hexadecimal/],
    ['/DATA/3/x.1FFFFFFFFFFFFFFFF.1/0.0', /longer than 16 hex digits/],
    ['/DATA/3/x.1F.1/18446744073709551616.0', /block id .* out of range/],
    ['/DATA/3/x.1F.1/0.9223372036854775808', /block version .* out of range/],
    ['/DATA/3/x.1F.9223372036854775808/0.0', /file version .* out of range/],
    ['/DATA/18446744073709551616/x.1F.1/0.0', /volume id .* out of range/],
    ['/DATA/3/x.1F.1/manifest.1.1000000000', /mtime_nsec/],
    ['/DATA/3/x.1F.1/-1.0', /block id/],
  ];
  for (const [path, message] of cases) {
    const res = await rawGet(gw.f.url, path);
    t.is(res.status, 400, `${path}: ${why(res)}`);
    t.regex(res.body.toString(), message, path);
  }
});
