// Nothing acknowledged is lost: a gateway on its private redis-server (no `redis` in its config)
// keeps its namespace and its nonces in an append-only file in its state folder, so a kill -9 of
// every one of its processes — the redis-server included — and a restart find them again.
import test from 'ava';
import { Redis } from 'ioredis';
import { ChunkType, RequestCodec } from '../proto/messages.js';
import { signMessage } from '../proto/signature.js';
import { layOutChunks, postRaw, putChunksFields, randomNonce } from '../http/rg-client.js';
import { testRedis } from './support/redis.js';
import {
  cleanup, fileRef, killGroup, makeGatewayFolder, startGatewayProcess, waitForEmbeddedGateway, type RunningGateway,
} from './support/gateway.js';
import { patternBytes, startUgVolume } from './support/ug.js';

interface EntryJson { path: string }

test('a UG on its private Redis: after kill -9 of every process and a restart, every acknowledged file reads back byte-identical and is listed', async (t) => {
  const redis = new Redis((await testRedis()).url);
  const v = await startUgVolume(redis, { rgs: 1, blockSize: 4096, ugEmbeddedRedis: true, detached: true });
  let again: RunningGateway | null = null;
  t.teardown(async () => {
    await again?.stop();
    await v.stop();
    redis.disconnect();
  });
  const files = new Map<string, Buffer>();
  for (let i = 0; i < 12; i++) {
    const path = `/kept/f${i}.bin`;
    const data = patternBytes(4096 * (i % 4) + 97 * i + 1, 500 + i);
    const put = await v.client.put(path, data);
    t.is(put.status, 201, put.body.toString());
    files.set(path, data);
  }
  // A rename and a delete are acknowledged changes too.
  t.is((await v.client.mv('/kept/f0.bin', '/kept/moved.bin')).status, 200);
  files.set('/kept/moved.bin', files.get('/kept/f0.bin')!);
  files.delete('/kept/f0.bin');
  t.is((await v.client.rm('/kept/f1.bin')).status, 200);
  files.delete('/kept/f1.bin');

  await killGroup(v.ugProc);
  again = startGatewayProcess(v.ug.configFile, undefined, undefined, { detached: true });
  await waitForEmbeddedGateway(v.ug, []);

  const listed = (await v.client.list('/kept')).json<{ entries: EntryJson[] }>().entries.map((e) => e.path);
  t.deepEqual(listed, [...files.keys()].sort());
  for (const [path, data] of files) {
    const got = await v.client.get(path);
    t.is(got.status, 200, `${path}: ${got.body.toString()}`);
    t.true(got.body.equals(data), `${path} reads back byte-identical`);
  }
  t.is((await v.client.get('/kept/f0.bin')).status, 404, 'the renamed file is gone from its old path');
  t.is((await v.client.get('/kept/f1.bin')).status, 404, 'the deleted file stays deleted');
});

test('an RG on its private Redis remembers nonces across kill -9 of every process: a replayed POST gets 401, a fresh nonce 200', async (t) => {
  const f = await makeGatewayFolder({ embeddedRedis: true });
  let gw = startGatewayProcess(f.configFile, undefined, undefined, { detached: true });
  t.teardown(async () => {
    await gw.stop();
    cleanup([f.dir]);
  });
  await waitForEmbeddedGateway(f);
  const file = fileRef(f, { file_id: 0xd00ab1en });
  const upload = (n: bigint) => layOutChunks([{ block: { block_id: n, block_version: 1n, chunk_type: ChunkType.BLOCK }, bytes: patternBytes(300, Number(n)) }]);
  const first = upload(1n);
  const signed = signMessage({ ...putChunksFields(file, first.blocks), message_nonce: randomNonce(), signature: '' }, RequestCodec.encode, f.ugKey).bytes;
  const ok = await postRaw(f.url, signed, first.data);
  t.is(ok.status, 200, ok.body.toString());
  t.is(ok.reply!.error_code, 0);

  await killGroup(gw);
  gw = startGatewayProcess(f.configFile, undefined, undefined, { detached: true });
  await waitForEmbeddedGateway(f);

  const replay = await postRaw(f.url, signed, first.data);
  t.is(replay.status, 401, replay.body.toString());
  t.regex(replay.body.toString(), /already used|replay/);
  const second = upload(2n);
  const fresh = signMessage({ ...putChunksFields(file, second.blocks), message_nonce: randomNonce(), signature: '' }, RequestCodec.encode, f.ugKey).bytes;
  const accepted = await postRaw(f.url, fresh, second.data);
  t.is(accepted.status, 200, accepted.body.toString());
  t.is(accepted.reply!.error_code, 0);
});
