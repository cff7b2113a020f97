// The replica gateway scenarios every RG back-end must pass, end to end through real processes:
// sgw start (supervisor, http actor, driver actors), a real Redis, real HTTP, and the back-end
// itself (disk files, an S3 server). Each back-end says where its bytes are, so the tests check
// the chunks land at request_to_storage_path exactly.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChunkType, ManifestCodec, type ManifestBlock } from '../../proto/messages.js';
import { formatBlockUrl, formatManifestUrl } from '../../http/data-url.js';
import {
  deleteChunksFields, layOutChunks, putChunksFields, renameHintFields, sendControlPlane,
} from '../../http/rg-client.js';
import { fileRef, rawGet, type FolderOptions, type GatewayFolder } from './gateway.js';
import { gatewayPerFile, type PerFileGateway } from './gateway-per-file.js';
import { keys } from '../../queues/names.js';

export interface RgBackend {
  /** Names the tests ("TypeScript", "Python", "S3"). */
  label: string;
  options: FolderOptions | (() => Promise<FolderOptions>);
  /** The bytes the back-end holds at a storage path (request_to_storage_path), null when none. */
  stored(f: GatewayFolder, storagePath: string): Promise<Buffer | null>;
}

/** The disk driver's back-end: files under the gateway's storage folder. */
export async function storedOnDisk(f: GatewayFolder, storagePath: string): Promise<Buffer | null> {
  try {
    return readFileSync(join(f.storageDir, storagePath));
  } catch {
    return null;
  }
}

const BIG_NONCE = 2n ** 63n + 12345n;

function manifestBytes(fileId: bigint, mtime: bigint): Buffer {
  // Any bytes will do for the RG (it stores chunks opaquely); a real Manifest keeps it honest.
  return Buffer.from(ManifestCodec.encode({
    volume_id: 3n, coordinator_id: 10n, owner_id: 7n, file_id: fileId, file_version: -3n,
    mtime_sec: mtime, mtime_nsec: 5, size: 5000n, signature: '',
  }));
}

export function rgScenarios({ label: language, options, stored }: RgBackend): PerFileGateway {
  const gateway = gatewayPerFile(options);

  test(`${language} driver: put, get, delete, get 404 and rename round-trip with 64-bit ids and a negative block version`, async (t) => {
    const { f } = gateway;
    const file = fileRef(f);
    const block = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) & 0xff));
    const manifest = manifestBytes(file.file_id, 1_700_000_000n);
    const { blocks, data } = layOutChunks([
      { block: { block_id: 2n ** 60n + 1n, block_version: -42n, chunk_type: ChunkType.BLOCK, logical_offset: 0n, logical_len: 4096n }, bytes: block },
      { block: { block_id: 1_700_000_000n, block_version: 5n, chunk_type: ChunkType.MANIFEST }, bytes: manifest },
    ]);
    const put = await sendControlPlane(f.url, { ...putChunksFields(file, blocks), message_nonce: BIG_NONCE }, f.ugKey, data, f.rgKey);
    t.is(put.status, 200, put.body.toString());
    t.is(put.reply!.error_code, 0);
    t.is(put.reply!.message_nonce, BIG_NONCE, 'the reply echoes the 64-bit nonce exactly');
    t.is(put.reply!.gateway_id, f.gatewayId);
    t.true(put.replyVerified, 'the reply is signed by the RG');

    const blockPath = `3/FEDCBA9876543210/${2n ** 60n + 1n}/-42`;
    t.deepEqual(await stored(f, blockPath), block, 'the back-end holds the block, exactly, under request_to_storage_path');
    t.deepEqual(await stored(f, '3/FEDCBA9876543210/manifest/1700000000.5'), manifest, 'and the manifest under its own');

    const addr = { volume_id: 3n, fs_path: file.fs_path, file_id: file.file_id, file_version: file.file_version };
    const blockUrl = formatBlockUrl(f.url, { ...addr, block_id: 2n ** 60n + 1n, block_version: -42n });
    const got = await fetch(blockUrl);
    t.is(got.status, 200);
    t.deepEqual(Buffer.from(await got.arrayBuffer()), block);
    const gotManifest = await fetch(formatManifestUrl(f.url, { ...addr, mtime_sec: 1_700_000_000n, mtime_nsec: 5 }));
    t.is(gotManifest.status, 200);
    t.deepEqual(Buffer.from(await gotManifest.arrayBuffer()), manifest);

    const del = await sendControlPlane(f.url, deleteChunksFields(file, [blocks[0]!]), f.ugKey, null, f.rgKey);
    t.is(del.status, 200, del.body.toString());
    t.is(del.reply!.error_code, 0);
    t.is(await stored(f, blockPath), null, 'the block is gone from the back-end');
    t.is((await fetch(blockUrl)).status, 404, 'a deleted block is not served from the cache either');

    const newManifest = manifestBytes(file.file_id, 1_700_000_100n);
    const hint = layOutChunks([{ block: { block_id: 1_700_000_100n, block_version: 0n, chunk_type: ChunkType.MANIFEST }, bytes: newManifest }]);
    const ren = await sendControlPlane(f.url, { ...renameHintFields(file, '/dir/renamed.txt', hint.blocks[0] as ManifestBlock) }, f.ugKey, hint.data, f.rgKey);
    t.is(ren.status, 200, ren.body.toString());
    t.is(ren.reply!.error_code, 0);
    const renamed = await fetch(formatManifestUrl(f.url, { ...addr, fs_path: '/dir/renamed.txt', mtime_sec: 1_700_000_100n, mtime_nsec: 0 }));
    t.is(renamed.status, 200, 'the new manifest was written after the rename');
    t.deepEqual(Buffer.from(await renamed.arrayBuffer()), newManifest);
  });

  test(`${language} driver: GET answers PING, 400 for a bad URL, 304 for If-Modified-Since, 404 for a missing chunk`, async (t) => {
    const { f } = gateway;
    t.is((await fetch(`${f.url}/PING`)).status, 200);
    t.is((await rawGet(f.url, '/DATA/3/a/../b.1F.1/0.0')).status, 400);
    t.is((await rawGet(f.url, '/DATA/3/a/..')).status, 400);
    t.is((await rawGet(f.url, '/DATA/3/a/%2e%2e/b.1F.1/0.0')).status, 400);
    t.is((await fetch(`${f.url}/DATA/3/x.ZZ.1/0.0`)).status, 400);
    t.is((await fetch(`${f.url}/DATA/3/x.1F.1/0.0`, { headers: { 'If-Modified-Since': new Date().toUTCString() } })).status, 304);
    t.is((await fetch(`${f.url}/DATA/3/nothing.ABC.1/9.9`)).status, 404);
  });

  test(`${language} driver: the driver bundle travels through Redis and its version is the one the actors run`, async (t) => {
    const { f, redis } = gateway;
    const current = await redis.get(keys.driverCurrent(f.gatewayKey));
    t.regex(current ?? '', /^[0-9a-f]{64}$/);
    const ids = await redis.zrangebyscore(keys.alive(f.gatewayKey, 'driver:read'), Date.now(), '+inf');
    t.true(ids.length > 0);
    t.is(await redis.hget(keys.actor(f.gatewayKey, ids[0]!), 'version'), current);
    const meta = JSON.parse((await redis.hget(keys.bundle(f.gatewayKey, current!), 'meta')) ?? '{}') as { entry?: string };
    const { driverFile } = typeof options === 'function' ? {} : options;
    t.is(meta.entry, driverFile ?? 'driver.mjs', 'the actors run the driver under test');
  });
  return gateway;
}
