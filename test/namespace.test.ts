// The volume namespace in a real Redis: the errno of every refused command, that a refused
// command changes nothing, paging, and fencing by the crawl lease.
import test from 'ava';
import { Redis } from 'ioredis';
import { Lease } from '../actors/crawl/lease.js';
import { Namespace, UNCHANGED, checkPath } from '../queues/namespace/namespace.js';
import { checkMetadataCommand, Errno, make_metadata_command, type MetadataCommand } from '../drivers/helpers.js';
import { testRedis } from './support/redis.js';
import { keys } from '../queues/names.js';

let redis: Redis;
let volume = 1000n;
test.before(async () => {
  redis = new Redis((await testRedis()).url);
});
test.after.always(() => redis?.disconnect());

/** A namespace of its own per test (volumes are the namespace's key). */
const fresh = () => new Namespace(redis, volume++);
const cmd = (c: string, ftype: string | null, path: string, size: number | null = 0, mode: number | null = 0o644): MetadataCommand =>
  make_metadata_command(c, ftype, mode, size, path)!;

/** Everything in the namespace's keys, to show that a refused command changed nothing. */
async function dump(ns: Namespace): Promise<string> {
  const ks = (await redis.keys(`sgw:{vol.${ns.volumeId}}:*`)).sort();
  const parts = await Promise.all(ks.map(async (k) => `${k}=${JSON.stringify((await redis.type(k)) === 'hash' ? await redis.hgetall(k) : await redis.zrange(k, '0', '-1'))}`));
  return parts.join('\n');
}

test('create, stat, update and delete follow the errno rules of WIRE.md', async (t) => {
  const ns = fresh();
  t.is(await ns.apply(cmd('create', 'directory', '/d', null, 0o755), 5n, null), 0);
  t.is(await ns.apply(cmd('create', 'file', '/d/f', 10), 5n, null), 0);
  const f = (await ns.stat('/d/f'))!;
  t.is(f.type, 'file');
  t.is(f.size, 10);
  t.is(f.coordinator_id, 5n);
  t.is((await ns.stat('/d'))!.size, 4096);

  const before = await dump(ns);
  t.is(await ns.apply(cmd('create', 'file', '/d/f', 3), 5n, null), -Errno.EEXIST, 'create of an existing entry');
  t.is(await ns.apply(cmd('create', 'file', '/missing/f', 3), 5n, null), -Errno.ENOENT, 'missing parent');
  t.is(await ns.apply(cmd('create', 'file', '/d/f/g', 3), 5n, null), -Errno.ENOTDIR, 'parent is a file');
  t.is(await ns.apply(cmd('update', 'file', '/d/nope', 3), 5n, null), -Errno.ENOENT, 'update of a missing entry');
  t.is(await ns.apply(cmd('delete', 'file', '/d/nope', null, null), 5n, null), -Errno.ENOENT, 'delete of a missing entry');
  t.is(await ns.apply(cmd('delete', 'directory', '/d', null, null), 5n, null), -Errno.ENOTEMPTY, 'a directory with children');
  t.is(await ns.apply(cmd('update', 'directory', '/d/f', null), 5n, null), -Errno.ENOTDIR, 'type change');
  t.is(await ns.apply(cmd('create', 'directory', '/', null, 0o755), 5n, null), -Errno.EEXIST, 'the root always exists');
  t.is(await ns.apply({ ...cmd('create', 'file', '/x'), path: '/a/../x' }, 5n, null), -Errno.EINVAL, 'a ".." path');
  t.is(await dump(ns), before, 'refused commands changed nothing');

  t.is(await ns.apply(cmd('put', 'file', '/d/f', 10), 5n, null), UNCHANGED, 'put of the same description');
  t.is((await ns.stat('/d/f'))!.file_version, f.file_version);
  t.is(await ns.apply(cmd('update', 'file', '/d/f', 20), 5n, null), 0);
  const g = (await ns.stat('/d/f'))!;
  t.is(g.size, 20);
  t.is(g.file_id, f.file_id, 'an update keeps the file id');
  t.not(g.file_version, f.file_version, 'and gives a new version');
  t.is(await ns.apply(cmd('delete', 'file', '/d/f', null, null), 5n, null), 0);
  t.is(await ns.stat('/d/f'), null);
  t.is(await ns.apply(cmd('delete', 'directory', '/d', null, null), 5n, null), 0);
  t.deepEqual((await ns.list('/', null, 10)).entries, []);
  t.is(await ns.apply(cmd('finish', null, ''), 5n, null), 1);
});

