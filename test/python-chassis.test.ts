// The Python chassis and its pool, driven directly (no Redis, no gateway): real python3 processes
// running small drivers over the pipe protocol, and the TypeScript frame reader on its own.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { DriverRequestCodec, DriverRequestType, encodeBlockVec, IoType } from '../proto/messages.js';
import { PythonChassis, type ChassisOptions } from '../drivers/python-chassis.js';
import { PythonDriverPool } from '../drivers/python-pool.js';
import { encodeBytes, encodeInt, FrameError, FrameReader } from '../drivers/pipe-frames.js';
import { Errno } from '../drivers/errno.js';
import type { IncomingCall } from '../queues/ask.js';
import { METHOD_OF_MODE, type DriverMode } from '../queues/names.js';

/** A bound on a chassis's start, not a measure of it: Python starts in well under a second, but a machine busy with other tests can take many. */
const START_WITHIN_MS = 60_000;

const REQUEST = DriverRequestCodec.encode({
  volume_id: 3n, user_id: 7n, coordinator_id: 10n, file_id: 0xabcn, file_version: 1n, request_type: DriverRequestType.BLOCK,
  path: '/f', block_id: 5n, block_version: 2n, io_type: IoType.READ, offset: 0n, len: 4096n, block_size: 4096n, io_context: 1n,
});

function call(fields: Partial<IncomingCall> = {}, ms = 5000): IncomingCall {
  return { request: REQUEST, requestId: 'rid-1', deadline: Date.now() + ms, jobId: undefined, ...fields };
}

interface LogLine { level: number; msg: string; rid?: string; stream?: string }

/** Polls until cond holds (at most 5 s): a driver's output pipes are read apart from the protocol's. */
async function eventually(cond: () => boolean): Promise<boolean> {
  for (const end = Date.now() + 5000; Date.now() < end && !cond();) await new Promise((r) => setTimeout(r, 20));
  return cond();
}

function pool(source: string, mode: DriverMode, config: Record<string, unknown> = {}, extra: Partial<ChassisOptions> = {}) {
  const logs: LogLine[] = [];
  const logger = pino({ level: 'trace' }, { write: (s: string) => { logs.push(JSON.parse(s) as LogLine); } });
  const p = new PythonDriverPool({
    mode, method: METHOD_OF_MODE[mode] ?? 'next_dataset', config: Buffer.from(JSON.stringify(config)), secrets: Buffer.from('{"TOKEN":"s3cret"}'), code: Buffer.from(source),
    size: 1, maxFrameBytes: 1 << 20, startTimeoutMs: START_WITHIN_MS, env: { SYNDICATE_GATEWAY_ID: '20' }, logger, ...extra,
  });
  return { pool: p, logs };
}

const ECHO_READ = `
from syndicate.util.gateway import request_to_storage_path
def read_chunk(request, chunk_fd, config, secrets):
    chunk_fd.write(request_to_storage_path(request).encode() + b" " + secrets["TOKEN"].encode())
    return 0
`;

test('the chassis answers 0 ready, 2 for a missing method, 1 for a refusing or broken driver', async (t) => {
  const outcome = async (source: string, mode: DriverMode) => {
    const { pool: p } = pool(source, mode);
    const o = await p.start();
    await p.close(1000);
    return o;
  };
  t.is(await outcome(ECHO_READ, 'read'), 'ready');
  t.is(await outcome(ECHO_READ, 'serialize'), 'not-implemented');
  t.is(await outcome(`${ECHO_READ}\ndef driver_init(config, secrets):\n    return False\n`, 'read'), 'failed');
  t.is(await outcome(`${ECHO_READ}\nraise RuntimeError("no back-end")\n`, 'read'), 'failed');
  t.is(await outcome('def read_chunk(:\n', 'read'), 'failed');
});

