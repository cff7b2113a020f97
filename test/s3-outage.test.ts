// An RG on the built-in S3 driver while its S3 server goes away: stopped in the middle of a load
// of cache-miss GETs and PUTCHUNKS, then frozen (accepting connections, never answering). Every
// request gets a bounded answer, and once S3 is back the same gateway (no restart) serves again.
import test from 'ava';
import { ChunkType } from '../proto/messages.js';
import { Errno } from '../drivers/errno.js';
import { formatBlockUrl } from '../http/data-url.js';
import { layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import { fileRef, waitFor, type GatewayFolder } from './support/gateway.js';
import { gatewayPerFile } from './support/gateway-per-file.js';
import { S3_DRIVER_JS, startTestS3, type TestS3 } from './support/s3.js';

const BUCKET = 'outage';
const REQUEST_TIMEOUT_MS = 5000;
/** Longer than any bounded answer: a request still open then has hung. */
const HUNG_MS = REQUEST_TIMEOUT_MS + 10_000;
let s3: TestS3 | undefined;
const gateway = gatewayPerFile(async () => {
  s3 = await startTestS3();
  await s3.createBucket(BUCKET);
  return s3.driverOptions(S3_DRIVER_JS, { BUCKET, PREFIX: 'rg/' });
});
test.after.always(async () => {
  await s3?.close();
});

const blockBytes = (id: number) => Buffer.alloc(20_000, id & 0xff);
let nextBlock = 1;

/** PUTCHUNKS of one fresh block: the HTTP status and the reply's error_code. */
async function putBlock(f: GatewayFolder, id = nextBlock++): Promise<{ id: number; status: number; rc: number | undefined }> {
  const { blocks, data } = layOutChunks([{ block: { block_id: BigInt(id), block_version: 1n, chunk_type: ChunkType.BLOCK }, bytes: blockBytes(id) }]);
  const r = await sendControlPlane(f.url, putChunksFields(fileRef(f), blocks), f.ugKey, data, f.rgKey, HUNG_MS);
  return { id, status: r.status, rc: r.reply?.error_code };
}

function blockUrl(f: GatewayFolder, id: number): string {
  const file = fileRef(f);
  return formatBlockUrl(f.url, { volume_id: 3n, fs_path: file.fs_path, file_id: file.file_id, file_version: file.file_version, block_id: BigInt(id), block_version: 1n });
}

/** GET of a block: status and bytes, failing the test's promise if no answer comes in HUNG_MS. */
async function getBlock(f: GatewayFolder, id: number): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(blockUrl(f, id), { signal: AbortSignal.timeout(HUNG_MS) });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

test.serial('S3 stopped mid-load: every GET and PUTCHUNKS is answered in bounded time; after S3 returns the gateway serves again', async (t) => {
  const { f } = gateway;
  // Blocks stored while S3 is up; each is then read once (a cache miss that reaches S3).
  const stored: number[] = [];
  for (let i = 0; i < 40; i++) {
    const put = await putBlock(f);
    t.deepEqual([put.status, put.rc], [200, 0]);
    stored.push(put.id);
  }
  const answers: { kind: string; status: number; rc?: number | undefined; during: boolean }[] = [];
  let down = false;
  const load = async (worker: number) => {
    for (let i = worker; i < stored.length; i += 4) {
      const during = down;
      if (i % 2 === 0) {
        const got = await getBlock(f, stored[i]!);
        if (got.status === 200) t.deepEqual(got.body, blockBytes(stored[i]!), 'a 200 carries the stored bytes');
        answers.push({ kind: 'GET', status: got.status, during });
      } else {
        const put = await putBlock(f);
        answers.push({ kind: 'PUT', status: put.status, rc: put.rc, during });
      }
    }
  };
  const loading = Promise.all([0, 1, 2, 3].map(load));
  await waitFor('some requests before the outage', async () => answers.length >= 4);
  await s3!.stop();
  down = true;
  await loading;

  const tally = new Map<string, number>();
  for (const a of answers) {
    const key = `${a.kind} ${a.status}${a.rc ? ` rc ${a.rc}` : ''}`;
    tally.set(key, (tally.get(key) ?? 0) + 1);
  }
  t.log([...tally].map(([k, n]) => `${k}: ${n}`).join(', '));
  const failedGets = answers.filter((a) => a.kind === 'GET' && a.status !== 200);
  for (const a of failedGets) t.true([500, 503, 504].includes(a.status), `a GET during the outage answered ${a.status}`);
  for (const a of answers.filter((x) => x.kind === 'PUT')) {
    t.true(a.status === 503 || (a.status === 200 && [0, -Errno.EIO, -Errno.ETIMEDOUT].includes(a.rc!)), `a PUTCHUNKS answered ${a.status} / ${a.rc}`);
  }
  t.true(answers.some((a) => a.during && (a.status !== 200 || a.rc !== 0)), 'requests during the outage failed (the outage was seen)');

  await s3!.start();
  // A block never read before (odd ones are not read by the load) comes from S3, through the same actors.
  const unread = stored[1]!;
  await waitFor('a GET that reaches S3 to succeed again', async () => (await getBlock(f, unread)).status === 200);
  const after = await putBlock(f);
  t.deepEqual([after.status, after.rc], [200, 0], 'PUTCHUNKS stores again');
  t.deepEqual(await s3!.object(BUCKET, `rg/3/FEDCBA9876543210/${after.id}/1`), blockBytes(after.id));
});

test.serial('a frozen S3 server (connections accepted, never answered): a cache-miss GET gets 504 (or 503) by the deadline, then 200 once S3 answers', async (t) => {
  const { f } = gateway;
  const put = await putBlock(f);
  t.deepEqual([put.status, put.rc], [200, 0]);
  s3!.freeze();
  t.teardown(() => s3!.thaw());
  const frozen = await getBlock(f, put.id);
  t.log(`frozen S3: ${frozen.status} ${frozen.body.toString()}`);
  t.true([503, 504].includes(frozen.status), `answered ${frozen.status}: ${frozen.body.toString()}`);
  s3!.thaw();
  await waitFor('the block to be served', async () => (await getBlock(f, put.id)).status === 200);
  t.deepEqual((await getBlock(f, put.id)).body, blockBytes(put.id));
});