test('listing is in name order and paged', async (t) => {
  const ns = fresh();
  const names = Array.from({ length: 25 }, (_, i) => `n${String(i).padStart(2, '0')}`);
  for (const n of [...names].reverse()) t.is(await ns.apply(cmd('create', 'file', `/${n}`, 1), 5n, null), 0);
  const seen: string[] = [];
  let after: string | null = null;
  let pages = 0;
  do {
    const page: Awaited<ReturnType<Namespace['list']>> = await ns.list('/', after, 10);
    seen.push(...page.entries.map((e) => e.path));
    after = page.next;
    pages++;
  } while (after !== null);
  t.is(pages, 3);
  t.deepEqual(seen, names.map((n) => `/${n}`));
});

test('a write fenced by a lease it no longer holds is refused with ESTALE', async (t) => {
  const ns = fresh();
  const key = keys.crawlLease(ns.volumeId, 'ag.1');
  const a = new Lease(redis, key, 'a', 5000);
  const b = new Lease(redis, key, 'b', 5000);
  t.true(await a.acquire());
  t.false(await b.acquire(), 'one holder at a time');
  t.is(await ns.apply(cmd('create', 'file', '/x', 1), 5n, { leaseKey: key, token: 'a' }), 0);
  await a.release();
  t.true(await b.acquire());
  t.is(await ns.apply(cmd('create', 'file', '/y', 1), 5n, { leaseKey: key, token: 'a' }), -Errno.ESTALE);
  t.is(await ns.stat('/y'), null);
  t.false(await a.renew(), 'a deposed holder cannot extend the lease');
  t.is(await b.holder(), 'b');
});

test('malformed commands are caught before they reach the namespace', (t) => {
  const quiet = process.stderr.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    t.is(checkMetadataCommand(null), null);
    t.is(checkMetadataCommand({ cmd: 'explode', ftype: 'file', mode: 0o644, size: 1, path: '/a' }), null);
    t.is(checkMetadataCommand({ cmd: 'create', ftype: 'file', mode: 0o644, size: -1, path: '/a' }), null);
    t.is(checkMetadataCommand({ cmd: 'create', ftype: 'file', mode: 0o644, size: 1, path: 'a' }), null);
    t.deepEqual(checkMetadataCommand({ cmd: 'delete', ftype: 'directory', path: '/g' }),
      { cmd: 'delete', ftype: 'directory', mode: 0, size: 4096, path: '/g', read_ttl: 5000, write_ttl: 0 });
  } finally {
    process.stderr.write = quiet;
  }
  t.is(checkPath('/a//b'), 'the path has a bad segment ""');
  t.is(checkPath('/'), null);
});

test('an entry shows the mtime its command gives; a put of the same entry with another mtime changes it, one with the same does not', async (t) => {
  const ns = fresh();
  const at = (mtime: number | null, size = 10) => make_metadata_command('put', 'file', 0o444, size, '/f', 5000, 0, mtime)!;
  const then = 978_307_200.25; // 2001-01-01T00:00:00.25Z
  t.is(await ns.apply(at(then), 5n, null), 0);
  const e = (await ns.stat('/f'))!;
  t.is(e.mtime_sec, 978_307_200n, 'the file\'s own time, not the time of the crawl');
  t.is(e.mtime_nsec, 250_000_000);
  t.true(e.manifest_mtime_sec > 978_307_200n, 'the manifest is new now');
  t.is(await ns.apply(at(then), 5n, null), UNCHANGED, 'same size, mode and mtime: unchanged');
  t.is(await ns.apply(at(then + 60), 5n, null), 0, 'another mtime is a change');
  const changed = (await ns.stat('/f'))!;
  t.is(changed.mtime_sec, 978_307_260n);
  t.not(changed.file_version, e.file_version, 'and a new version of the file');
  t.is(await ns.apply(at(null), 5n, null), UNCHANGED, 'a command without mtime compares as before: size and mode');
  const now = Date.now() / 1000;
  t.is(await ns.apply(make_metadata_command('put', 'file', 0o444, 1, '/g')!, 5n, null), 0);
  t.true(Math.abs(Number((await ns.stat('/g'))!.mtime_sec) - now) < 3600, 'without one, the time it is applied');
  t.is(make_metadata_command('put', 'file', 0o444, 1, '/h', 5000, 0, Number.NaN), null, 'a bad mtime is refused');
  t.is(checkMetadataCommand({ cmd: 'put', ftype: 'file', mode: 0o444, size: 1, path: '/h', mtime: 'yesterday' }), null);
});
