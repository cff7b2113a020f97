// The built-in S3 RG driver called directly, as the driver chassis calls it, against a real
// S3-compatible server (s3rver in a child process): where chunks go, what driver_init refuses and
// says, and how a call ends at its deadline when S3 does not answer. Serial: the driver keeps one
// client per process, and a test with other settings replaces it.
import test, { type ExecutionContext } from 'ava';
import { callDriver, type DriverFunction } from '../drivers/chassis.js';
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ChunkSink, DriverRequestType, Errno, IoType, setCallDeadline, setChunkSha256, type DriverRequest } from '../drivers/helpers.js';
import { DriverRequestCodec } from '../proto/messages.js';
import { freePort } from '../actors/supervisor/embedded-redis.js';
import * as s3driver from '../drivers/builtin/s3/driver.js';
import { startTestS3, S3_SECRETS, type TestS3 } from './support/s3.js';

const BUCKET = 'unit-chunks';
let s3: TestS3;
test.before(async () => {
  s3 = await startTestS3();
  await s3.createBucket(BUCKET);
});
test.after.always(async () => {
  await s3?.close();
});

const config = (extra: Record<string, unknown> = {}) => ({ ENDPOINT: s3.endpoint, REGION: 'us-east-1', FORCE_PATH_STYLE: true, BUCKET, PREFIX: 'p/', ...extra });

function request(fields: Partial<DriverRequest> = {}): DriverRequest {
  return {
    volume_id: 7n, user_id: 1n, coordinator_id: 2n, file_id: 0xDEADBEEFCAFEF00Dn, file_version: 3n,
    request_type: DriverRequestType.BLOCK, path: '/dir/file', block_id: 4n, block_version: -9n,
    io_type: IoType.READ, offset: 0n, len: 65536n, block_size: 65536n, io_context: 1n,
    ...fields,
  };
}

/** The driver's log lines (stderr) while the test runs, instead of the test output. */
function driverLog(t: ExecutionContext): () => string[] {
  const original = process.stderr.write.bind(process.stderr);
  let captured = '';
  process.stderr.write = ((chunk: string | Uint8Array) => { captured += chunk.toString(); return true; }) as typeof process.stderr.write;
  t.teardown(() => { process.stderr.write = original; });
  return () => captured.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { msg: string }).msg);
}

test.serial('driver_init refuses settings it cannot use, and says which', async (t) => {
  const log = driverLog(t);
  t.false(await s3driver.driver_init(config({ BUCKET: undefined }), S3_SECRETS));
  t.false(await s3driver.driver_init(config({ SECRET_ACCESS_KEY: 'x' }), S3_SECRETS));
  t.false(await s3driver.driver_init(config(), { ACCESS_KEY_ID: 'S3RVER' }));
  t.deepEqual(log(), [
    's3 driver: config.json must set BUCKET',
    's3 driver: SECRET_ACCESS_KEY belongs in the sealed secrets (sgw secrets seal), never in config.json',
    's3 driver: the secrets must hold both ACCESS_KEY_ID and SECRET_ACCESS_KEY, or neither',
  ]);
});

test.serial('driver_init refuses a missing bucket, naming it and the server', async (t) => {
  const log = driverLog(t);
  t.false(await s3driver.driver_init(config({ BUCKET: 'no-such-bucket' }), S3_SECRETS));
  t.deepEqual(log(), [`s3 driver: bucket "no-such-bucket" at ${s3.endpoint} does not exist`]);
});

test.serial('driver_init refuses credentials the server does not know (s3rver checks the access key id)', async (t) => {
  const log = driverLog(t);
  t.false(await s3driver.driver_init(config(), { ACCESS_KEY_ID: 'WRONG', SECRET_ACCESS_KEY: 'S3RVER' }));
  t.regex(log()[0]!, /^s3 driver: bucket "unit-chunks" at .* refused these credentials \(403\): check ACCESS_KEY_ID and SECRET_ACCESS_KEY/);
  t.true(await s3driver.driver_init(config(), S3_SECRETS), 'the right ones are accepted');
});

