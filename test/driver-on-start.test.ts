// Which driver version a host runs when its config names a `driver` folder (driver-publishing.ts):
// a front host publishes the folder only when it changed since that host published it, a worker
// runs the published version whether or not it has the folder, and each says which version wins
// and why.
import test from 'ava';
import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { currentBundleHash } from '../drivers/bundle.js';
import { keys } from '../queues/names.js';
import { testRedis } from './support/redis.js';
import {
  CLI, cleanup, copyFolder, DISK_DRIVER_JS, liveActors, makeGatewayFolder, startGatewayProcess, waitFor, writeDriver,
  type GatewayFolder, type RunningGateway,
} from './support/gateway.js';

const run = promisify(execFile);
const dirs: string[] = [];
let redis: Redis;
let f: GatewayFolder;
test.before(async () => {
  redis = new Redis((await testRedis()).url);
  f = await makeGatewayFolder();
  dirs.push(f.dir);
});
test.after.always(() => {
  redis?.disconnect();
  cleanup(dirs);
});

const DRIVER = `export * from ${JSON.stringify(DISK_DRIVER_JS)};\n`;
const short = (hash: string | null) => hash!.slice(0, 12);

/** Starts `sgw start` for these roles, waits for its summary, returns its driver line and the process. */
async function started(configFile: string, roles: string, cwd?: string): Promise<{ gw: RunningGateway; driverLine: string }> {
  const gw = startGatewayProcess(configFile, roles, cwd);
  try {
    await waitFor('the start-up summary', async () => /stop with/.test(gw.output()));
  } catch (err) {
    await gw.stop();
    throw new Error(`${(err as Error).message}\n${gw.output()}`);
  }
  return { gw, driverLine: /^ {2}driver {7}(.*)$/m.exec(gw.output())?.[1] ?? '' };
}

test.serial('a front host restarted with the folder it published keeps a version published since, and publishes its folder again once it changed', async (t) => {
  const first = await started(f.configFile, 'http,cache');
  await first.gw.stop();
  const v1 = await currentBundleHash(redis, f.gatewayKey);
  t.regex(first.driverLine, new RegExp(`no driver version was published yet: published ${short(v1)} from .*driver`));

  // Someone publishes another version from elsewhere.
  const elsewhere = mkdtempSync(join(tmpdir(), 'sgw-elsewhere-'));
  dirs.push(elsewhere);
  writeDriver(elsewhere, DRIVER, { STORAGE_DIR: f.storageDir, NOTE: 'v2, published from elsewhere' });
  await run(process.execPath, [CLI, 'driver', 'publish', '--config', f.configFile, '--dir', join(elsewhere, 'driver')]);
  const v2 = await currentBundleHash(redis, f.gatewayKey);
  t.not(v2, v1);

  const again = await started(f.configFile, 'http,cache');
  await again.gw.stop();
  t.is(await currentBundleHash(redis, f.gatewayKey), v2, 'the restart did not swap the gateway back to its folder');
  t.regex(again.driverLine, new RegExp(`unchanged since this host published it \\(${short(v1)}\\): running the current version ${short(v2)}`));

  writeDriver(f.dir, DRIVER, { STORAGE_DIR: f.storageDir, NOTE: 'v3, edited on the front host' });
  const edited = await started(f.configFile, 'http,cache');
  await edited.gw.stop();
  const v3 = await currentBundleHash(redis, f.gatewayKey);
  t.true(v3 !== v1 && v3 !== v2, 'the edited folder is the current version now');
  t.regex(edited.driverLine, new RegExp(`changed since this host published it \\(${short(v1)}\\): published ${short(v3)}, replacing ${short(v2)}`));
});

test.serial('a worker host with only the config file and its keys runs the published version; so does one with an old folder, and a front host that never published it', async (t) => {
  const current = (await currentBundleHash(redis, f.gatewayKey))!;
  t.truthy(current);

  // Copied as docs/operations.md says: the config file and the key files it names, no driver folder.
  const bare = mkdtempSync(join(tmpdir(), 'sgw-worker-'));
  dirs.push(bare);
  copyFileSync(f.configFile, join(bare, 'config.json'));
  cpSync(join(f.dir, 'keys'), join(bare, 'keys'), { recursive: true });
  const worker = await started(join(bare, 'config.json'), 'driver:read', bare);
  try {
    t.regex(worker.driverLine, new RegExp(`the driver folder .*driver is not on this host: running the published version ${short(current)}`));
    const actors = await waitFor('the worker\'s read actor', async () => {
      const found = await redis.hgetall(keys.actor(f.gatewayKey, (await liveActors(redis, f.gatewayKey, 'driver:read'))[0] ?? 'none'));
      return found.version ? found : null;
    });
    t.is(actors.version, current, 'it runs the published version');
  } finally {
    await worker.gw.stop();
  }

  // A whole copy of the folder, with a driver folder that is not the current version.
  const old = copyFolder(f.dir);
  dirs.push(old);
  writeDriver(old, DRIVER, { STORAGE_DIR: f.storageDir, NOTE: 'an old copy' });
  const oldWorker = await started(join(old, 'config.json'), 'driver:read', old);
  await oldWorker.gw.stop();
  t.regex(oldWorker.driverLine, new RegExp(`runs no http actor, so it publishes no driver: running the published version ${short(current)}`));

  // A new front host whose state folder never saw a publish: the folder differs, the current version stays.
  rmSync(join(old, 'state'), { recursive: true, force: true });
  mkdirSync(join(old, 'state'));
  const newFront = await started(join(old, 'config.json'), 'http,cache', old);
  await newFront.gw.stop();
  t.regex(newFront.driverLine, new RegExp(`differs from the current version ${short(current)} and was never published from this host: running ${short(current)}; to make the folder current, run sgw driver publish --config .*config\\.json`));
  t.is(await currentBundleHash(redis, f.gatewayKey), current, 'no host swapped the gateway to its folder');
});

test.serial('a current version published unsigned (by an sgw before signing) is signed again by a front host with that folder, and runs', async (t) => {
  const current = (await currentBundleHash(redis, f.gatewayKey))!;
  await redis.hdel(keys.bundle(f.gatewayKey, current), 'signed');
  const front = await started(f.configFile, 'http,cache,driver:read');
  try {
    t.regex(front.driverLine, new RegExp(`signed the current version ${short(current)} \\(published unsigned before\\)`));
    t.truthy(await redis.hget(keys.bundle(f.gatewayKey, current), 'signed'));
    const actor = await waitFor('a read actor of the re-signed version', async () => {
      const found = await redis.hgetall(keys.actor(f.gatewayKey, (await liveActors(redis, f.gatewayKey, 'driver:read'))[0] ?? 'none'));
      return found.version ? found : null;
    });
    t.is(actor.version, current);
  } finally {
    await front.gw.stop();
  }
});
