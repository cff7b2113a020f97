// One UG volume per test file (ava hooks); kept apart from ug.ts, which bench/ imports too.
import test from 'ava';
import { Redis } from 'ioredis';
import { testRedis } from './redis.js';
import { startUgVolume, type RunningVolume, type UgVolumeOptions } from './ug.js';

export interface PerFileVolume {
  readonly v: RunningVolume;
  readonly redis: Redis;
}

export function ugVolumePerFile(opts: UgVolumeOptions | (() => UgVolumeOptions) = {}): PerFileVolume {
  let v: RunningVolume | undefined;
  let redis: Redis | undefined;
  test.serial.before(async () => {
    redis = new Redis((await testRedis()).url);
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
