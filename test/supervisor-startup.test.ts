// An actor that takes longer to start than a driver call may take (here: a slow driver_init) is
// not mistaken for a stuck one: the supervisor's watchdog gives starting actors a grace period
// before their first heartbeat, so the actor comes up instead of being killed over and over.
// `sgw start` prints its summary once the actors are ready, or after --wait seconds anyway, then
// names the ones still starting.
import test from 'ava';
import { Redis } from 'ioredis';
import { testRedis } from './support/redis.js';
import { cleanup, liveActors, makeGatewayFolder, startGatewayProcess, waitFor } from './support/gateway.js';

const SLOW_INIT = `
export async function driver_init() { await new Promise((r) => setTimeout(r, 8000)); return true; }
export function read_chunk(request, chunk_fd) { chunk_fd.write(Buffer.from('ok')); return 0; }
`;

test('a driver actor whose driver_init outlasts the watchdog limit is left to start', async (t) => {
  const redis = new Redis((await testRedis()).url);
  // Stuck means silent for call_timeout_ms + 5 s = 5.1 s; this driver needs 8 s to start.
  const f = await makeGatewayFolder({ driverSource: SLOW_INIT, config: { limits: { call_timeout_ms: 100, request_timeout_ms: 2000 } } });
  const gw = startGatewayProcess(f.configFile, 'driver:read', undefined, { env: { SGW_LOG_LEVEL: 'error' } });
  try {
    await waitFor('the slow driver:read actor to come up', async () => (await liveActors(redis, f.gatewayKey, 'driver:read')).length > 0);
    t.notRegex(gw.output(), /stopped beating/, 'the watchdog did not kill it while it started');
  } finally {
    await gw.stop();
    redis.disconnect();
    cleanup([f.dir]);
  }
});

test('the summary comes after --wait seconds even while an actor starts, and names the actors still starting', async (t) => {
  await testRedis();
  const f = await makeGatewayFolder({ driverSource: SLOW_INIT });
  const gw = startGatewayProcess(f.configFile, 'driver:read', undefined, { args: ['--wait', '1'], env: { SGW_LOG_LEVEL: 'error' } });
  try {
    await waitFor('the summary', async () => /still starting after 1 s/.test(gw.output()));
    t.regex(gw.output(), /stop with +Ctrl-C[^]*\nsgw: still starting after 1 s: driver:read;/, 'the summary, then the actor that needs 8 s to start');
  } finally {
    await gw.stop();
    cleanup([f.dir]);
  }
});

test('--wait takes seconds', async (t) => {
  const f = await makeGatewayFolder({ driverSource: SLOW_INIT });
  const gw = startGatewayProcess(f.configFile, 'driver:read', undefined, { args: ['--wait', 'soon'] });
  try {
    const code = gw.proc.exitCode ?? await new Promise<number | null>((r) => gw.proc.once('exit', (c) => r(c)));
    t.not(code, 0);
    t.regex(gw.output(), /--wait soon: give the seconds to wait for the actors/);
  } finally {
    await gw.stop();
    cleanup([f.dir]);
  }
});
