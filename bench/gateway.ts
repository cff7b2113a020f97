// A real gateway for the benchmark: `sgw start` (supervisor, http+cache actor, one driver actor
// per mode, built-in disk driver) in a temp folder against the bench's private Redis. Reuses the
// test suite's set-up (test/support), which starts that private redis-server on a free port.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import {
  cleanup, fileRef, makeGatewayFolder, startGatewayProcess, waitFor, waitForGateway, type FolderOptions, type GatewayFolder, type RunningGateway,
} from '../test/support/gateway.js';
import { driverRequestForGet } from '../http/get-chunk.js';
import { formatBlockUrl, type BlockAddress } from '../http/data-url.js';
import { request_to_storage_path } from '../drivers/helpers.js';
import type { FileRef } from '../http/rg-client.js';
import { testRedis } from '../test/support/redis.js';
import { childrenOf } from './support.js';

/** Driver calls one driver actor runs at once: as many as the benchmarks keep in flight. */
export const ACTOR_CONCURRENCY = 64;
/** Chassis processes per driver actor when the gateway runs the Python disk driver. */
export const PYTHON_PROCESSES = 4;

export interface BenchGateway {
  f: GatewayFolder;
  gw: RunningGateway;
  redis: Redis;
  /** Actor processes of the supervisor by role ("http", "driver:read", ...). */
  pids: Record<string, number>;
  /** Every process a gateway benchmark loads, for CPU readings: actors, redis, this bench. */
  cpuPids: Record<string, number>;
  stop(): Promise<void>;
}

/**
 * An RG with the disk driver by default; `folder` picks another type or driver (its config keys
 * replace the bench's), `roles` what to wait for, `env` what its processes get besides the bench's.
 */
export async function startBenchGateway(
  folder: FolderOptions = {}, roles = ['http', 'driver:read', 'driver:write'], env: Record<string, string> = {},
): Promise<BenchGateway> {
  const f = await makeGatewayFolder({
    ...folder,
    config: {
      cache: { dir: 'cache', max_bytes: 1 << 30 },
      limits: { call_timeout_ms: 5000, request_timeout_ms: 10_000, max_upload_bytes: 8 << 20 },
      actors: { concurrency: ACTOR_CONCURRENCY, python_processes: PYTHON_PROCESSES },
      log: { level: 'warn' },
      ...folder.config,
    },
  });
  // 64 KiB blocks, as the demo gateway; the bench's chunks are 4 KiB, 64 KiB and 1 MiB.
  const config = JSON.parse(readFileSync(f.configFile, 'utf8')) as { gateway: { block_size: number } };
  config.gateway.block_size = 65536;
  writeFileSync(f.configFile, JSON.stringify(config, null, 2));
  const gw = startGatewayProcess(f.configFile, undefined, undefined, { env });
  const redis = new Redis(f.redisUrl);
  try {
    await waitForGateway(f, redis, roles);
  } catch (err) {
    await gw.stop();
    redis.disconnect();
    throw new Error(`${(err as Error).message}\n${gw.output()}`);
  }
  const pids: Record<string, number> = {};
  for (const c of childrenOf(gw.proc.pid!)) {
    const role = / actor (\S+)/.exec(c.args)?.[1];
    if (role) pids[role] = c.pid;
  }
  const cpuPids: Record<string, number> = { ...pids, supervisor: gw.proc.pid!, redis: (await testRedis()).pid, bench: process.pid };
  if (folder.driverFile === 'driver.py') {
    // The read actor's chassis processes do the driver's work; they start in the background.
    await waitFor('the read actor\'s Python chassis', async () => childrenOf(pids['driver:read']!).length >= PYTHON_PROCESSES);
    childrenOf(pids['driver:read']!).forEach((c, i) => { cpuPids[`python:read#${i + 1}`] = c.pid; });
  }
  return {
    f, gw, redis, pids, cpuPids,
    async stop() {
      await gw.stop();
      redis.disconnect();
      cleanup([f.dir]);
    },
  };
}

/** One file of the bench, its blocks numbered 0..n-1 at version 1. */
export class BenchFile {
  readonly ref: FileRef;

  /** `g`: a bench gateway, or any RG folder (the UG volume's) whose trusted UG key signs for it. */
  constructor(readonly g: Pick<BenchGateway, 'f'>, fileId: bigint) {
    this.ref = fileRef(g.f, { volume_id: g.f.volumeId, file_id: fileId, file_version: 1n, fs_path: `/bench/${fileId.toString(16)}.dat` });
  }

  address(block: number): BlockAddress {
    const { volume_id, fs_path, file_id, file_version } = this.ref;
    return { kind: 'block', volume_id, fs_path, file_id, file_version, block_id: BigInt(block), block_version: 1n };
  }

  /** Path (no origin) of the block's GET URL. */
  path(block: number): string {
    return formatBlockUrl('', this.address(block));
  }

  url(block: number): string {
    return formatBlockUrl(this.g.f.url, this.address(block));
  }

  /** The DriverRequest a GET of the block sends to the read driver. */
  readRequest(block: number) {
    return driverRequestForGet(this.address(block), this.ref.user_id, 65536);
  }

  /**
   * Puts blocks straight into the disk driver's storage, where read_chunk looks for them (setup
   * only: thousands of PUTCHUNKS round trips would cost more time than the measurement).
   */
  seedOnDisk(count: number, bytes: Buffer): void {
    const made = new Set<string>();
    for (let i = 0; i < count; i++) {
      const file = join(this.g.f.storageDir, request_to_storage_path(this.readRequest(i)));
      const dir = dirname(file);
      if (!made.has(dir)) mkdirSync(dir, { recursive: true });
      made.add(dir);
      writeFileSync(file, bytes);
    }
  }
}