test.serial('driver_init refuses a server nobody listens on, after trying for a while', async (t) => {
  const log = driverLog(t);
  const endpoint = `http://127.0.0.1:${await freePort()}`;
  t.false(await s3driver.driver_init(config({ ENDPOINT: endpoint }), S3_SECRETS));
  t.regex(log()[0]!, new RegExp(`^s3 driver: bucket "unit-chunks" at ${endpoint} is unreachable: .*ECONNREFUSED`));
});

test.serial('each chunk is one object at PREFIX + request_to_storage_path; writes and deletes may be repeated', async (t) => {
  const c = config();
  t.true(await s3driver.driver_init(c, S3_SECRETS));
  const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 13) & 0xff));
  const block = request({ io_type: IoType.WRITE });
  t.is(await s3driver.write_chunk(block, bytes, c, S3_SECRETS), 0);
  t.is(await s3driver.write_chunk(block, bytes, c, S3_SECRETS), 0, 'a retried write succeeds');
  t.deepEqual(await s3.object(BUCKET, 'p/7/DEADBEEFCAFEF00D/4/-9'), bytes);
  const manifest = request({ request_type: DriverRequestType.MANIFEST, manifest_mtime_sec: 17n, manifest_mtime_nsec: 5, io_type: IoType.WRITE });
  t.is(await s3driver.write_chunk(manifest, Buffer.from('manifest'), c, S3_SECRETS), 0);
  t.deepEqual(await s3.object(BUCKET, 'p/7/DEADBEEFCAFEF00D/manifest/17.5'), Buffer.from('manifest'));

  const sink = new ChunkSink();
  t.is(await s3driver.read_chunk(request(), sink, c, S3_SECRETS), 0);
  t.deepEqual(await sink.collect(), bytes);
  const small = new ChunkSink({ limit: 1000 });
  t.is(await s3driver.read_chunk(request(), small, c, S3_SECRETS), -Errno.EFBIG, 'a chunk larger than the sink is refused');

  t.is(await s3driver.delete_chunk(request({ io_type: IoType.DELETE }), c, S3_SECRETS), 0);
  t.is(await s3driver.delete_chunk(request({ io_type: IoType.DELETE }), c, S3_SECRETS), 0, 'deleting a deleted chunk succeeds');
  t.is(await s3.object(BUCKET, 'p/7/DEADBEEFCAFEF00D/4/-9'), null);
  const after = new ChunkSink();
  t.is(await s3driver.read_chunk(request(), after, c, S3_SECRETS), -Errno.ENOENT, 'NoSuchKey is -ENOENT (HTTP 404)');
  t.is(after.byteLength, 0);
});

test.serial('calls running at once each get their own object: the client resolves its middleware once and shares it', async (t) => {
  const c = config();
  t.true(await s3driver.driver_init(c, S3_SECRETS));
  const ids = Array.from({ length: 48 }, (_, i) => BigInt(100 + i));
  const bytesOf = (id: bigint) => Buffer.alloc(3000 + Number(id), Number(id) & 0xff);
  const deadline = () => Date.now() + 10_000;
  t.deepEqual(await Promise.all(ids.map((id) => {
    const r = request({ io_type: IoType.WRITE, block_id: id });
    setCallDeadline(r, deadline());
    return s3driver.write_chunk(r, bytesOf(id), c, S3_SECRETS);
  })), ids.map(() => 0));
  const sinks = ids.map(() => new ChunkSink());
  t.deepEqual(await Promise.all(ids.map((id, i) => {
    const r = request({ block_id: id });
    setCallDeadline(r, deadline());
    return s3driver.read_chunk(r, sinks[i]!, c, S3_SECRETS);
  })), ids.map(() => 0));
  for (const [i, id] of ids.entries()) {
    t.deepEqual(await sinks[i]!.collect(), bytesOf(id), `block ${id} read back`);
    t.deepEqual(await s3.object(BUCKET, `p/7/DEADBEEFCAFEF00D/${id}/-9`), bytesOf(id), `block ${id} stored at its key`);
  }
});