test('read, write, rename and a two-argument serialize get the seeds\' arguments and answer rc and bytes', async (t) => {
  const { pool: r } = pool(ECHO_READ, 'read');
  t.is(await r.start(), 'ready');
  const got = await r.call(call());
  t.is(got.rc, 0);
  t.is(got.chunk?.toString(), '3/ABC/5/2 s3cret', 'the DriverRequest was decoded in Python; secrets arrived');
  await r.close(1000);

  const { pool: w } = pool('def write_chunk(request, chunk, config, secrets):\n    return -len(chunk)\n', 'write');
  await w.start();
  t.deepEqual(await w.call(call({ chunk: Buffer.from('abcd') })), { rc: -4 });
  await w.close(1000);

  const { pool: rn } = pool('def rename_file(request, old, new, config, secrets):\n    return 0 if (old, new) == ("/a", "/b") else -22\n', 'rename');
  await rn.start();
  t.is((await rn.call(call({ args: ['/a', '/b'] }))).rc, 0);
  t.is((await rn.call(call({ args: ['/a', '/c'] }))).rc, -Errno.EINVAL);
  await rn.close(1000);

  const { pool: s } = pool('def serialize(request, chunk):\n    return b"S:" + chunk\n', 'serialize');
  await s.start();
  t.is((await s.call(call({ chunk: Buffer.alloc(300_000, 0x61) }))).chunk?.length, 300_002, 'a chunk larger than a pipe buffer');
  await s.close(1000);
});

test('what a driver prints reaches the log with the call\'s request id, never the protocol', async (t) => {
  const { pool: p, logs } = pool(`
import os, sys
def read_chunk(request, chunk_fd, config, secrets):
    print("0\\n5\\nhello")                 # would have desynchronised the original stdout protocol
    os.write(1, b"-2\\n")
    sys.stderr.write("a warning\\n")
    chunk_fd.write(b"payload")
    return 0
`, 'read');
  await p.start();
  const got = await p.call(call());
  t.is(got.rc, 0);
  t.is(got.chunk?.toString(), 'payload');
  await p.close(1000);
  await eventually(() => logs.filter((l) => l.stream).length >= 5);
  const printed = logs.filter((l) => l.stream);
  t.deepEqual(printed.map((l) => [l.stream, l.msg]), [['stdout', '0'], ['stdout', '5'], ['stdout', 'hello'], ['stdout', '-2'], ['stderr', 'a warning']]);
  t.true(printed.every((l) => l.rid === 'rid-1'));
});

test('a driver that raises gets -EIO with the exception, and its chassis serves the next call', async (t) => {
  const { pool: p, logs } = pool(`
def read_chunk(request, chunk_fd, config, secrets):
    if request.block_id == 5:
        raise ValueError("the back-end is on fire")
    return -2
`, 'read');
  await p.start();
  const [pid] = p.pids();
  const got = await p.call(call());
  t.is(got.rc, -Errno.EIO);
  t.regex(got.error ?? '', /read_chunk raised ValueError: the back-end is on fire/);
  t.true(await eventually(() => logs.some((l) => l.stream === 'stderr' && /Traceback/.test(l.msg))), 'the traceback is logged');
  const other = DriverRequestCodec.encode({ ...DriverRequestCodec.decode(REQUEST), block_id: 6n });
  t.deepEqual(await p.call(call({ request: other })), { rc: -Errno.ENOENT });
  t.deepEqual(p.pids(), [pid!]);
  await p.close(1000);
});

test('a chassis that exits during a call is restarted and the call retried once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-py-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Exits on its first call only (a marker file remembers): the retry succeeds.
  const { pool: once } = pool(`
import os, sys
def read_chunk(request, chunk_fd, config, secrets):
    mark = os.path.join(config["DIR"], "exited")
    if not os.path.exists(mark):
        open(mark, "w").close()
        os._exit(7)
    chunk_fd.write(b"second try")
    return 0
`, 'read', { DIR: dir });
  await once.start();
  const [first] = once.pids();
  const got = await once.call(call());
  t.is(got.rc, 0);
  t.is(got.chunk?.toString(), 'second try');
  t.notDeepEqual(once.pids(), [first!], 'a new chassis runs');
  await once.close(1000);

  // Exits every time (sys.exit): after one retry the call fails with -EIO, bounded.
  const { pool: always } = pool('import sys\ndef read_chunk(request, chunk_fd, config, secrets):\n    sys.exit(3)\n', 'read');
  await always.start();
  const failed = await always.call(call());
  t.is(failed.rc, -Errno.EIO);
  t.regex(failed.error ?? '', /exited \(code 3\).*retried once/);
  await always.close(1000);
});

