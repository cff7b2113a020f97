// One UG volume per test file (ava hooks); kept apart from ug.ts, which bench/ imports too.
import test from 'ava';
import type { RedisClient } from '../../queues/redis.js';
import { testRedisTarget } from './redis.js';
import { startUgVolume, type RunningVolume, type UgVolumeOptions } from './ug.js';

export interface PerFileVolume {
  readonly v: RunningVolume;
  readonly redis: RedisClient;
}

export function ugVolumePerFile(opts: UgVolumeOptions | (() => UgVolumeOptions) = {}): PerFileVolume {
  let v: RunningVolume | undefined;
  let redis: RedisClient | undefined;
  test.serial.before(async () => {
    redis = (await testRedisTarget()).client();
    v = await startUgVolume(redis, typeof opts === 'function' ? opts() : opts);
  });
  test.after.always(async () => {
    await v?.stop();
    redis?.disconnect();
  });
  const started = <T>(x: T | undefined): T => {
    if (x === undefined) throw new Error('the per-file volume is not available before its before hook ran');
    return x;
  };
  return {
    get v() { return started(v); },
    get redis() { return started(redis); },
  };
}
