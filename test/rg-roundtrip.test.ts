// End to end through real processes: sgw start (supervisor, http actor, driver actors), a real
// Redis, real HTTP and the built-in disk driver writing real files — once with the TypeScript
// driver, once with its Python twin run by the Python chassis (test/support/rg-scenarios.ts).
// Both built-in disk drivers also keep chunks immutable (issue 15, item 5).
import test from 'ava';
import { ChunkType } from '../proto/messages.js';
import { layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import { Errno } from '../drivers/errno.js';
import { DISK_DRIVERS, fileRef } from './support/gateway.js';
import { rgScenarios, storedOnDisk } from './support/rg-scenarios.js';

for (const { language, options } of DISK_DRIVERS) {
  const gateway = rgScenarios({ label: language, options, stored: storedOnDisk });

  test(`${language} driver: a stored chunk is never replaced: the same bytes again succeed, other bytes get -EEXIST and the stored ones stay`, async (t) => {
    const { f } = gateway;
    const file = fileRef(f, { file_id: 0x1117ab1en, fs_path: '/dir/immutable.bin' });
    const chunk = (bytes: Buffer) => layOutChunks([{ block: { block_id: 9n, block_version: 1n, chunk_type: ChunkType.BLOCK, logical_offset: 0n, logical_len: 100n }, bytes }]);
    const first = chunk(Buffer.alloc(100, 1));
    const put = (c: ReturnType<typeof chunk>) => sendControlPlane(f.url, putChunksFields(file, c.blocks), f.ugKey, c.data, f.rgKey);
    t.is((await put(first)).reply?.error_code, 0);
    t.is((await put(first)).reply?.error_code, 0, 'a retry of the same bytes succeeds');
    t.is((await put(chunk(Buffer.alloc(100, 2)))).reply?.error_code, -Errno.EEXIST, 'other bytes');
    t.is((await put(chunk(Buffer.alloc(50, 1)))).reply?.error_code, -Errno.EEXIST, 'other length');
    t.deepEqual(await storedOnDisk(f, '3/1117AB1E/9/1'), first.data, 'the stored bytes stay');
  });
}