test('a chassis that dies between calls is replaced', async (t) => {
  const { pool: p } = pool(`
import os, threading
def read_chunk(request, chunk_fd, config, secrets):
    threading.Timer(0.2, lambda: os._exit(9)).start()   # a driver thread ends the process later
    chunk_fd.write(b"%d" % os.getpid())
    return 0
`, 'read');
  await p.start();
  const first = (await p.call(call())).chunk?.toString();
  t.is(first, String(p.pids()[0]));
  await new Promise((r) => setTimeout(r, 600));
  const second = await p.call(call());
  t.is(second.rc, 0, 'served by a replacement, without a failed call');
  t.not(second.chunk?.toString(), first);
  await p.close(1000);
});

test('a chassis that writes on the protocol descriptor is killed as desynchronised, and the call retried', async (t) => {
  const { pool: p } = pool('import os\ndef read_chunk(request, chunk_fd, config, secrets):\n    os.write(4, b"7\\n")\n    return 0\n', 'read');
  await p.start();
  const got = await p.call(call());
  t.is(got.rc, -Errno.EIO);
  t.regex(got.error ?? '', /broke the pipe protocol.*reply code 7.*retried once/);
  await p.close(1000);
});

test('a driver call that hangs gets -ETIMEDOUT at its deadline; the chassis is replaced', async (t) => {
  const { pool: p } = pool(`
import time
def read_chunk(request, chunk_fd, config, secrets):
    if request.block_id == 5:
        time.sleep(60)
    chunk_fd.write(b"ok")
    return 0
`, 'read');
  await p.start();
  const [hung] = p.pids();
  const got = await p.call(call({}, 1500));
  t.is(got.rc, -Errno.ETIMEDOUT);
  const other = DriverRequestCodec.encode({ ...DriverRequestCodec.decode(REQUEST), block_id: 6n });
  const next = await p.call(call({ request: other }));
  t.is(next.chunk?.toString(), 'ok', 'the next call waits for the replacement chassis');
  t.false(p.pids().includes(hung!));
  await p.close(1000);
});

test('read output past the frame bound is refused with -EFBIG', async (t) => {
  const { pool: p } = pool('def read_chunk(request, chunk_fd, config, secrets):\n    chunk_fd.write(b"x" * 2000)\n    return 0\n', 'read', {}, { maxFrameBytes: 1000 });
  await p.start();
  const got = await p.call(call());
  t.is(got.rc, -Errno.EFBIG);
  await p.close(1000);
});

test('crawl() reaches the gateway\'s hook during a call, and gets -ENOSYS where there is none', async (t) => {
  const source = `
from syndicate.util.gateway import crawl, make_metadata_command
def read_chunk(request, chunk_fd, config, secrets):
    rc = crawl(make_metadata_command("create", "file", 0o644, 10, "/data/a.csv"))
    chunk_fd.write(b"%d" % rc)
    return 0
`;
  const { pool: rg } = pool(source, 'read');
  await rg.start();
  t.is((await rg.call(call())).chunk?.toString(), String(-Errno.ENOSYS));
  await rg.close(1000);

  const seen: unknown[] = [];
  const { pool: ag } = pool(source, 'read', {}, { onCrawl: async (cmd) => { seen.push(cmd); return 1; } });
  await ag.start();
  t.is((await ag.call(call())).chunk?.toString(), '1');
  t.deepEqual(seen, [{ cmd: 'create', ftype: 'file', mode: 0o644, size: 10, path: '/data/a.csv', read_ttl: 5000, write_ttl: 0 }]);
  await ag.close(1000);
});

test('the crawl mode (reserved for the acquisition gateway) runs next_dataset, whose crawl() calls reach the hook', async (t) => {
  const seen: unknown[] = [];
  const { pool: p } = pool(`
from syndicate.util.gateway import crawl, make_metadata_command
def next_dataset(driver_config, driver_secrets):
    return crawl(make_metadata_command("put", "directory", 0o755, 0, "/d")) == 0 and False
`, 'crawl' as DriverMode, {}, { onCrawl: async (cmd) => { seen.push(cmd); return 0; } });
  t.is(await p.start(), 'ready');
  t.deepEqual(await p.call(call({ request: Buffer.alloc(0) })), { rc: 0, value: '0' }, 'no DriverRequest; "0": crawled');
  t.deepEqual(seen, [{ cmd: 'put', ftype: 'directory', mode: 0o755, size: 4096, path: '/d', read_ttl: 5000, write_ttl: 0 }]);
  await p.close(1000);
});

