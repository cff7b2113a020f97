// One real gateway per test file: registers ava's before / after.always hooks that make a config
// folder, start `sgw start`, wait for it, and stop and clean it all up afterwards.
// Kept apart from gateway.ts because that module is also imported by bench/, and importing 'ava'
// outside the ava CLI ends the process.
import test from 'ava';
import type { RedisClient } from '../../queues/redis.js';
import { testRedisTarget } from './redis.js';
import {
  cleanup, makeGatewayFolder, startGatewayProcess, waitForGateway,
  type FolderOptions, type GatewayFolder, type RunningGateway,
} from './gateway.js';

export interface PerFileGateway {
  /** The gateway's config folder (available once the before hook has run). */
  readonly f: GatewayFolder;
  /** A client of the test file's private Redis. */
  readonly redis: RedisClient;
  /** The running `sgw start` process. */
  readonly gw: RunningGateway;
}

/**
 * Starts one gateway for the test file (before) and stops it (after.always); `opts` may be a
 * function, for options known only once something started (a server the driver talks to). `setup` runs on the
 * fresh folder before the gateway starts (e.g. to write extra keys or a driver version); `roles`
 * are the roles to wait for (default: waitForGateway's driver roles). Before hooks the file
 * registers after this call run once the gateway is up.
 */
export function gatewayPerFile(
  opts: FolderOptions | (() => Promise<FolderOptions>) = {}, roles?: string[], setup?: (f: GatewayFolder) => void,
): PerFileGateway {
  let f: GatewayFolder | undefined;
  let gw: RunningGateway | undefined;
  let redis: RedisClient | undefined;

  // Serial, so that before hooks the test file registers after this call run once the gateway is up
  // (ava starts a file's concurrent before hooks all at once).
  test.serial.before(async () => {
    redis = (await testRedisTarget()).client(); // it ignores errors: tests that restart Redis see its connection drop
    f = await makeGatewayFolder(typeof opts === 'function' ? await opts() : opts);
    setup?.(f);
    gw = startGatewayProcess(f.configFile);
    try {
      await waitForGateway(f, redis, roles);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- gateway output ---\n${gw.output()}`);
    }
  });

  test.after.always(async () => {
    await gw?.stop();
    redis?.disconnect();
    if (f) cleanup([f.dir]);
  });

  const started = <T>(what: string, v: T | undefined): T => {
    if (v === undefined) throw new Error(`the per-file gateway's ${what} is not available before its before hook ran`);
    return v;
  };
  return {
    get f() { return started('folder', f); },
    get redis() { return started('Redis client', redis); },
    get gw() { return started('process', gw); },
  };
}
