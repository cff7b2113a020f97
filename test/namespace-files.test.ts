// The user gateway's namespace operations in a real Redis: publish with compare-and-set on the
// replaced version, remove and rename, each refused with an errno and changing nothing.
import test from 'ava';
import { Redis } from 'ioredis';
import { Namespace, type NamespaceEntry } from '../queues/namespace/namespace.js';
import { Errno, make_metadata_command } from '../drivers/helpers.js';
import { testRedis } from './support/redis.js';

let redis: Redis;
let volume = 5000n;
test.before(async () => {
  redis = new Redis((await testRedis()).url);
});
test.after.always(() => redis?.disconnect());

const fresh = () => new Namespace(redis, volume++);
const file = (path: string, version: bigint, size = 10): NamespaceEntry => ({
  path, type: 'file', file_id: 0xABCDEF0123456789n, file_version: version, size, mode: 0o644, mtime_sec: 1n, mtime_nsec: 2,
  manifest_mtime_sec: 3n, manifest_mtime_nsec: 4, coordinator_id: 10n, read_ttl: 5000, write_ttl: 0,
});
const dump = async (ns: Namespace) => JSON.stringify(await Promise.all((await redis.keys(`sgw:{vol.${ns.volumeId}}:*`)).sort()
  .map(async (k) => [k, (await redis.type(k)) === 'hash' ? await redis.hgetall(k) : await redis.zrange(k, '0', '-1')])));

test('publish creates a file only where none is, and replaces only the version it names', async (t) => {
  const ns = fresh();
  t.is(await ns.publishFile(file('/a', -5n), null), 0);
  t.deepEqual(await ns.stat('/a'), file('/a', -5n), '64-bit values survive the round trip');
  const before = await dump(ns);
  t.is(await ns.publishFile(file('/a', 6n), null), -Errno.EEXIST, 'a second creator loses');
  t.is(await ns.publishFile(file('/a', 6n), 99n), -Errno.ESTALE, 'a writer that saw another version loses');
  t.is(await ns.publishFile(file('/nodir/b', 1n), null), -Errno.ENOENT, 'the parent must exist');
  t.is(await ns.publishFile(file('/a/b', 1n), null), -Errno.ENOTDIR, 'the parent must be a directory');
  t.is(await ns.publishFile(file('/gone', 1n), 3n), -Errno.ESTALE, 'replacing a version that is gone');
  t.is(await dump(ns), before, 'refusals change nothing');
  t.is(await ns.publishFile(file('/a', 6n, 20), -5n), 0);
  t.is((await ns.stat('/a'))!.size, 20);
  t.is(await ns.apply(make_metadata_command('create', 'directory', 0o755, null, '/d')!, 10n, null), 0);
  t.is(await ns.publishFile(file('/d', 1n), null), -Errno.EISDIR);
  t.is(await ns.publishFile(file('/d/x', 1n), null), 0);
  t.deepEqual((await ns.list('/d', null, 10)).entries.map((e) => e.path), ['/d/x']);
});

test('remove and rename check the version; rename refuses an existing target and a missing parent', async (t) => {
  const ns = fresh();
  await ns.publishFile(file('/a', 1n), null);
  await ns.publishFile(file('/b', 2n), null);
  const before = await dump(ns);
  t.is(await ns.removeFile('/a', 2n), -Errno.ESTALE);
  t.is(await ns.renameFile('/a', 1n, file('/b', 1n)), -Errno.EEXIST);
  t.is(await ns.renameFile('/a', 1n, file('/nodir/c', 1n)), -Errno.ENOENT);
  t.is(await ns.renameFile('/a', 7n, file('/c', 1n)), -Errno.ESTALE);
  t.is(await ns.renameFile('/a', 1n, file('/a', 1n)), -Errno.EINVAL);
  t.is(await ns.removeFile('/../x', 1n), -Errno.EINVAL);
  t.is(await dump(ns), before);
  t.is(await ns.renameFile('/a', 1n, file('/c', 1n)), 0);
  t.is(await ns.stat('/a'), null);
  t.is((await ns.stat('/c'))!.file_version, 1n);
  t.deepEqual((await ns.list('/', null, 10)).entries.map((e) => e.path), ['/b', '/c']);
  t.is(await ns.removeFile('/c', 1n), 0);
  t.deepEqual((await ns.list('/', null, 10)).entries.map((e) => e.path), ['/b']);
});
