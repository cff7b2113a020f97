// The cost of metrics and per-request logging on the hot path: cache-hit GETs through two http
// actors of the bench gateway, started side by side with `--roles http,cache` (they share its
// driver actors): "on" with metrics and one info log line per request (written to a file, as a
// log shipper would read it), "off" with metrics disabled and the log at warn. Runs alternate
// on/off so that drift of a busy machine hits both alike.
import { closeSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { httpLoad, type HttpLoad } from './load.js';
import { BenchFile, type BenchGateway } from './gateway.js';
import { CONNECTIONS } from './http-get.js';
import { childrenOf, cpuWindow, cutProfiles, profiled } from './support.js';
import { ChunkType } from '../proto/messages.js';
import { freePort } from '../actors/supervisor/embedded-redis.js';
import { layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import { cleanup, makeGatewayFolder, startGatewayProcess, waitFor, type RunningGateway } from '../test/support/gateway.js';

const ROUNDS = 3;
const BLOCKS = 16;
const SIZE = 64 * 1024;

export interface ObserveResult {
  on: HttpLoad[];
  off: HttpLoad[];
  /** Mean requests/s over the rounds. */
  onRate: number;
  offRate: number;
  /** CPU time of the http actor per request, µs (steadier than rates on a shared machine). */
  onCpuUs: number;
  offCpuUs: number;
  /** Log lines and bytes the "on" actor wrote during the measured runs. */
  logLines: number;
  logBytes: number;
  /** Requests the "on" actor's /metrics counted for the route, as a check that it was really on. */
  metricsCounted: number;
  httpPid: Record<'on' | 'off', number | undefined>;
}

interface Front {
  url: string;
  gw: RunningGateway;
  dir: string;
  logFile: string;
}

/** An http+cache front host of the bench gateway on a port of its own, with config overrides. */
async function startFront(g: BenchGateway, overrides: Record<string, unknown>): Promise<Front> {
  const f = await makeGatewayFolder({ sameGatewayAs: g.f, noDriverFolder: true });
  const config = JSON.parse(readFileSync(f.configFile, 'utf8')) as Record<string, unknown> & { gateway: { port: number; block_size: number } };
  const port = await freePort();
  config.gateway.port = port;
  config.gateway.block_size = 65536;
  Object.assign(config, overrides);
  writeFileSync(f.configFile, JSON.stringify(config, null, 2));
  const logFile = join(f.dir, 'sgw.log');
  const fd = openSync(logFile, 'a');
  const level = (overrides.log as { level: string }).level;
  const gw = await profiled(async () => startGatewayProcess(f.configFile, 'http,cache', f.dir, { env: { SGW_LOG_LEVEL: level }, stdoutFd: fd }));
  closeSync(fd); // the child holds its own copy
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(`front ${port} ready`, async () => (await fetch(`${url}/ready`)).status === 200, 30_000);
  } catch (err) {
    await gw.stop();
    throw new Error(`${(err as Error).message}\n${gw.output()}`);
  }
  return { url, gw, dir: f.dir, logFile };
}

function httpActorPid(front: Front): number | undefined {
  return childrenOf(front.gw.proc.pid!).find((c) => / actor http /.test(c.args))?.pid;
}

async function requestsCounted(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('sgw_http_requests_total{route="/DATA/*",method="GET",status="200"}'));
  return Number(line?.split(' ').pop() ?? NaN);
}

export async function observeCost(g: BenchGateway, seconds: number): Promise<ObserveResult> {
  const on = await startFront(g, { metrics: { enabled: true }, log: { level: 'info' } });
  const off = await startFront(g, { metrics: { enabled: false }, log: { level: 'warn' } }).catch(async (err: Error) => {
    await on.gw.stop();
    throw err;
  });
  try {
    // The hit set: written once through the bench gateway, then read once through each front so
    // that every measured GET is a hit in that front's own cache.
    const file = new BenchFile(g, 0x0b5e0001n);
    const bytes = Buffer.alloc(SIZE, 0x5a);
    const { blocks, data } = layOutChunks(Array.from({ length: BLOCKS }, (_, i) => ({
      block: { block_id: BigInt(i), block_version: 1n, chunk_type: ChunkType.BLOCK, logical_offset: BigInt(i * SIZE), logical_len: BigInt(SIZE) },
      bytes,
    })));
    const put = await sendControlPlane(g.f.url, putChunksFields(file.ref, blocks), g.f.ugKey, data);
    if (put.status !== 200 || put.reply?.error_code !== 0) throw new Error(`PUTCHUNKS of the hit set failed: ${put.status}`);
    const paths = Array.from({ length: BLOCKS }, (_, i) => file.path(i));
    for (const front of [on, off]) {
      for (const p of paths) {
        const res = await fetch(`${front.url}${p}`);
        if (res.status !== 200 || (await res.arrayBuffer()).byteLength !== SIZE) throw new Error(`warming ${front.url}${p}: ${res.status}`);
      }
      await httpLoad({ url: front.url, connections: CONNECTIONS, seconds: 1, paths }); // warm-up
    }
    const logBefore = statSync(on.logFile).size;
    const countedBefore = await requestsCounted(on.url);
    const runs = { on: [] as HttpLoad[], off: [] as HttpLoad[] };
    const cpuSeconds = { on: 0, off: 0 };
    const pids = { on: httpActorPid(on), off: httpActorPid(off) };
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate which goes first, so neither always runs on a warmer (or more disturbed) machine.
      const order = r % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
      for (const which of order) {
        const started = performance.now();
        const cpu = cpuWindow({ http: pids[which] ?? 0 });
        cutProfiles([pids[which] ?? 0]); // with SGW_BENCH_PROFILE, each measured run is a profile window of its own
        const load = await httpLoad({ url: (which === 'on' ? on : off).url, connections: CONNECTIONS, seconds, paths });
        cutProfiles([pids[which] ?? 0]);
        cpuSeconds[which] += cpu().http! * ((performance.now() - started) / 1000); // cores × the window's seconds
        runs[which].push(load);
      }
    }
    const perRequestUs = (which: 'on' | 'off') => (cpuSeconds[which] * 1e6) / runs[which].reduce((a, x) => a + x.ok + x.failed, 0);
    const logText = readFileSync(on.logFile, 'utf8').slice(logBefore);
    const mean = (xs: HttpLoad[]) => xs.reduce((a, x) => a + x.rate, 0) / xs.length;
    return {
      on: runs.on, off: runs.off, onRate: mean(runs.on), offRate: mean(runs.off),
      onCpuUs: perRequestUs('on'), offCpuUs: perRequestUs('off'),
      logLines: logText.split('\n').filter((l) => l.includes('"msg":"request"')).length,
      logBytes: statSync(on.logFile).size - logBefore,
      metricsCounted: (await requestsCounted(on.url)) - countedBefore,
      httpPid: pids,
    };
  } finally {
    await Promise.all([on.gw.stop(), off.gw.stop()]);
    cleanup([on.dir, off.dir]);
  }
}
