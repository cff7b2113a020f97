// Scale-out across hosts (the multi-host bed of test/cluster/bed.ts; needs root): GETs of blocks
// nobody stored, each one driver read call that waits 20 ms first, as a remote back-end would,
// through one front host (`--roles http,cache`) with 1, 2 and 4 worker hosts (`--roles driver`,
// the same actors per host). Requests/s against k times the one-host figure.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Agent, get } from 'node:http';
import { formatBlockUrl } from '../http/data-url.js';
import { keys } from '../queues/names.js';
import { Bed, type Host } from '../test/cluster/bed.js';
import { DATA_PORT, HostRedis } from '../test/cluster/redis-hosts.js';
import { cleanup, CLI, DISK_DRIVER_JS, makeGatewayFolder, stopChild, waitFor, type GatewayFolder } from '../test/support/gateway.js';
import { closedLoop, type Latency } from './support.js';
import type { Row } from './report.js';

const log = (m: string) => process.stderr.write(`bench: ${m}\n`);
export const CALL_WAIT_MS = 20;
/** Calls each worker host's read actor runs at once: 100 calls/s per host at 20 ms each. */
const CONCURRENCY = 2;
const HOSTS = [1, 2, 4];
/** Requests in flight: twice what four hosts can take, so every setting is saturated. */
const IN_FLIGHT = 16;

const SLOW_DRIVER = `import * as disk from ${JSON.stringify(DISK_DRIVER_JS)};
export * from ${JSON.stringify(DISK_DRIVER_JS)};
export async function read_chunk(...args) {
  await new Promise((r) => setTimeout(r, ${CALL_WAIT_MS}));
  return disk.read_chunk(...args);
}
`;

function startOn(host: Host, f: GatewayFolder, roles: string): ChildProcess {
  return host.spawn(process.execPath, [CLI, 'start', '--config', f.configFile, '--roles', roles], { cwd: f.dir, env: { SGW_HOST: host.address, SGW_LOG_LEVEL: 'warn' }, stdio: 'ignore' });
}

/** One GET of a block that is not there: 404 once the read call came back. */
function missingBlock(agent: Agent, url: string): Promise<boolean> {
  return new Promise((resolve) => {
    get(url, { agent }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode === 404));
    }).once('error', () => resolve(false));
  });
}

export async function scaleOutBenchmarks(seconds: number): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const workers = HOSTS[HOSTS.length - 1]!;
  const bed = await Bed.create(['redis', 'front', ...Array.from({ length: workers }, (_, i) => `w${i + 1}`)]);
  const procs: ChildProcess[] = [];
  const folders: GatewayFolder[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  try {
    const redisHost = bed.host('redis');
    const redis = new HostRedis(redisHost, DATA_PORT, ['--bind', redisHost.address, '--port', String(DATA_PORT), '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--loglevel', 'warning']);
    await redis.start();
    const redisUrl = `redis://${redisHost.address}:${DATA_PORT}`;
    const config = { actors: { concurrency: CONCURRENCY }, limits: { call_timeout_ms: 15_000, request_timeout_ms: 30_000 }, cache: { dir: 'cache', max_bytes: 64 << 20 } };
    const front = await makeGatewayFolder({ redisUrl, driverSource: SLOW_DRIVER, config });
    folders.push(front);
    const front1 = bed.host('front');
    procs.push(startOn(front1, front, 'http,cache'));
    const url = `http://${front1.address}:${front.port}`;
    await waitFor('the front host', async () => (await fetch(`${url}/PING`)).status === 200);
    const runs: Record<number, Latency> = {};
    let started = 0;
    const volume = BigInt(randomBytes(2).readUInt16BE()) + 1n;
    let block = 0n;
    for (const k of HOSTS) {
      for (; started < k; started++) {
        const f = await makeGatewayFolder({ redisUrl, sameGatewayAs: front, noDriverFolder: true, config });
        folders.push(f);
        // Every mode: the front host's readiness needs them all, though only reads are asked for.
        procs.push(startOn(bed.host(`w${started + 1}`), f, 'driver'));
      }
      const admin = redis.admin();
      try {
        await waitFor(`${k} read actors`, async () => (await admin.zcount(keys.alive(front.gatewayKey, 'driver:read'), Date.now(), '+inf')) >= k);
      } finally {
        admin.disconnect();
      }
      log(`scale-out: ${k} worker host(s), ${seconds} s of GETs, each a ${CALL_WAIT_MS} ms driver read`);
      runs[k] = await closedLoop({ inFlight: IN_FLIGHT, maxCount: 1_000_000, maxMs: seconds * 1000, warmup: 50 }, () => missingBlock(agent,
        formatBlockUrl(url, { volume_id: 3n, fs_path: `/scale/${volume}`, file_id: volume, file_version: 1n, block_id: block++, block_version: 1n })));
    }
    const one = runs[1]!.rate;
    const rows: Row[] = HOSTS.map((k) => {
      const r = runs[k]!;
      const linear = r.rate / (k * one);
      return {
        name: `scale-out: GETs/s, one ${CALL_WAIT_MS} ms read call each, ${k} worker host${k > 1 ? 's' : ''}`, value: r.rate, unit: '/s',
        ...(k > 1 ? { baseline: k * one, baselineName: `${k} × one host (linear)`, target: '≥ 0.9 × linear', pass: linear >= 0.9 } : {}),
        note: `p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, ${r.errors} failed; read actor concurrency ${CONCURRENCY} per host, ${IN_FLIGHT} GETs in flight`,
      };
    });
    return { rows, raw: { runs, concurrency: CONCURRENCY, inFlight: IN_FLIGHT } };
  } finally {
    agent.destroy();
    await Promise.all(procs.map((p) => stopChild(p, 10_000)));
    bed.removeSync();
    cleanup(folders.map((f) => f.dir));
  }
}
