// The private redis-server of a gateway without `redis` in its config: not open to every local
// process (a password made per gateway, kept 0600 in a 0700 folder, never on a command line), and
// still found by every command of that config while the gateway runs.
import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { stateRedisPaths } from '../actors/supervisor/state-redis.js';
import { runDashboardServer } from '../actors/cli/dashboard-server.js';
import { loadConfig } from '../proto/config/config.js';
import { CLI, cleanup, embeddedRedis, makeGatewayFolder, startGatewayProcess, waitForEmbeddedGateway, type GatewayFolder, type RunningGateway } from './support/gateway.js';

const run = promisify(execFile);
let f: GatewayFolder;
let gw: RunningGateway;

test.before(async () => {
  f = await makeGatewayFolder({ embeddedRedis: true });
  gw = startGatewayProcess(f.configFile);
  await waitForEmbeddedGateway(f);
});

test.after.always(async () => {
  await gw?.stop();
  cleanup([f.dir]);
});

test.serial('the password is made per gateway, readable by its owner only, and never on a command line', async (t) => {
  const paths = stateRedisPaths(loadConfig(f.configFile));
  t.is(statSync(paths.dir).mode & 0o777, 0o700);
  t.is(statSync(paths.password).mode & 0o777, 0o600);
  const password = readFileSync(paths.password, 'utf8').trim();
  t.regex(password, /^[0-9a-f]{64}$/);
  const pid = Number(readFileSync(paths.pid, 'utf8'));
  t.false(readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(password), 'ps does not show it');
  t.false(readFileSync(`/proc/${gw.proc.pid}/cmdline`, 'utf8').includes(password));
});

/** The first reply line of a raw RESP exchange on a fresh connection. */
function rawReply(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host: '127.0.0.1' }, () => sock.write(`${command}\r\n`));
    let got = '';
    sock.on('data', (d) => {
      got += d.toString();
      if (got.includes('\r\n')) {
        sock.destroy();
        resolve(got.slice(0, got.indexOf('\r\n')));
      }
    });
    sock.on('error', reject);
  });
}

test.serial('a client without the password is refused', async (t) => {
  const port = Number(new URL(embeddedRedis(f)).port);
  t.regex(await rawReply(port, 'GET anything'), /^-NOAUTH/);
  t.regex(await rawReply(port, 'AUTH guess'), /^-WRONGPASS/);
});

test.serial('sgw status, sgw driver publish and the dashboard of the same config find the private Redis', async (t) => {
  const status = await run(process.execPath, [CLI, 'status', '--config', f.configFile, '--json'], { timeout: 30_000 });
  t.is(JSON.parse(status.stdout).gateway, f.gatewayKey);
  t.regex(JSON.parse(status.stdout).redis, /^redis:\/\/:\*\*\*@127\.0\.0\.1:\d+/, 'the password is not printed');
  const publish = await run(process.execPath, [CLI, 'driver', 'publish', '--config', f.configFile], { timeout: 60_000 });
  t.regex(publish.stdout, /^[0-9a-f]{64} unchanged/);
  const dashboard = await runDashboardServer(loadConfig(f.configFile), { host: '127.0.0.1', port: 0, insecureLocal: true });
  t.teardown(() => dashboard.stop());
  t.is((await fetch(dashboard.url)).status, 200);
});

test.serial('once the gateway is stopped, those commands say its private Redis is not running', async (t) => {
  await gw.stop();
  const err = await run(process.execPath, [CLI, 'status', '--config', f.configFile], { timeout: 30_000 }).then(() => null, (e: { code: number; stderr: string }) => e);
  t.is(err?.code, 1);
  t.regex(err!.stderr, /private redis-server \(.*\) is not running: start the gateway first/);
});
