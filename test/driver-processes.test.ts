// actors.driver_processes "shared": every driver mode of a host in one process. The layout rule
// (which modes each process serves, counts included); then the RG scenarios every back-end passes,
// run through one shared process with the TypeScript and the Python disk driver, whose process
// serves each mode on its own queue (live actors per mode) and is the gateway's only driver process.
import test from 'ava';
import { Redis } from 'ioredis';
import type { GatewayConfig } from '../proto/config/config.js';
import type { DriverMode } from '../queues/names.js';
import { driverProcesses, driverRole } from '../actors/supervisor/driver-processes.js';
import { childrenOf } from '../bench/support.js';
import { DISK_DRIVERS, liveActors } from './support/gateway.js';
import { rgScenarios, storedOnDisk } from './support/rg-scenarios.js';

const RG_MODES: DriverMode[] = ['read', 'write', 'delete', 'rename'];
const actors = (driver_processes: 'per_mode' | 'shared', count: Partial<Record<DriverMode, number>> = {}) =>
  ({ driver_processes, count: Object.fromEntries(RG_MODES.map((m) => [m, count[m] ?? 1])) }) as unknown as GatewayConfig['actors'];

test('layout: per_mode gives each mode its count of processes; shared one process of every mode, and more for the modes counted higher', (t) => {
  t.deepEqual(driverProcesses(actors('per_mode', { read: 2 }), RG_MODES), [['read'], ['read'], ['write'], ['delete'], ['rename']]);
  t.deepEqual(driverProcesses(actors('shared'), RG_MODES), [RG_MODES]);
  t.deepEqual(driverProcesses(actors('shared', { read: 3, write: 2 }), RG_MODES), [RG_MODES, ['read', 'write'], ['read']]);
  t.deepEqual(driverProcesses(actors('shared'), []), [], 'a driver with no mode of this host: no process');
  t.is(driverRole(RG_MODES), 'driver:read+write+delete+rename');
  t.is(driverRole(['read']), 'driver:read');
});

for (const { language, options } of DISK_DRIVERS) {
  const gateway = rgScenarios({ label: `${language} (shared driver process)`, options: { ...options, config: { actors: { driver_processes: 'shared' } } }, stored: storedOnDisk });

  test(`${language} driver, shared: one driver process serves every RG mode, each with a live actor of its own`, async (t) => {
    const { f, gw } = gateway;
    const drivers = childrenOf(gw.proc.pid!).filter((c) => / actor driver:/.test(c.args));
    t.deepEqual(drivers.map((c) => / actor (\S+)/.exec(c.args)![1]), ['driver:read+write+delete+rename'], gw.output());
    const redis = new Redis(f.redisUrl);
    try {
      for (const mode of RG_MODES) t.is((await liveActors(redis, f.gatewayKey, `driver:${mode}`)).length, 1, mode);
    } finally {
      redis.disconnect();
    }
  });
}
