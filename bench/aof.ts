// The cost of keeping a gateway's state on disk: PUTCHUNKS and UG write MB/s with the private
// Redis's append-only file on (appendfsync everysec, as `sgw start` runs it, and always) against
// off, in the same run. Each setting gets a redis-server of its own, started by the code that starts
// the private one. On a shared machine the load drifts by the minute, so the settings never run one
// after the other: their gateways run side by side and are measured in short alternating slices.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisPersistence, type RedisServer } from '../actors/supervisor/embedded-redis.js';
import { startBenchGateway, type BenchGateway } from './gateway.js';
import { chunkMBps, gatewayPostLoad, POSTS_IN_FLIGHT, type PostLoad } from './post-chunks.js';
import { SIZE, startBenchVolume, writeThrough } from './ug.js';
import type { RunningVolume } from '../test/support/ug.js';
import { MiB } from './support.js';
import { ratio, type Row } from './report.js';

const MODES = ['off', 'everysec', 'always'] as const;
type Mode = (typeof MODES)[number];
const PERSIST: Record<Mode, RedisPersistence | null> = { off: null, everysec: { appendfsync: 'everysec' }, always: { appendfsync: 'always' } };
/** PUTCHUNKS: slices per setting, and seconds each. */
const SLICES = 6;
const SLICE_SECONDS = 2;
/** UG writes of 64 MiB per setting, alternating. */
const UG_WRITES = 4;
const log = (m: string) => process.stderr.write(`bench: ${m}\n`);

interface ModeResult {
  /** PUTCHUNKS MB/s over all slices, and per slice. */
  put: number;
  putSlices: number[];
  putErrors: number;
  ugWrites: number[];
  aofBytes: number;
}

function folderBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) if (e.isFile()) total += statSync(join(e.parentPath, e.name)).size;
  return total;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** The modes in turn, each turn in another order (a rotation), so no setting always runs first. */
function rotation(turn: number): Mode[] {
  return MODES.map((_, i) => MODES[(i + turn) % MODES.length]!);
}

async function putChunksSideBySide(servers: Record<Mode, RedisServer>, results: Record<Mode, ModeResult>): Promise<void> {
  const gateways: Partial<Record<Mode, BenchGateway>> = {};
  const loads: Partial<Record<Mode, PostLoad>> = {};
  try {
    for (const mode of MODES) {
      log(`AOF ${mode}: starting a gateway and warming it up`);
      gateways[mode] = await startBenchGateway({ redisUrl: servers[mode].url });
      loads[mode] = gatewayPostLoad(gateways[mode]!, 4000);
      await loads[mode]!.warmUp();
    }
    const totals = Object.fromEntries(MODES.map((m) => [m, { count: 0, errors: 0, seconds: 0 }])) as Record<Mode, { count: number; errors: number; seconds: number }>;
    for (let turn = 0; turn < SLICES; turn++) {
      log(`PUTCHUNKS slice ${turn + 1}/${SLICES} of each setting`);
      for (const mode of rotation(turn)) {
        const run = await loads[mode]!.run(SLICE_SECONDS);
        results[mode].putSlices.push(chunkMBps(run));
        totals[mode].count += run.count;
        totals[mode].errors += run.errors;
        totals[mode].seconds += run.seconds;
      }
    }
    for (const mode of MODES) {
      results[mode].put = chunkMBps(totals[mode]);
      results[mode].putErrors = totals[mode].errors;
    }
  } finally {
    for (const mode of MODES) {
      loads[mode]?.close();
      await gateways[mode]?.stop();
    }
  }
}

async function ugWritesSideBySide(servers: Record<Mode, RedisServer>, results: Record<Mode, ModeResult>, src: string): Promise<void> {
  const volumes: Partial<Record<Mode, { v: RunningVolume; client: Redis }>> = {};
  try {
    for (const mode of MODES) {
      log(`AOF ${mode}: starting a UG and an RG`);
      const client = new Redis(servers[mode].url);
      volumes[mode] = { client, v: await startBenchVolume(client, servers[mode].url) };
    }
    for (let turn = 0; turn < UG_WRITES; turn++) {
      log(`UG write ${turn + 1}/${UG_WRITES} of each setting`);
      for (const mode of rotation(turn)) results[mode].ugWrites.push(SIZE / 1e6 / (await writeThrough(volumes[mode]!.v, `/aof/${turn}.bin`, src)));
    }
  } finally {
    for (const mode of MODES) {
      await volumes[mode]?.v.stop();
      volumes[mode]?.client.disconnect();
    }
  }
}

export async function aofBenchmarks(): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-bench-aof-'));
  const src = join(dir, 'src.bin');
  writeFileSync(src, randomBytes(SIZE));
  const results = Object.fromEntries(MODES.map((m) => [m, { put: 0, putSlices: [], putErrors: 0, ugWrites: [], aofBytes: 0 }])) as unknown as Record<Mode, ModeResult>;
  const servers = {} as Record<Mode, RedisServer>;
  try {
    for (const mode of MODES) {
      const persist = PERSIST[mode];
      servers[mode] = await startRedisServer({ quiet: true, ...(persist ? { persist } : {}) });
    }
    await putChunksSideBySide(servers, results);
    await ugWritesSideBySide(servers, results, src);
    for (const mode of MODES) results[mode].aofBytes = PERSIST[mode] ? folderBytes(servers[mode].dir) : 0;
  } finally {
    await Promise.all(Object.values(servers).map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
  const list = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(' / ');
  const off = results.off;
  const rows: Row[] = [];
  for (const mode of MODES.filter((m) => m !== 'off')) {
    const r = results[mode];
    const target = mode === 'everysec' ? 'ratio ≥ 0.9' : undefined;
    const put: Row = {
      name: `POST PUTCHUNKS 1 MiB, MB/s (${POSTS_IN_FLIGHT} in flight), Redis AOF ${mode}`, value: r.put, unit: 'MB/s',
      baseline: off.put, baselineName: 'AOF off', ...(target ? { target } : {}),
      note: `${SLICES} slices of ${SLICE_SECONDS} s alternating with the other settings: ${list(r.putSlices)} MB/s (off: ${list(off.putSlices)}); `
        + `append-only file ${(r.aofBytes / MiB).toFixed(1)} MiB after all runs${r.putErrors + off.putErrors ? `; ${r.putErrors + off.putErrors} POSTs failed` : ''}`,
    };
    const ug: Row = {
      name: `UG write 64 MiB, 1 MiB blocks, 1 RG, Redis AOF ${mode} (median)`, value: median(r.ugWrites), unit: 'MB/s',
      baseline: median(off.ugWrites), baselineName: 'AOF off', ...(target ? { target } : {}),
      note: `${UG_WRITES} writes alternating with the other settings: ${list(r.ugWrites)} MB/s (off: ${list(off.ugWrites)})`,
    };
    if (target) {
      put.pass = ratio(put)! >= 0.9 && r.putErrors === 0;
      ug.pass = ratio(ug)! >= 0.9;
    }
    rows.push(put, ug);
  }
  return { rows, raw: results };
}
