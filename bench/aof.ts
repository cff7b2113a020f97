// The cost of keeping a gateway's state on disk: PUTCHUNKS and UG write MB/s with the private
// Redis's append-only file on (appendfsync everysec, as `sgw start` runs it, and always) against
// off, in the same run. On a shared machine the load drifts from one second to the next, so the
// settings are not compared across runs or even across gateways: one redis-server, started by the
// code that starts the private one, serves one gateway (and one UG volume), and the setting is
// switched with CONFIG SET between short alternating slices. Each figure is the median over turns of
// the ratio of a setting's slice to the "off" slice of the same turn.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedisServer } from '../actors/supervisor/embedded-redis.js';
import { startBenchGateway } from './gateway.js';
import { chunkMBps, gatewayPostLoad, POSTS_IN_FLIGHT } from './post-chunks.js';
import { SIZE, startBenchVolume, writeThrough } from './ug.js';
import { sleep } from './support.js';
import type { Row } from './report.js';

const MODES = ['off', 'everysec', 'always'] as const;
type Mode = (typeof MODES)[number];
/** PUTCHUNKS: turns (one slice of each setting per turn), and seconds per slice. */
const TURNS = 8;
const SLICE_SECONDS = 2;
/** UG: turns of one 64 MiB write per setting. */
const UG_TURNS = 4;
const log = (m: string) => process.stderr.write(`bench: ${m}\n`);

/** Switches the server's append-only file, and waits for the rewrite that turning it on starts. */
async function setMode(redis: Redis, mode: Mode): Promise<void> {
  if (mode === 'off') {
    await redis.config('SET', 'appendonly', 'no');
    return;
  }
  await redis.config('SET', 'appendfsync', mode);
  await redis.config('SET', 'appendonly', 'yes');
  for (;;) {
    const info = await redis.info('persistence');
    if (/aof_enabled:1/.test(info) && /aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info)) return;
    await sleep(50);
  }
}

/** The modes in turn, each turn in another order (a rotation), so no setting always runs first. */
function rotation(turn: number): Mode[] {
  return MODES.map((_, i) => MODES[(i + turn) % MODES.length]!);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

type Figures = Record<Mode, number[]>;

/** Runs `measure` once per setting per turn; the figures by setting, turn by turn. */
async function alternate(redis: Redis, turns: number, what: string, measure: (mode: Mode, turn: number) => Promise<number>): Promise<Figures> {
  const figures: Figures = { off: [], everysec: [], always: [] };
  for (let turn = 0; turn < turns; turn++) {
    log(`${what}: turn ${turn + 1}/${turns}`);
    for (const mode of rotation(turn)) {
      await setMode(redis, mode);
      figures[mode].push(await measure(mode, turn));
    }
  }
  return figures;
}

function rows(name: (mode: Mode) => string, f: Figures, unit: string, detail: string): Row[] {
  const list = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(' / ');
  return (['everysec', 'always'] as const).map((mode) => {
    const ratios = f[mode].map((x, i) => x / f.off[i]!);
    const r = median(ratios);
    const row: Row = {
      name: name(mode), value: median(f[mode]), unit, baseline: median(f.off), baselineName: 'AOF off (median)',
      note: `median of the per-turn ratios to off: ${r.toFixed(2)}×; ${detail}: ${list(f[mode])} ${unit} (off: ${list(f.off)})`,
    };
    if (mode === 'everysec') {
      row.target = 'turn ratio ≥ 0.9';
      row.pass = r >= 0.9;
    }
    return row;
  });
}

export async function aofBenchmarks(): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-bench-aof-'));
  const src = join(dir, 'src.bin');
  writeFileSync(src, randomBytes(SIZE));
  const server = await startRedisServer({ quiet: true, persist: { appendfsync: 'everysec' } });
  const redis = new Redis(server.url);
  try {
    log('AOF: a gateway on a redis-server of its own, warmed up');
    const g = await startBenchGateway({ redisUrl: server.url });
    let put: Figures;
    try {
      const load = gatewayPostLoad(g, 8000);
      try {
        await load.warmUp();
        put = await alternate(redis, TURNS, 'PUTCHUNKS, AOF off / everysec / always', async () => chunkMBps(await load.run(SLICE_SECONDS)));
      } finally {
        load.close();
      }
    } finally {
      await g.stop();
    }
    log('AOF: a UG and an RG on the same redis-server');
    const v = await startBenchVolume(redis, server.url);
    let ug: Figures;
    try {
      ug = await alternate(redis, UG_TURNS, 'UG write 64 MiB, AOF off / everysec / always',
        async (mode, turn) => SIZE / 1e6 / (await writeThrough(v, `/aof/${mode}-${turn}.bin`, src)));
    } finally {
      await v.stop();
    }
    return {
      rows: [
        ...rows((m) => `POST PUTCHUNKS 1 MiB, MB/s (${POSTS_IN_FLIGHT} in flight), Redis AOF ${m}`, put, 'MB/s', `${TURNS} turns of ${SLICE_SECONDS} s slices`),
        ...rows((m) => `UG write 64 MiB, 1 MiB blocks, 1 RG, Redis AOF ${m}`, ug, 'MB/s', `${UG_TURNS} turns of one write`),
      ],
      raw: { put, ug },
    };
  } finally {
    redis.disconnect();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