test.serial('a write whose chunk the actor already hashed signs with that SHA-256 instead of hashing the chunk again', async (t) => {
  // A loopback endpoint that answers like S3 and keeps each PUT's headers: s3rver does not check
  // a body against its declared hash, so only the request shows which hash the signature used.
  const puts: IncomingHttpHeaders[] = [];
  const recorder = createServer((req, res) => {
    req.resume();
    req.once('end', () => {
      if (req.method === 'PUT') puts.push(req.headers);
      res.writeHead(200, { ETag: '"0"', 'Content-Length': '0' }).end();
    });
  });
  await new Promise<void>((r) => recorder.listen(0, '127.0.0.1', r));
  t.teardown(() => { recorder.close(); });
  const c = config({ ENDPOINT: `http://127.0.0.1:${(recorder.address() as AddressInfo).port}` });
  t.true(await s3driver.driver_init(c, S3_SECRETS));
  const chunk = Buffer.from('a chunk the write actor checked against its signed hash');
  const write = async (known?: Buffer) => {
    const req = request({ io_type: IoType.WRITE });
    setCallDeadline(req, Date.now() + 10_000);
    if (known) setChunkSha256(req, known);
    t.is(await s3driver.write_chunk(req, chunk, c, S3_SECRETS), 0);
    return puts[puts.length - 1]!['x-amz-content-sha256'];
  };
  const real = createHash('sha256').update(chunk).digest();
  t.is(await write(), real.toString('hex'), 'without a known hash the SDK hashes the body');
  // Any hash handed over is the one signed: the chunk was not hashed again.
  const handed = Buffer.alloc(32, 0xab);
  t.is(await write(handed), handed.toString('hex'));
});

test.serial('a call learns its deadline from the chassis: a read S3 never answers ends with -ETIMEDOUT, not a hung actor', async (t) => {
  const c = config();
  t.true(await s3driver.driver_init(c, S3_SECRETS));
  const log = driverLog(t);
  s3.freeze();
  t.teardown(() => s3.thaw());
  const started = Date.now();
  const result = await callDriver(s3driver.read_chunk as unknown as DriverFunction, 'read', {
    request: DriverRequestCodec.encode(request()), deadline: started + 2000, requestId: 'r1', jobId: undefined,
  }, c, S3_SECRETS);
  t.is(result.rc, -Errno.ETIMEDOUT, 'the driver gave up at its deadline and answered (the chassis would have thrown DriverHung)');
  t.regex(log().join('\n'), /read p\/7\/DEADBEEFCAFEF00D\/4\/-9: .*deadline/);
  // A write's request, body sent and no answer, is cut off at the deadline too.
  const stuck = await callDriver(s3driver.write_chunk as unknown as DriverFunction, 'write', {
    request: DriverRequestCodec.encode(request({ io_type: IoType.WRITE, block_id: 6n })), chunk: Buffer.alloc(256 << 10, 7),
    deadline: Date.now() + 1500, requestId: 'r2', jobId: undefined,
  }, c, S3_SECRETS);
  t.is(stuck.rc, -Errno.ETIMEDOUT);
  s3.thaw();
  // The same driver serves again as soon as S3 answers.
  const write = request({ io_type: IoType.WRITE });
  setCallDeadline(write, Date.now() + 10_000);
  t.is(await s3driver.write_chunk(write, Buffer.from('back'), c, S3_SECRETS), 0);
});

test.serial('a stopped S3 server: calls retry until their deadline, then fail; after a restart they succeed', async (t) => {
  const c = config();
  t.true(await s3driver.driver_init(c, S3_SECRETS));
  driverLog(t);
  await s3.stop();
  const write = request({ io_type: IoType.WRITE, block_id: 5n });
  setCallDeadline(write, Date.now() + 1500);
  const rc = await s3driver.write_chunk(write, Buffer.from('x'), c, S3_SECRETS);
  t.true(rc === -Errno.EIO || rc === -Errno.ETIMEDOUT, `rc ${rc}`);
  await s3.start();
  const again = request({ io_type: IoType.WRITE, block_id: 5n });
  setCallDeadline(again, Date.now() + 10_000);
  t.is(await s3driver.write_chunk(again, Buffer.from('x'), c, S3_SECRETS), 0, 'the same driver, no restart');
  t.deepEqual(await s3.object(BUCKET, 'p/7/DEADBEEFCAFEF00D/5/-9'), Buffer.from('x'));
});
