// Publishing a new driver version under load: every driver actor switches to it (start new,
// drain old) and not one request fails — for a TypeScript driver and for a Python one.
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ChunkType } from '../proto/messages.js';
import { formatBlockUrl } from '../http/data-url.js';
import { layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import { listActors } from '../queues/registry.js';
import { CLI, DISK_DRIVER_JS, DISK_DRIVER_PY, fileRef, waitFor, writeDriver } from './support/gateway.js';
import { gatewayPerFile } from './support/gateway-per-file.js';
import { keys } from '../queues/names.js';

const run = promisify(execFile);
const ROLES = ['driver:read', 'driver:write', 'driver:delete', 'driver:rename'];
const DRIVERS = [
  { language: 'TypeScript', file: 'driver.mjs', source: `export * from ${JSON.stringify(DISK_DRIVER_JS)};\n` },
  { language: 'Python', file: 'driver.py', source: DISK_DRIVER_PY },
];

for (const { language, file: DRIVER_FILE, source: DRIVER } of DRIVERS) {
  const gateway = gatewayPerFile(
    { config: { actors: { concurrency: 8, count: { read: 2, write: 2 } } } },
    undefined,
    (f) => writeDriver(f.dir, DRIVER, { STORAGE_DIR: f.storageDir, TAG: 'v1' }, DRIVER_FILE),
  );

  test.serial(`a new ${language} driver version replaces every driver actor under load with zero failed requests`, async (t) => {
    const { f, redis } = gateway;
    const v1 = await redis.get(keys.driverCurrent(f.gatewayKey));
    let stop = false;
    let done = 0;
    const failures: string[] = [];
    let nextBlock = 1n;
    const file = fileRef(f, { file_id: 0x5a5an });
    const client = async () => {
      while (!stop) {
        const id = nextBlock++;
        const bytes = Buffer.from(`payload of block ${id} `.repeat(20));
        const { blocks, data } = layOutChunks([{ block: { block_id: id, block_version: 1n, chunk_type: ChunkType.BLOCK }, bytes }]);
        const put = await sendControlPlane(f.url, putChunksFields(file, blocks), f.ugKey, data);
        if (put.status !== 200 || put.reply?.error_code !== 0) failures.push(`put ${id}: ${put.status} ${put.reply?.error_code} ${put.body}`);
        const res = await fetch(formatBlockUrl(f.url, { volume_id: 3n, fs_path: file.fs_path, file_id: file.file_id, file_version: file.file_version, block_id: id, block_version: 1n }));
        const body = Buffer.from(await res.arrayBuffer());
        if (res.status !== 200 || !body.equals(bytes)) failures.push(`get ${id}: ${res.status} ${body.toString().slice(0, 80)}`);
        done++;
      }
    };
    const clients = Array.from({ length: 8 }, client);
    await waitFor('requests flowing before the publish', async () => done >= 10);

    writeDriver(f.dir, DRIVER, { STORAGE_DIR: f.storageDir, TAG: 'v2' }, DRIVER_FILE);
    const { stdout } = await run(process.execPath, [CLI, 'driver', 'publish', '--config', f.configFile]);
    const v2 = stdout.split(' ')[0]!;
    t.not(v2, v1);
    t.regex(stdout, /published/);
    const beforeSwap = done;
    try {
      await waitFor('every driver actor on the new version', async () => {
        const actors = await listActors(redis, f.gatewayKey, ROLES);
        return actors.length >= 6 && actors.every((a) => a.version === v2);
      });
    } catch (err) {
      t.log(gateway.gw.output().slice(-4000));
      stop = true; // let the clients finish before the gateway is stopped under them
      await Promise.allSettled(clients);
      throw err;
    }
    const afterSwap = done;
    await waitFor('requests flowing after the swap', async () => done >= afterSwap + 10);
    stop = true;
    await Promise.all(clients);

    t.deepEqual(failures, [], 'no request failed during the swap');
    t.true(done > beforeSwap + 10, `requests kept flowing through the swap (${beforeSwap} before, ${done} in all)`);
    // Each actor publishes its job count with its heartbeat: wait for one that says it served.
    const served = await waitFor('the new version to report jobs served', async () => {
      const actors = await listActors(redis, f.gatewayKey, ['driver:read', 'driver:write']);
      return actors.some((a) => a.version === v2 && a.jobs > 0) ? actors : null;
    }).catch(() => null);
    t.truthy(served, 'the new version served requests');
  });
}
