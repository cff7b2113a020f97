// Specification of the driver helper API (what `import ... from 'sgw'` gives a driver) and of the
// built-in disk driver, called directly the way the driver chassis calls it.
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  callDeadline, callSignal, setCallDeadline, ChunkSink, DriverRequestType, Errno, IoType, log_debug, log_error, make_metadata_command, path_join,
  request_byte_len, request_byte_offset, request_new_path, request_path, request_to_storage_path, request_type,
  type DriverRequest,
} from '../drivers/helpers.js';
import * as messages from '../proto/messages.js';
import * as disk from '../drivers/builtin/disk/driver.js';

const BIG_FILE_ID = 0xDEADBEEFCAFEF00Dn; // above 2^53: a JS number would lose it

function driverRequest(fields: Partial<DriverRequest> = {}): DriverRequest {
  return {
    volume_id: 7n, user_id: 1n, coordinator_id: 2n, file_id: BIG_FILE_ID, file_version: 3n,
    request_type: DriverRequestType.BLOCK, path: '/dir/file.txt', block_id: 4n, block_version: -9223372036854775807n,
    io_type: IoType.READ, offset: 4n * 65536n, len: 65536n, block_size: 65536n, io_context: 99n,
    ...fields,
  };
}

function freshDir(t: ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgw-helpers-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('the request constants equal the wire module\'s', (t) => {
  t.deepEqual(IoType, messages.IoType);
  t.deepEqual(DriverRequestType, messages.DriverRequestType);
});

test('a block is stored at volume/FILEIDHEX/block/version, keeping 64-bit ids and negative versions exact', (t) => {
  t.is(request_to_storage_path(driverRequest()), '7/DEADBEEFCAFEF00D/4/-9223372036854775807');
  t.is(request_to_storage_path(driverRequest({ file_id: 0xabcn, block_id: 18446744073709551615n, block_version: 0n })),
    '7/ABC/18446744073709551615/0');
});

test('a manifest and a rename hint are stored at volume/FILEIDHEX/manifest/sec.nsec', (t) => {
  const manifest = driverRequest({
    request_type: DriverRequestType.MANIFEST, block_id: undefined, block_version: undefined,
    manifest_mtime_sec: 1700000000n, manifest_mtime_nsec: 123456789,
  });
  t.is(request_to_storage_path(manifest), '7/DEADBEEFCAFEF00D/manifest/1700000000.123456789');
  const hint = { ...manifest, request_type: DriverRequestType.RENAME_HINT, manifest_mtime_sec: -5n, manifest_mtime_nsec: 0, new_path: '/new' };
  t.is(request_to_storage_path(hint), '7/DEADBEEFCAFEF00D/manifest/-5.0');
});

test('request_type names the kind of request and refuses unknown ones', (t) => {
  t.is(request_type(driverRequest()), 'block');
  t.is(request_type(driverRequest({ request_type: DriverRequestType.MANIFEST })), 'manifest');
  t.is(request_type(driverRequest({ request_type: DriverRequestType.RENAME_HINT })), 'rename_hint');
  t.throws(() => request_type(driverRequest({ request_type: 42 })), { instanceOf: TypeError });
  t.throws(() => request_to_storage_path(driverRequest({ request_type: 0 })), { instanceOf: TypeError });
});

test('byte offset and length are given for READ and WRITE only', (t) => {
  for (const io_type of [IoType.READ, IoType.WRITE]) {
    t.is(request_byte_offset(driverRequest({ io_type })), 262144n);
    t.is(request_byte_len(driverRequest({ io_type })), 65536n);
  }
  for (const io_type of [IoType.NONE, IoType.SYNC, IoType.DELETE, undefined]) {
    t.is(request_byte_offset(driverRequest({ io_type })), null);
    t.is(request_byte_len(driverRequest({ io_type })), null);
  }
  t.is(request_byte_offset(driverRequest({ io_type: IoType.READ, offset: undefined, len: undefined })), 0n);
  t.is(request_byte_len(driverRequest({ io_type: IoType.WRITE, offset: 18446744073709551615n, len: undefined })), 0n);
  t.is(request_byte_offset(driverRequest({ offset: 18446744073709551615n })), 18446744073709551615n);
});

test('request_path and request_new_path give the file paths', (t) => {
  t.is(request_path(driverRequest()), '/dir/file.txt');
  t.is(request_new_path(driverRequest()), null);
  t.is(request_new_path(driverRequest({ request_type: DriverRequestType.RENAME_HINT, new_path: '/other/name' })), '/other/name');
});

test('path_join joins parts, stripping their leading and trailing slashes', (t) => {
  t.is(path_join('/storage', '/a/', '//b', 'c/'), '/storage/a/b/c');
  t.is(path_join('/storage/', '/7/ABC/1/2'), '/storage/7/ABC/1/2');
  t.is(path_join('root'), 'root');
  t.is(path_join('', 'a', 'b'), 'a/b');
  t.is(path_join('s3://bucket', '/x'), 's3://bucket/x');
  t.is(path_join('/a', ''), '/a/');
});

test('make_metadata_command builds every well-formed command', (t) => {
  t.deepEqual(make_metadata_command('create', 'file', 0o644, 1234, '/data/a.csv'),
    { cmd: 'create', ftype: 'file', mode: 0o644, size: 1234, path: '/data/a.csv', read_ttl: 5000, write_ttl: 0 });
  t.deepEqual(make_metadata_command('put', 'directory', 0o755, 1, '/data', 100, 200),
    { cmd: 'put', ftype: 'directory', mode: 0o755, size: 4096, path: '/data', read_ttl: 100, write_ttl: 200 });
  for (const cmd of ['update', 'delete', 'finish'] as const) t.is(make_metadata_command(cmd, 'file', 0o555, 0, '/')?.cmd, cmd);
});

test('make_metadata_command returns null for malformed commands', (t) => {
  const quiet = silenceStderr(t);
  t.is(make_metadata_command('remove', 'file', 0o644, 1, '/a'), null);
  t.is(make_metadata_command('create', 'symlink', 0o644, 1, '/a'), null);
  t.is(make_metadata_command('create', 'file', 0o644, 1, '/a\nb'), null);
  t.is(make_metadata_command('create', 'file', 0o644, 1, '/a\0b'), null);
  t.is(make_metadata_command('create', 'file', 0o644, 1, 'relative/a'), null);
  t.is(make_metadata_command('create', 'file', -1, 1, '/a'), null);
  t.is(make_metadata_command('create', 'file', 0o644, -1, '/a'), null);
  t.is(make_metadata_command('create', 'file', 0o644, 1.5, '/a'), null);
  t.is(make_metadata_command('create', 'file', 0o644, 1, '/a', -1), null);
  t.true(quiet.lines().every((l) => JSON.parse(l).msg.startsWith('make_metadata_command:')));
});

/** Captures what is written to stderr during one test. */
function silenceStderr(t: ExecutionContext): { lines(): string[] } {
  const original = process.stderr.write.bind(process.stderr);
  let captured = '';
  process.stderr.write = ((chunk: string | Uint8Array) => { captured += chunk.toString(); return true; }) as typeof process.stderr.write;
  t.teardown(() => { process.stderr.write = original; });
  return { lines: () => captured.split('\n').filter((l) => l !== '') };
}

test('log_error writes one JSON line to stderr; log_debug only with SGW_DRIVER_DEBUG', (t) => {
  const err = silenceStderr(t);
  const saved = process.env.SGW_DRIVER_DEBUG;
  try {
    delete process.env.SGW_DRIVER_DEBUG;
    log_error('failed %s', 'twice\nover', { code: 5 });
    log_debug('hidden');
    process.env.SGW_DRIVER_DEBUG = '1';
    log_debug('shown', 42);
  } finally {
    if (saved === undefined) delete process.env.SGW_DRIVER_DEBUG; else process.env.SGW_DRIVER_DEBUG = saved;
  }
  const lines = err.lines().map((l) => JSON.parse(l) as { level: number; msg: string });
  t.is(lines.length, 2);
  t.is(lines[0]!.level, 50);
  t.is(lines[0]!.msg, 'failed twice\nover { code: 5 }');
  t.deepEqual([lines[1]!.level, lines[1]!.msg], [20, 'shown 42']);
});

test('a ChunkSink collects writes at once and everything a file pipes into it', async (t) => {
  const direct = new ChunkSink();
  direct.write(Buffer.from('ab'));
  direct.write('cd');
  direct.write(new Uint8Array([0x65]));
  t.is(direct.bytes().toString(), 'abcde'); // before end(): what a driver returning 0 leaves behind
  t.is((await direct.collect()).toString(), 'abcde');

  const file = path.join(freshDir(t), 'chunk');
  const content = Buffer.alloc(300_000);
  for (let i = 0; i < content.length; i++) content[i] = (i * 13) & 0xff;
  fs.writeFileSync(file, content);
  const piped = new ChunkSink();
  await pipeline(fs.createReadStream(file, { highWaterMark: 4096 }), piped);
  t.true(piped.writableFinished);
  t.true(piped.bytes().equals(content));
  t.is(piped.byteLength, content.length);
});

test('a ChunkSink refuses bytes past its limit with EFBIG', async (t) => {
  const file = path.join(freshDir(t), 'big');
  fs.writeFileSync(file, Buffer.alloc(10_000, 1));
  const sink = new ChunkSink({ limit: 8192 });
  const err = await t.throwsAsync(pipeline(fs.createReadStream(file, { highWaterMark: 1024 }), sink));
  t.is((err as NodeJS.ErrnoException).code, 'EFBIG');
  t.true(sink.byteLength <= 8192);
  await t.throwsAsync(sink.collect(), { message: /larger than 8192/ });

  const direct = new ChunkSink({ limit: 3 });
  await new Promise<void>((resolve) => direct.write(Buffer.from('abcd'), (e) => { t.is((e as NodeJS.ErrnoException).code, 'EFBIG'); resolve(); }));
  t.is((direct.errored as NodeJS.ErrnoException | null)?.code, 'EFBIG'); // recorded, not thrown at the process
  t.is(new ChunkSink().limit, 64 * 1024 * 1024);
});

test('the disk driver refuses to start without STORAGE_DIR', async (t) => {
  const err = silenceStderr(t);
  t.false(await disk.driver_init({}, {}));
  t.false(await disk.driver_init({ STORAGE_DIR: 7 }, {}));
  t.regex(err.lines()[0]!, /STORAGE_DIR/);
  const dir = path.join(freshDir(t), 'nested', 'storage');
  t.true(await disk.driver_init({ STORAGE_DIR: dir }, {}));
  t.true(fs.statSync(dir).isDirectory());
});

test('the disk driver writes, reads back, deletes, and then reports -ENOENT', async (t) => {
  const config = { STORAGE_DIR: path.join(freshDir(t), 'storage') };
  t.true(await disk.driver_init(config, {}));
  const block = driverRequest({ io_type: IoType.WRITE });
  const manifest = driverRequest({ request_type: DriverRequestType.MANIFEST, manifest_mtime_sec: 1n, manifest_mtime_nsec: 2, io_type: IoType.WRITE });
  const blockBytes = Buffer.from('block bytes \u0000\u00ff');

  t.is(await disk.write_chunk(block, blockBytes, config, {}), 0);
  t.is(await disk.write_chunk(block, blockBytes, config, {}), 0, 'a retried write succeeds');
  t.is(await disk.write_chunk(manifest, Buffer.from('manifest'), config, {}), 0);
  const stored = path.join(config.STORAGE_DIR, '7/DEADBEEFCAFEF00D/4/-9223372036854775807');
  t.true(fs.readFileSync(stored).equals(blockBytes));
  t.deepEqual(fs.readdirSync(path.dirname(stored)), [path.basename(stored)], 'no temp files left');

  const sink = new ChunkSink();
  t.is(await disk.read_chunk(driverRequest(), sink, config, {}), 0);
  t.true((await sink.collect()).equals(blockBytes));
  const manifestSink = new ChunkSink();
  t.is(await disk.read_chunk({ ...manifest, io_type: IoType.READ }, manifestSink, config, {}), 0);
  t.is((await manifestSink.collect()).toString(), 'manifest');

  t.is(disk.rename_file(driverRequest({ request_type: DriverRequestType.RENAME_HINT, new_path: '/x' }), '/dir/file.txt', '/x', config, {}), 0);

  const del = driverRequest({ io_type: IoType.DELETE });
  t.is(await disk.delete_chunk(del, config, {}), 0);
  t.is(await disk.delete_chunk(del, config, {}), 0, 'deleting a deleted chunk is a success (retries)');
  const after = new ChunkSink();
  t.is(await disk.read_chunk(driverRequest(), after, config, {}), -Errno.ENOENT);
  t.is(after.byteLength, 0);
});

test('the disk driver maps a read past the sink limit to -EFBIG', async (t) => {
  const config = { STORAGE_DIR: freshDir(t) };
  t.is(await disk.write_chunk(driverRequest(), Buffer.alloc(5000), config, {}), 0);
  t.is(await disk.read_chunk(driverRequest(), new ChunkSink({ limit: 1000 }), config, {}), -Errno.EFBIG);
});

test('the disk driver makes a chunk\'s folder again when it was removed, and a failed write leaves no temp file', async (t) => {
  const config = { STORAGE_DIR: freshDir(t) };
  const bytes = Buffer.alloc(300_000, 7);
  t.is(await disk.write_chunk(driverRequest(), bytes, config, {}), 0);
  const stored = path.join(config.STORAGE_DIR, '7/DEADBEEFCAFEF00D/4/-9223372036854775807');
  fs.rmSync(path.join(config.STORAGE_DIR, '7'), { recursive: true });
  t.is(await disk.write_chunk(driverRequest(), bytes, config, {}), 0);
  t.true(fs.readFileSync(stored).equals(bytes));

  // The chunk's folder is a file now: the write fails with the errno, and nothing is left behind.
  const err = silenceStderr(t);
  fs.rmSync(path.dirname(stored), { recursive: true });
  fs.writeFileSync(path.dirname(stored), 'in the way');
  t.is(await disk.write_chunk(driverRequest(), bytes, config, {}), -Errno.ENOTDIR);
  t.regex(err.lines().join('\n'), /disk driver: write/);
  t.deepEqual(fs.readdirSync(path.dirname(path.dirname(stored))), ['4']);
});

test('callDeadline gives the deadline the chassis set for that very request, callSignal aborts at it; other requests have none', async (t) => {
  const req = driverRequest();
  t.is(callDeadline(req), undefined);
  t.is(callSignal(req), undefined);
  const at = Date.now() + 50;
  setCallDeadline(req, at);
  t.is(callDeadline(req), at);
  t.is(callDeadline(driverRequest()), undefined, 'an equal request object is another call');
  const signal = callSignal(req)!;
  t.false(signal.aborted);
  // AbortSignal.timeout's timer does not keep the process alive (an actor's connections do): this
  // one does, or ava may find nothing left to wait for and call the test stuck.
  const alive = setTimeout(() => undefined, 30_000);
  await new Promise((resolve) => signal.addEventListener('abort', resolve));
  clearTimeout(alive);
  t.true(Date.now() >= at - 5, 'aborted at the deadline');
});
