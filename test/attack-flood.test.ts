// Issue 15, item 2: unauthenticated memory exhaustion. A gateway with the default limits (256 MiB
// uploads, 256 MiB of POST bodies in flight) checks a POST's control plane before it reads the data
// plane: a flood of bogus POSTs each offering 200 MiB is refused after a few MiB of each, total
// RSS stays bounded, /PING answers throughout and no actor restarts; a Request from an unknown or
// forged sender gets its 401 while its data plane is still withheld; and beyond the body budget a
// signed POST gets 503 with Retry-After before its data plane is read.
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { ChunkType, type ManifestBlock } from '../proto/messages.js';
import { postRaw, putChunksFields, type FileRef, type RequestFields } from '../http/rg-client.js';
import { fileRef, waitFor } from './support/gateway.js';
import { gatewayPerFile } from './support/gateway-per-file.js';
import {
  metricValue, MiB, PingPoller, postHead, processTree, restarts, signRequest, storedChunks, streamingPost, TreeRssSampler, treeRss,
} from './support/attack.js';

// Default limits but for the shorter call deadline the test harness uses elsewhere, and a long
// body idle timeout: the budget test holds two POSTs open while it checks the third.
const gw = gatewayPerFile({ config: { limits: { call_timeout_ms: 10_000, body_idle_timeout_ms: 120_000 } } });

const OFFER = 200 * MiB;

const signed = (fields: RequestFields, key = gw.f.ugKey) => signRequest(fields, key);
const storedFiles = (fileId: bigint) => storedChunks(gw.f.storageDir, fileId);

function newFile(): FileRef {
  const file_id = randomBytes(8).readBigUInt64BE() | (1n << 63n);
  return fileRef(gw.f, { file_id, fs_path: `/flood/${file_id.toString(16)}` });
}

/** One block of `size` bytes as a signed Request declares it (the bytes need not exist: they are never read). */
function bigBlock(size: number): ManifestBlock[] {
  return [{ block_id: 0n, block_version: 1n, chunk_type: ChunkType.BLOCK, offset: 0n, size: BigInt(size), hash: randomBytes(32), logical_offset: 0n, logical_len: BigInt(size) }];
}

test.serial('a flood of 20 concurrent POSTs with a bogus control plane, each offering 200 MiB, is refused with 400 after little of each; RSS stays bounded, /PING answers, no actor restarts', async (t) => {
  const root = gw.gw.proc.pid!;
  const pidsBefore = processTree(root).sort();
  const restartsBefore = await restarts(gw.redis, gw.f.gatewayKey);
  const rssBefore = treeRss(root);
  const sampler = new TreeRssSampler(root);
  const pings = new PingPoller(gw.f.url);
  const bogus = postHead(Buffer.concat([Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), randomBytes(72)]));
  const answers = await Promise.all(Array.from({ length: 20 }, async () => {
    const got = [];
    for (let round = 0; round < 3; round++) got.push(await streamingPost(gw.f.url, bogus.contentType, bogus.head, OFFER).answer);
    return got;
  }));
  const during = pings.answers.length;
  const peak = sampler.stop();
  const polled = await pings.stop();
  const flat = answers.flat();
  t.log(`RSS of the gateway's processes: ${(rssBefore / MiB).toFixed(0)} MiB before, ${(peak / MiB).toFixed(0)} MiB at most during the flood`);
  t.log(`client bytes written before each refusal: at most ${(Math.max(...flat.map((a) => a.sent)) / MiB).toFixed(1)} MiB; /PING answered ${polled.length} times, slowest ${Math.max(...polled.map((p) => p.ms)).toFixed(0)} ms`);
  for (const a of flat) {
    t.is(a.status, 400, a.text);
    t.regex(a.text, /malformed Request|missing required/);
    t.is(a.headers.connection, 'close', 'the connection is closed rather than read to its end');
    t.true(a.sent < 32 * MiB, `answered after ${a.sent} of ${OFFER} bytes`);
  }
  t.true(peak - rssBefore < 256 * MiB, `total RSS grew by ${((peak - rssBefore) / MiB).toFixed(0)} MiB`);
  t.true(during > 0, '/PING was answered while the flood ran');
  t.deepEqual(polled.filter((p) => p.status !== 200), [], 'every /PING got 200');
  t.is(await restarts(gw.redis, gw.f.gatewayKey), restartsBefore, 'no actor was restarted');
  t.deepEqual(processTree(root).sort(), pidsBefore, 'the same processes run');
});

test.serial('a validly encoded Request from an unknown sender, with a forged signature, or failing any other check, is answered while its data plane is still withheld', async (t) => {
  const file = newFile();
  const blocks = bigBlock(OFFER);
  const fields = putChunksFields(file, blocks);
  const tiledWrong = [{ ...blocks[0]!, offset: 1n }];
  const cases: [string, Uint8Array, number, RegExp][] = [
    ['unknown sender', signed({ ...fields, src_gateway_id: 999n, coordinator_id: 999n }), 401, /unknown sender/],
    ['signed with a key the sender does not have', signed(fields, gw.f.rgKey), 401, /does not verify/],
    ['another volume', signed({ ...fields, volume_id: 99n }), 403, /volume 99/],
    ['blocks that do not tile the data plane', signed(putChunksFields(file, tiledWrong)), 400, /tile the data plane/],
    ['a path with ..', signed({ ...fields, fs_path: '/a/../b' }), 400, /fs_path/],
  ];
  for (const [what, control, status, message] of cases) {
    const { head, contentType } = postHead(control);
    const post = streamingPost(gw.f.url, contentType, head, head.length + OFFER, { holdAfter: head.length + MiB });
    const a = await post.answer; // a gateway that waited for the data plane would never answer
    t.is(a.status, status, `${what}: ${a.text}`);
    t.regex(a.text, message, what);
    t.true(a.sent <= head.length + MiB, what);
  }
  t.deepEqual(storedFiles(file.file_id), []);
});

test.serial('beyond limits.post_bytes_in_flight a signed POST gets 503 with Retry-After before its data plane is read; once the held POSTs end, POSTs are accepted again', async (t) => {
  const held = [0, 1].map(() => {
    const { head, contentType } = postHead(signed(putChunksFields(newFile(), bigBlock(120 * MiB))));
    return streamingPost(gw.f.url, contentType, head, head.length + 120 * MiB, { holdAfter: head.length + MiB });
  });
  // Both POSTs passed their checks and hold their data planes' room (a hair over 240 MiB of 256).
  await waitFor('two POSTs holding 240 MiB', async () => (await metricValue(gw.f.url, 'sgw_post_bytes_in_flight')) >= 240 * MiB);
  const { head, contentType } = postHead(signed(putChunksFields(newFile(), bigBlock(120 * MiB))));
  const third = await streamingPost(gw.f.url, contentType, head, head.length + 120 * MiB, { holdAfter: head.length + MiB }).answer;
  t.is(third.status, 503, third.text);
  t.regex(third.text, /post_bytes_in_flight/);
  t.regex(String(third.headers['retry-after']), /^\d+$/);
  t.true(third.sent <= head.length + MiB);
  for (const h of held) h.abort();
  await waitFor('the budget given back', async () => (await metricValue(gw.f.url, 'sgw_post_bytes_in_flight')) === 0);
  const file = newFile();
  const data = randomBytes(MiB);
  const ok = await postRaw(gw.f.url, signed(putChunksFields(file, [{ ...bigBlock(MiB)[0]!, hash: createHash('sha256').update(data).digest() }])), data);
  t.is(ok.status, 200, ok.body.toString());
  t.is(storedFiles(file.file_id).length, 1);
});
