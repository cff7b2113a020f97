// One gateway per state folder, and a private redis-server that never outlives its gateway: a
// second start on the same folders is refused at once naming the folder and its holder, a kill -9
// leaves no stale lock, and no redis-server runs on the state folder without its gateway.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../actors/supervisor/embedded-redis.js';
import { stateRedisPaths } from '../actors/supervisor/state-redis.js';
import { loadConfig } from '../proto/config/config.js';
import {
  cleanup, embeddedRedis, killGroup, makeGatewayFolder, processAlive, processGroup, startGatewayProcess, waitFor,
  waitForEmbeddedGateway, type RunningGateway,
} from './support/gateway.js';

/** Waits for a start that must fail, and returns what it said. */
async function refusedStart(configFile: string): Promise<{ code: number | null; output: string }> {
  const gw = startGatewayProcess(configFile, undefined, undefined, { env: { SGW_PORT: String(await freePort()) } });
  const code = await new Promise<number | null>((resolve) => gw.proc.once('exit', resolve));
  return { code, output: gw.output() };
}

test('a second start of a running gateway is refused at once, naming the state folder and the process that holds it; after kill -9 the next start succeeds', async (t) => {
  const f = await makeGatewayFolder({ embeddedRedis: true });
  let gw: RunningGateway = startGatewayProcess(f.configFile, undefined, undefined, { detached: true });
  t.teardown(async () => {
    await gw.stop();
    cleanup([f.dir]);
  });
  await waitForEmbeddedGateway(f);
  const state = loadConfig(f.configFile).state.dir;
  const second = await refusedStart(f.configFile);
  t.is(second.code, 1);
  t.true(second.output.includes(`${state} is in use by sgw start (pid ${gw.proc.pid}, config ${f.configFile}`), second.output);
  t.true((await fetch(`${f.url}/PING`)).ok, 'the running gateway is untouched');

  await killGroup(gw);
  gw = startGatewayProcess(f.configFile, undefined, undefined, { detached: true });
  await waitForEmbeddedGateway(f);
  t.pass();
});

test('another config naming the same cache folder is refused, naming that folder', async (t) => {
  const a = await makeGatewayFolder();
  const gw = startGatewayProcess(a.configFile);
  const b = await makeGatewayFolder({ config: { cache: { dir: join(a.dir, 'cache') } } });
  t.teardown(async () => {
    await gw.stop();
    cleanup([a.dir, b.dir]);
  });
  await waitFor('the first gateway', async () => (await fetch(`${a.url}/PING`)).ok);
  const refused = await refusedStart(b.configFile);
  t.is(refused.code, 1);
  t.true(refused.output.includes(`${join(a.dir, 'cache')} is in use by sgw start (pid ${gw.proc.pid}, config ${a.configFile}`), refused.output);
});

test('kill -9 of the supervisor alone takes its private redis-server and every actor with it', async (t) => {
  const f = await makeGatewayFolder({ embeddedRedis: true });
  const gw = startGatewayProcess(f.configFile, undefined, undefined, { detached: true });
  t.teardown(async () => {
    await gw.stop();
    cleanup([f.dir]);
  });
  await waitForEmbeddedGateway(f);
  const group = processGroup(gw.proc.pid!);
  t.true(group.length >= 4, 'supervisor, redis-server and actors run');
  gw.proc.kill('SIGKILL');
  await waitFor('every process of the gateway to end', async () => processGroup(gw.proc.pid!).length === 0);
  t.pass();
});

test('a redis-server left running on the state folder is stopped by the next start, never run beside a second one', async (t) => {
  const f = await makeGatewayFolder({ embeddedRedis: true });
  const paths = stateRedisPaths(loadConfig(f.configFile));
  mkdirSync(paths.dir, { recursive: true });
  // As an earlier start on a system without setpriv could leave one: its own session, no parent-death signal.
  const stray = spawn('redis-server', ['--port', String(await freePort()), '--bind', '127.0.0.1', '--dir', paths.dir, '--pidfile', paths.pid, '--save', '', '--appendonly', 'yes'], { detached: true, stdio: 'ignore' });
  stray.unref();
  await waitFor('the stray server\'s pid file', async () => embeddedRedisRunning(paths.pid, stray.pid!));
  const gw = startGatewayProcess(f.configFile, undefined, undefined, { detached: true });
  t.teardown(async () => {
    await gw.stop();
    if (processAlive(stray.pid!)) process.kill(stray.pid!, 'SIGKILL');
    cleanup([f.dir]);
  });
  await waitForEmbeddedGateway(f);
  t.false(processAlive(stray.pid!), 'the stray server was stopped');
  t.regex(embeddedRedis(f), /^redis:\/\/:[0-9a-f]{64}@127\.0\.0\.1:\d+$/, 'the gateway runs its own, with its password');
});

function embeddedRedisRunning(pidFile: string, pid: number): boolean {
  try {
    return Number(readFileSync(pidFile, 'utf8').trim()) === pid;
  } catch {
    return false;
  }
}