test('a single chassis is started and closed directly; close calls driver_shutdown', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-py-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lines: string[] = [];
  const { chassis, outcome } = await PythonChassis.start({
    mode: 'delete', method: 'delete_chunk', config: Buffer.from(JSON.stringify({ DIR: dir })), secrets: Buffer.from('{}'),
    code: Buffer.from(`
import os
def delete_chunk(request, config, secrets):
    return 0
def driver_shutdown():
    print("shutting down")
`),
    maxFrameBytes: 1 << 20, startTimeoutMs: START_WITHIN_MS, env: {}, onLine: (_s, line) => lines.push(line),
  });
  t.is(outcome, 'ready', lines.join('\n'));
  t.deepEqual(await chassis.call(call()), { rc: 0 });
  await chassis.close(2000);
  t.false(chassis.alive);
  t.deepEqual(lines, ['shutting down']);
});

test('the frame reader takes frames split anywhere and refuses malformed or oversized ones', (t) => {
  const bytes = Buffer.concat([encodeInt(-2), ...encodeBytes(Buffer.from('hello\nworld')), encodeInt(0), ...encodeBytes(Buffer.alloc(0))]);
  const r = new FrameReader(64);
  const got: unknown[] = [];
  for (const b of bytes) {
    r.push(Buffer.from([b]));
    const v = got.length % 2 === 0 ? r.readInt() : r.readBytes();
    if (v !== null) got.push(typeof v === 'number' ? v : v.toString());
  }
  t.deepEqual(got, [-2, 'hello\nworld', 0, '']);
  const bad = (text: string | Buffer, read: (r: FrameReader) => unknown) => {
    const reader = new FrameReader(8);
    reader.push(Buffer.from(text));
    return t.throws(() => read(reader), { instanceOf: FrameError });
  };
  bad('1x\n', (x) => x.readInt());
  bad('+1\n', (x) => x.readInt());
  bad('123456789012345678901234', (x) => x.readInt());
  bad('9\n123456789\n', (x) => x.readBytes());
  bad('3\nabcX', (x) => x.readBytes());
  bad('-1\n', (x) => x.readBytes());
  const partial = new FrameReader(8);
  partial.push(Buffer.from('5\nab'));
  t.is(partial.readBytes(), null, 'incomplete: nothing is consumed');
  partial.push(Buffer.from('cde\n'));
  t.is(partial.readBytes()?.toString(), 'abcde');
});

test('a shared block_vec given to a Python chassis (its bytes once, then only its key) reaches every call\'s request whole, in a list of its own', async (t) => {
  const ids = Array.from({ length: 3000 }, (_, i) => BigInt(i) * 7n + (1n << 63n));
  const vec = { key: 'sgw:blockvec:test', bytes: encodeBlockVec(ids), ids: Object.freeze([...ids]), sha256: '' };
  // serialize answers the ids it saw, after changing its own list (which must not leak into the next call).
  const { pool: p } = pool('def serialize(request, chunk):\n    seen = ",".join(str(i) for i in request.block_vec)\n    request.block_vec.append(1)\n    return seen.encode() if request.HasField("block_vec") else b"none"\n', 'serialize', {}, { maxFrameBytes: 1 << 20 });
  t.is(await p.start(), 'ready');
  const sent: Buffer[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await p.call(call({ blockVec: vec, chunk: Buffer.from('x') }));
    t.is(r.rc, 0, r.error);
    sent.push(r.chunk!);
  }
  const expected = ids.join(',');
  t.deepEqual(sent.map((b) => b.toString()), [expected, expected, expected]);
  t.is((await p.call(call({ chunk: Buffer.from('x') }))).chunk?.toString(), 'none', 'a call without one gets none');
  await p.close(1000);
});
