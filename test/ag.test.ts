// An acquisition gateway publishing a real directory tree with the built-in dataset driver (the
// scenarios are in support/ag-scenarios.ts), and the driver's own refusals, called directly.
import test from 'ava';
import { Errno } from '../drivers/errno.js';
import { ChunkSink } from '../drivers/helpers.js';
import { read as datasetRead } from '../drivers/builtin/dataset/driver.js';
import { readFailure } from '../http/get-chunk.js';
import { DATASET_DRIVER_JS } from './support/gateway.js';
import { agScenarios, BS } from './support/ag-scenarios.js';

const { dataset, outside, files } = agScenarios({ driverSource: `export * from ${JSON.stringify(DATASET_DRIVER_JS)};\n` });

test('the dataset driver refuses reads through links and ".." and serves ranges inside', async (t) => {
  const req = (path: string, offset: number, len: number) => ({
    volume_id: 1n, user_id: 1n, coordinator_id: 1n, file_id: 1n, file_version: 1n, request_type: 1, path,
    io_type: 1, offset: BigInt(offset), len: BigInt(len), block_id: 0n, block_version: 0n, block_size: BigInt(BS),
  });
  const config = { DATASET_DIR: dataset };
  for (const path of ['/docs/escape', '/docs/escape-dir/secret', '/../' + outside.split('/').pop() + '/secret', '/docs/./one']) {
    const sink = new ChunkSink();
    t.is(await datasetRead(req(path, 0, 10), sink, config, {}), -Errno.EACCES, path);
    t.is((await sink.collect()).length, 0);
  }
  const sink = new ChunkSink();
  t.is(await datasetRead(req('/big', BS - 2, 5), sink, config, {}), 0);
  t.true((await sink.collect()).equals(files['/big']!.subarray(BS - 2, BS + 3)));
  t.is(await datasetRead(req('/nope', 0, 1), new ChunkSink(), config, {}), -Errno.ENOENT);
});

test('a driver that refuses a read (-EACCES, -EPERM) is a 403; -ENOENT a 404; others 500 or 504', (t) => {
  t.is(readFailure({ rc: -Errno.EACCES }, 'block').status, 403);
  t.is(readFailure({ rc: -Errno.EPERM }, 'block').status, 403);
  t.is(readFailure({ rc: -Errno.ENOENT }, 'block').status, 404);
  t.is(readFailure({ rc: -Errno.ETIMEDOUT }, 'block').status, 504);
  t.is(readFailure({ rc: -Errno.EIO }, 'block').status, 500);
});
