// The replica gateway scenarios of the disk driver (test/support/rg-scenarios.ts), on the built-in
// S3 driver against a real S3-compatible server: every chunk is one object at
// PREFIX + request_to_storage_path, holding exactly the chunk's bytes.
import test from 'ava';
import { rgScenarios } from './support/rg-scenarios.js';
import { S3_DRIVER_JS, startTestS3, type TestS3 } from './support/s3.js';

const BUCKET = 'rg-chunks';
const PREFIX = 'gw/chunks/';
let s3: TestS3 | undefined;

rgScenarios({
  label: 'S3',
  options: async () => {
    s3 = await startTestS3();
    await s3.createBucket(BUCKET);
    return s3.driverOptions(S3_DRIVER_JS, { BUCKET, PREFIX });
  },
  stored: (_f, storagePath) => s3!.object(BUCKET, PREFIX + storagePath),
});

test.after.always(async () => {
  await s3?.close();
});
