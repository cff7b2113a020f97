// The cost of keeping a gateway's state on disk: PUTCHUNKS and UG write MB/s with the private
// Redis's append-only file on (appendfsync everysec, as `sgw start` runs it, and always) against
// off, in the same run. Each setting gets a redis-server of its own, started by the code that starts
// the private one, and a fresh gateway (PUTCHUNKS) and volume (UG write) on it.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisPersistence } from '../actors/supervisor/embedded-redis.js';
import { startBenchGateway } from './gateway.js';
import { gatewayPutChunks, POSTS_IN_FLIGHT } from './post-chunks.js';
import { SIZE, startBenchVolume, writeThrough } from './ug.js';
import { formatCpu, MiB } from './support.js';
import { ratio, type Row } from './report.js';

const MODES = ['off', 'everysec', 'always'] as const;
type Mode = (typeof MODES)[number];
/** UG writes per setting; the best counts (one 64 MiB write takes a second or two: noise dominates). */
const UG_WRITES = 3;
const log = (m: string) => process.stderr.write(`bench: ${m}\n`);

interface ModeResult {
  putMBps: number;
  putErrors: number;
  putCpu: Record<string, number>;
  ugWriteMBps: number;
  ugWrites: number[];
  aofBytes: number;
}

function folderBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) if (e.isFile()) total += statSync(join(e.parentPath, e.name)).size;
  return total;
}

async function measure(mode: Mode, seconds: number, src: string): Promise<ModeResult> {
  const persist: RedisPersistence | undefined = mode === 'off' ? undefined : { appendfsync: mode };
  const server = await startRedisServer({ quiet: true, ...(persist ? { persist } : {}) });
  const client = new Redis(server.url);
  try {
    log(`AOF ${mode}: POST PUTCHUNKS 1 MiB`);
    const g = await startBenchGateway({ redisUrl: server.url });
    let put: Awaited<ReturnType<typeof gatewayPutChunks>>;
    try {
      put = await gatewayPutChunks(g, seconds);
    } finally {
      await g.stop();
    }
    log(`AOF ${mode}: UG write 64 MiB ×${UG_WRITES}`);
    const v = await startBenchVolume(client, server.url);
    const ugWrites: number[] = [];
    try {
      for (let i = 0; i < UG_WRITES; i++) ugWrites.push(SIZE / 1e6 / (await writeThrough(v, `/aof/${mode}-${i}.bin`, src)));
    } finally {
      await v.stop();
    }
    return {
      putMBps: put.MBps, putErrors: put.run.errors, putCpu: put.run.cpu,
      ugWriteMBps: Math.max(...ugWrites), ugWrites, aofBytes: persist ? folderBytes(server.dir) : 0,
    };
  } finally {
    client.disconnect();
    await server.stop();
  }
}

export async function aofBenchmarks(seconds: number): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-bench-aof-'));
  const src = join(dir, 'src.bin');
  writeFileSync(src, randomBytes(SIZE));
  const results = {} as Record<Mode, ModeResult>;
  try {
    for (const mode of MODES) results[mode] = await measure(mode, seconds, src);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const off = results.off;
  const rows: Row[] = [];
  for (const mode of MODES.filter((m) => m !== 'off')) {
    const r = results[mode];
    const target = mode === 'everysec' ? 'ratio ≥ 0.9' : undefined;
    const put: Row = {
      name: `POST PUTCHUNKS 1 MiB, MB/s (${POSTS_IN_FLIGHT} in flight), Redis AOF ${mode}`, value: r.putMBps, unit: 'MB/s',
      baseline: off.putMBps, baselineName: 'AOF off', ...(target ? { target } : {}),
      note: `append-only file grew to ${(r.aofBytes / MiB).toFixed(1)} MiB over both runs; CPU cores: ${formatCpu(r.putCpu)}`
        + `${r.putErrors + off.putErrors ? `; ${r.putErrors + off.putErrors} POSTs failed` : ''}`,
    };
    const ug: Row = {
      name: `UG write 64 MiB, 1 MiB blocks, 1 RG, Redis AOF ${mode}`, value: r.ugWriteMBps, unit: 'MB/s',
      baseline: off.ugWriteMBps, baselineName: 'AOF off', ...(target ? { target } : {}),
      note: `best of ${UG_WRITES}: ${r.ugWrites.map((x) => x.toFixed(0)).join(' / ')} MB/s (off: ${off.ugWrites.map((x) => x.toFixed(0)).join(' / ')})`,
    };
    if (target) {
      put.pass = ratio(put)! >= 0.9 && r.putErrors === 0;
      ug.pass = ratio(ug)! >= 0.9;
    }
    rows.push(put, ug);
  }
  return { rows, raw: results };
}
