// User gateway benchmark: write and read of one 64 MiB file with 1 MiB blocks through a UG and
// one RG (built-in disk driver, which fsyncs every chunk), against `cp` of the same file in the
// same run; then the same read again with the UG's cache warm.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { testRedis } from '../test/support/redis.js';
import { startUgVolume, type RunningVolume } from '../test/support/ug.js';
import { UG_TEST_TOKEN } from '../test/support/gateway.js';
import type { Row } from './report.js';

export const SIZE = 64 << 20;
const BLOCK = 1 << 20;
const MB = 1e6;
const log = (m: string) => process.stderr.write(`bench: ${m}\n`);

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** The bench's volume: a UG and one RG with 1 MiB blocks, on the given Redis (its client). */
export function startBenchVolume(redis: Redis, redisUrl?: string): Promise<RunningVolume> {
  return startUgVolume(redis, {
    rgs: 1, blockSize: BLOCK, ...(redisUrl ? { redisUrl } : {}),
    ugConfig: { cache: { dir: 'cache', max_bytes: 512 << 20, memory_bytes: 128 << 20 }, ug: { token: UG_TEST_TOKEN, batch_bytes: 8 << 20, parallel_blocks: 8 } },
    rgConfig: { limits: { call_timeout_ms: 15_000, request_timeout_ms: 60_000, max_upload_bytes: 32 << 20 } },
  });
}

/** PUT a local file through the UG; the seconds it took. */
export function writeThrough(v: RunningVolume, path: string, src: string): Promise<number> {
  return timed(async () => {
    const res = await fetch(`${v.client.url}/FILES${path}`, {
      method: 'PUT', headers: { Authorization: `Bearer ${v.client.token}` },
      body: createReadStream(src) as unknown as BodyInit, duplex: 'half',
    } as RequestInit);
    if (res.status !== 201) throw new Error(`PUT: ${res.status} ${await res.text()}`);
  });
}

/** GET the file and count its bytes without keeping them. */
async function readThrough(v: RunningVolume, path: string): Promise<number> {
  const res = await fetch(`${v.client.url}/FILES${path}`, { headers: { Authorization: `Bearer ${v.client.token}` } });
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  let n = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) n += chunk.length;
  return n;
}

export async function ugBenchmarks(): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-bench-ug-'));
  const src = join(dir, 'src.bin');
  writeFileSync(src, randomBytes(SIZE));
  const redis = new Redis((await testRedis()).url);
  let v: RunningVolume | null = null;
  try {
    log('UG: cp of a 64 MiB file (baseline)');
    const cpSeconds = await timed(async () => { await promisify(execFile)('cp', [src, join(dir, 'copy.bin')]); });
    log('UG: starting a UG and one RG (1 MiB blocks)');
    v = await startBenchVolume(redis);
    const running = v;
    log('UG: write 64 MiB');
    const writeSeconds = await writeThrough(running, '/bench/big.bin', src);
    log('UG: read 64 MiB, UG cache cold');
    let got = 0;
    const coldSeconds = await timed(async () => { got = await readThrough(running, '/bench/big.bin'); });
    if (got !== SIZE) throw new Error(`read ${got} bytes, wrote ${SIZE}`);
    log('UG: read 64 MiB, UG cache warm');
    const warmSeconds = await timed(async () => { got = await readThrough(running, '/bench/big.bin'); });
    if (got !== SIZE) throw new Error(`read ${got} bytes, wrote ${SIZE}`);
    const cp = SIZE / MB / cpSeconds;
    const base = { baseline: cp, baselineName: 'cp of the same file', unit: 'MB/s' };
    const rows: Row[] = [
      { name: 'UG write 64 MiB, 1 MiB blocks, 1 RG', value: SIZE / MB / writeSeconds, ...base, note: 'the RG disk driver fsyncs every chunk; cp does not' },
      { name: 'UG read 64 MiB, UG cache cold', value: SIZE / MB / coldSeconds, ...base },
      { name: 'UG read 64 MiB, UG cache warm', value: SIZE / MB / warmSeconds, ...base },
    ];
    return { rows, raw: { cpSeconds, writeSeconds, coldSeconds, warmSeconds, size: SIZE, block: BLOCK } };
  } finally {
    await v?.stop();
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  }
}
