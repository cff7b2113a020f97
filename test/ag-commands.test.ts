// An AG driver without refresh() that hands the gateway bad commands: each gets the negative errno
// of WIRE.md and changes nothing, the crawl still publishes the good ones, REFRESH answers ENOSYS
// in a signed reply, and its serialize() sees every manifest and block that leaves. Also: the configurations a volume refuses (one AG, archive only).
import { createPublicKey } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { Redis } from 'ioredis';
import { ConfigError, parseConfig } from '../proto/config/config.js';
import { claimAcquisitionGateway } from '../queues/namespace/namespace.js';
import { Errno } from '../drivers/errno.js';
import { sendControlPlane } from '../http/rg-client.js';
import { ManifestCodec, ReplyCodec, RequestType } from '../proto/messages.js';
import { liveActors, rawGet, waitFor } from './support/gateway.js';
import { gatewayPerFile } from './support/gateway-per-file.js';
import { stat, verifyIndependently } from './support/ag.js';

const DRIVER = `
import { writeFileSync } from 'node:fs';
import { crawl, make_metadata_command as cmd } from 'sgw';

export async function next_dataset(config) {
  const rcs = {};
  const run = async (name, c) => { rcs[name] = await crawl(c); };
  await run('mkdir', cmd('create', 'directory', 0o755, null, '/d'));
  await run('create', cmd('create', 'file', 0o644, 10, '/d/f'));
  await run('create again', cmd('create', 'file', 0o644, 99, '/d/f'));
  await run('update missing', cmd('update', 'file', 0o644, 1, '/d/nope'));
  await run('missing parent', cmd('create', 'file', 0o644, 1, '/nodir/x'));
  await run('delete missing', cmd('delete', 'file', null, null, '/nope'));
  await run('null', null);
  await run('unknown cmd', { cmd: 'explode', ftype: 'file', mode: 1, size: 1, path: '/d/g' });
  await run('relative path', { cmd: 'create', ftype: 'file', mode: 0o644, size: 1, path: 'd/g' });
  await run('dot-dot path', { cmd: 'create', ftype: 'file', mode: 0o644, size: 1, path: '/d/../g' });
  await run('non-empty directory', cmd('delete', 'directory', null, null, '/d'));
  await run('finish', cmd('finish', null, null, null, null));
  writeFileSync(config.OUT, JSON.stringify(rcs));
  return false; // done: the gateway stops calling
}

export function read(request, chunk_fd) {
  chunk_fd.write(Buffer.alloc(Number(request.len), 1));
  return 0;
}

// Marks what leaves the gateway, so the test can see manifests and blocks went through it.
export function serialize(request, chunk) {
  return Buffer.concat([Buffer.from('SER:'), chunk]);
}
`;

// The driver's config names the file where it reports what crawl() answered.
const g = gatewayPerFile({ type: 'AG', driverSource: DRIVER, driverConfig: {} }, ['driver:read', 'driver:serialize', 'crawl'], (f) => {
  writeFileSync(join(f.dir, 'driver', 'config.json'), JSON.stringify({ OUT: join(f.dir, 'crawl-answers.json') }));
});

test('bad commands get their errno and change nothing; good ones are published', async (t) => {
  const out = join(g.f.dir, 'crawl-answers.json');
  await waitFor('the driver to finish its crawl', async () => existsSync(out));
  t.deepEqual(JSON.parse(readFileSync(out, 'utf8')), {
    mkdir: 0, create: 0, 'create again': -Errno.EEXIST, 'update missing': -Errno.ENOENT, 'missing parent': -Errno.ENOENT,
    'delete missing': -Errno.ENOENT, null: -Errno.EINVAL, 'unknown cmd': -Errno.EINVAL, 'relative path': -Errno.EINVAL,
    'dot-dot path': -Errno.EINVAL, 'non-empty directory': -Errno.ENOTEMPTY, finish: 1,
  });
  t.is((await stat(g.f.url, '/d/f'))!.size, 10, 'the second create changed nothing');
  for (const p of ['/d/nope', '/nodir', '/nodir/x', '/d/g', '/g']) t.is(await stat(g.f.url, p), null, p);
  t.truthy(await stat(g.f.url, '/d'));
  t.is((await liveActors(g.redis, g.f.gatewayKey, 'crawl')).length, 1, 'the crawl actor stays up after the crawl is done');
});

test('a driver without refresh still crawls, and REFRESH answers ENOSYS', async (t) => {
  await waitFor('the crawl', async () => stat(g.f.url, '/d/f'));
  const r = await sendControlPlane(g.f.url, {
    volume_version: 1n, cert_version: 1n, volume_id: g.f.volumeId, coordinator_id: g.f.gatewayId, file_id: 0n, file_version: 0n,
    fs_path: '/d/f', user_id: 7n, src_gateway_id: g.f.ugId, request_type: RequestType.REFRESH,
  }, g.f.ugKey, null);
  t.is(r.status, 200);
  t.is(ReplyCodec.decode(r.body).error_code, -Errno.ENOSYS);
});

test('manifests and signed blocks go through serialize on their way out', async (t) => {
  const e = (await waitFor('the crawl', async () => stat(g.f.url, '/d/f'), 20_000))!;
  const base = `/DATA/${g.f.volumeId}/d/f.${e.file_id}.${e.file_version}`;
  const m = await rawGet(g.f.url, `${base}/manifest.${e.mtime.sec}.${e.mtime.nsec}`);
  t.is(m.status, 200);
  t.is(m.body.subarray(0, 4).toString(), 'SER:');
  const manifest = ManifestCodec.decode(m.body.subarray(4));
  t.true(verifyIndependently(m.body.subarray(4), 10, createPublicKey(g.f.rgKey)));
  t.is(manifest.blocks!.length, 1);
  const b = await rawGet(g.f.url, `${base}/0.${manifest.blocks![0]!.block_version}`);
  t.is(b.status, 200);
  t.is(b.body.subarray(0, 4).toString(), 'SER:');
  const len = b.body.readUInt32BE(4);
  t.true(b.body.subarray(8 + len).equals(Buffer.alloc(10, 1)), 'the 10 bytes read() wrote follow the signed header');
});

test('a volume takes one acquisition gateway, and only when it is an archive', async (t) => {
  const raw = JSON.parse(readFileSync(g.f.configFile, 'utf8')) as { gateway: Record<string, unknown>; volume: Record<string, unknown> };
  const parse = (over: (r: typeof raw) => void) => {
    const copy = structuredClone(raw);
    over(copy);
    return parseConfig(copy, g.f.dir);
  };
  t.throws(() => parse((r) => { r.volume.archive = false; }), { instanceOf: ConfigError, message: /archive/ });
  t.throws(() => parse((r) => {
    (r.volume.gateways as object[]).push({ id: '999', type: 'AG', user_id: '7', public_key: 'keys/ug.pub.pem' });
  }), { instanceOf: ConfigError, message: /at most one/ });
  const other = parse((r) => { r.gateway.id = '999'; });
  const redis = new Redis(g.f.redisUrl);
  try {
    await t.throwsAsync(claimAcquisitionGateway(redis, other), { instanceOf: ConfigError, message: new RegExp(`already has acquisition gateway ${g.f.gatewayId}`) });
    await t.notThrowsAsync(claimAcquisitionGateway(redis, parse(() => undefined)), 'the AG itself may claim again');
  } finally {
    redis.disconnect();
  }
});
