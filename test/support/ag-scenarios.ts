// The AG scenarios of the built-in dataset driver, run for its TypeScript and its Python version:
// the namespace lists the published tree, every block verifies independently against the AG's key
// and the blocks make up the files, manifests are fresh per GET, live changes reach the namespace,
// REFRESH is answered, and nothing outside DATASET_DIR is published or read.
import { createPublicKey } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { rawGet, waitFor, type FolderOptions } from './gateway.js';
import { gatewayPerFile } from './gateway-per-file.js';
import { getBlock, getManifest, list, readFile, stat } from './ag.js';
import { sendControlPlane } from '../../http/rg-client.js';
import { ReplyCodec, RequestType } from '../../proto/messages.js';

export const BS = 4096;

export interface AgDataset {
  dataset: string;
  outside: string;
  files: Record<string, Buffer>;
}

/** Registers the scenarios for one driver (its source and file name); returns the dataset it publishes. */
export function agScenarios(driver: Pick<FolderOptions, 'driverSource' | 'driverFile'>): AgDataset {
  const dataset = mkdtempSync(join(tmpdir(), 'sgw-dataset-'));
  const outside = mkdtempSync(join(tmpdir(), 'sgw-outside-'));
  const content = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));
  const files: Record<string, Buffer> = {
    '/docs/nested/empty': content(0, 1),
    '/docs/one': content(1, 2),
    '/docs/nested/exact': content(BS, 3),
    '/big': content(3 * BS + 7, 4),
  };
  mkdirSync(join(dataset, 'docs', 'nested'), { recursive: true });
  for (const [p, bytes] of Object.entries(files)) writeFileSync(join(dataset, p), bytes);
  writeFileSync(join(outside, 'secret'), 'not yours');
  symlinkSync(join(outside, 'secret'), join(dataset, 'docs', 'escape'));
  symlinkSync(outside, join(dataset, 'docs', 'escape-dir'));

  const g = gatewayPerFile({
    type: 'AG', ...driver,
    driverConfig: { DATASET_DIR: dataset, RESCAN_MS: 200 },
  }, ['driver:read', 'crawl']);
  const key = () => createPublicKey(g.f.rgKey);

  test.after.always(() => {
    rmSync(dataset, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  test.serial.before(async () => {
    await waitFor('the tree in the namespace', async () => (await stat(g.f.url, '/big')) && (await stat(g.f.url, '/docs/nested/exact')));
  });

  // Serial, so it runs before the test that adds and removes entries.
  test.serial('the namespace lists the published tree, without the symbolic links', async (t) => {
    t.deepEqual((await list(g.f.url, '/')).map((e) => [e.path, e.type]), [['/big', 'file'], ['/docs', 'directory']]);
    t.deepEqual((await list(g.f.url, '/docs')).map((e) => e.path), ['/docs/nested', '/docs/one']);
    const nested = await list(g.f.url, '/docs/nested');
    t.deepEqual(nested.map((e) => [e.path, e.size]), [['/docs/nested/empty', 0], ['/docs/nested/exact', BS]]);
    t.is((await stat(g.f.url, '/docs'))!.size, 4096);
    const bad = await rawGet(g.f.url, '/NAMESPACE/docs/../big');
    t.is(bad.status, 400);
    t.is((await rawGet(g.f.url, '/NAMESPACE/docs/escape')).status, 404);
    t.is((await rawGet(g.f.url, '/NAMESPACE/big?list')).status, 400, 'a file cannot be listed');
    t.is((await rawGet(g.f.url, '/NAMESPACE/?list&limit=0')).status, 400);
  });

  test('every block verifies against the AG key and the blocks make up each file', async (t) => {
    for (const [path, bytes] of Object.entries(files)) {
      const e = (await stat(g.f.url, path))!;
      const m = await getManifest(g.f.url, g.f.volumeId, e, key());
      t.is((m.blocks ?? []).length, Math.ceil(bytes.length / BS), `${path}: block count`);
      t.is(m.size, BigInt(bytes.length));
      t.is(m.coordinator_id, g.f.gatewayId);
      t.true((m.blocks ?? []).every((b) => b.hash === undefined || b.hash.length === 0), 'AG manifests carry no hashes');
      const read = await readFile(g.f.url, g.f.volumeId, e, key());
      t.true(read.equals(bytes), `${path}: ${read.length} bytes read, ${bytes.length} expected`);
    }
  });

  test('a second read of a block is a cache hit with the same bytes', async (t) => {
    const e = (await stat(g.f.url, '/big'))!;
    const m = await getManifest(g.f.url, g.f.volumeId, e, key());
    const first = await getBlock(g.f.url, g.f.volumeId, e, m, 3, key());
    const second = await getBlock(g.f.url, g.f.volumeId, e, m, 3, key());
    t.true(first.data.equals(second.data));
    t.is(first.data.length, 7);
    t.is(second.header.block_version, m.blocks![3]!.block_version);
  });

  test('two manifest GETs give different block versions', async (t) => {
    const e = (await stat(g.f.url, '/big'))!;
    const a = await getManifest(g.f.url, g.f.volumeId, e, key());
    const b = await getManifest(g.f.url, g.f.volumeId, e, key());
    t.is(a.blocks!.length, 4);
    for (let i = 0; i < 4; i++) t.not(a.blocks![i]!.block_version, b.blocks![i]!.block_version);
  });

  test('missing paths, stale versions, blocks past the end and bad URLs are refused', async (t) => {
    const e = (await stat(g.f.url, '/docs/one'))!;
    const base = `/DATA/${g.f.volumeId}/docs/one.${e.file_id}`;
    t.is((await rawGet(g.f.url, `/DATA/${g.f.volumeId}/nope.1.1/manifest.1.1`)).status, 404);
    t.is((await rawGet(g.f.url, `${base}.${BigInt(e.file_version) + 1n}/manifest.1.1`)).status, 404, 'a stale version');
    t.is((await rawGet(g.f.url, `${base}.${e.file_version}/1.5`)).status, 404, 'block 1 of a 1-byte file');
    t.is((await rawGet(g.f.url, `/DATA/${g.f.volumeId}/docs/../big.${e.file_id}.${e.file_version}/0.1`)).status, 400);
    t.is((await rawGet(g.f.url, `/DATA/${g.f.volumeId}/docs/escape.1.1/0.1`)).status, 404, 'a link is not in the namespace');
    t.is((await rawGet(g.f.url, `/DATA/${g.f.volumeId}/docs.1.1/manifest.1.1`)).status, 404, 'a directory has no manifest');
  });

  test('a file created, grown, shrunk and deleted after start follows in the namespace', async (t) => {
    const p = join(dataset, 'docs', 'live.txt');
    // Made whole, then moved in: a scan between writeFileSync's open and its write would see it empty.
    const staged = join(dataset, '..', `live-${process.pid}.txt`);
    writeFileSync(staged, 'hello');
    renameSync(staged, p);
    const created = await waitFor('the new file', async () => stat(g.f.url, '/docs/live.txt'));
    t.is(created.size, 5);
    appendFileSync(p, content(BS, 9));
    const grown = await waitFor('the grown file', async () => ((await stat(g.f.url, '/docs/live.txt'))?.size === 5 + BS ? stat(g.f.url, '/docs/live.txt') : null));
    t.is(grown.file_id, created.file_id);
    t.not(grown.file_version, created.file_version);
    t.true((await readFile(g.f.url, g.f.volumeId, grown, key())).equals(Buffer.concat([Buffer.from('hello'), content(BS, 9)])));
    const grownManifest = await getManifest(g.f.url, g.f.volumeId, grown, key());
    const cachedBlock = await getBlock(g.f.url, g.f.volumeId, grown, grownManifest, 1, key());
    truncateSync(p, 2);
    await waitFor('the shrunk file', async () => (await stat(g.f.url, '/docs/live.txt'))?.size === 2);
    // A block URL names one signed block of one version: once cached it is still served, even
    // though the namespace has moved on (readers of the new version get new URLs).
    const again = await getBlock(g.f.url, g.f.volumeId, grown, grownManifest, 1, key());
    t.true(again.data.equals(cachedBlock.data));
    unlinkSync(p);
    await waitFor('the deleted file gone', async () => (await stat(g.f.url, '/docs/live.txt')) === null);
    mkdirSync(join(dataset, 'tmpdir', 'inner'), { recursive: true });
    writeFileSync(join(dataset, 'tmpdir', 'inner', 'x'), 'x');
    await waitFor('a new subtree', async () => stat(g.f.url, '/tmpdir/inner/x'));
    rmSync(join(dataset, 'tmpdir'), { recursive: true });
    await waitFor('the subtree gone, children first', async () => (await stat(g.f.url, '/tmpdir')) === null);
    t.pass();
  });

  // Serial: the Python driver's refresh gives the file a new version, which would make the other
  // tests' reads of it stale (they run after the serial ones).
  test.serial('a REFRESH is answered with a signed reply; writes to an AG are refused', async (t) => {
    const e = (await stat(g.f.url, '/docs/one'))!;
    const fields = {
      volume_version: 1n, cert_version: 1n, volume_id: g.f.volumeId, coordinator_id: g.f.gatewayId, file_id: BigInt(`0x${e.file_id}`),
      file_version: BigInt(e.file_version), fs_path: '/docs/one', user_id: 7n, src_gateway_id: g.f.ugId, request_type: RequestType.REFRESH,
    };
    const ok = await sendControlPlane(g.f.url, fields, g.f.ugKey, null);
    t.is(ok.status, 200, ok.body.toString());
    t.is(ReplyCodec.decode(ok.body).error_code, 0);
    const put = await sendControlPlane(g.f.url, { ...fields, request_type: RequestType.PUTCHUNKS }, g.f.ugKey, null);
    t.is(put.status, 501, 'an AG is read-only');
    // A path that climbs out is refused by the gateway before any driver sees it (issue 15, item 9).
    const escape = await sendControlPlane(g.f.url, { ...fields, fs_path: '/docs/../..' }, g.f.ugKey, null);
    t.is(escape.status, 400, 'refresh of a path outside the dataset');
    t.regex(escape.body.toString(), /^fs_path /);
  });
  return { dataset, outside, files };
}
