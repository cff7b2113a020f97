// The HTTP load generator of the GET benchmarks: closed-loop keep-alive GETs from several
// processes (bench/load-worker.ts), so that the generator is not what limits the figure; the CPU
// it used is reported with every run. Rates count 2xx answers over the slowest process's window.
import { cpuWindow, forkBench, ticksOf, type Child } from './support.js';
import type { WorkerResult, WorkerTask } from './load-worker.js';

/** Processes the load is spread over (this machine has two cores; the server needs one). */
export const LOAD_PROCESSES = 2;

export interface HttpLoadOptions {
  url: string;
  connections: number;
  /** Hard time limit. */
  seconds: number;
  /** Paths requested in order, round and round; with `once`, each once (the run may end early). */
  paths: string[];
  once?: boolean;
  processes?: number;
}

export interface HttpLoad {
  /** 2xx responses per second. */
  rate: number;
  ok: number;
  failed: number;
  seconds: number;
  p50: number;
  p99: number;
  /** Mean body bytes of a response (a sanity check of what was served). */
  bytesPerResponse: number;
  statuses: Record<string, number>;
  /** CPU cores the generator's processes used meanwhile. */
  generatorCores: number;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function runTask(w: Child, task: WorkerTask): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const onExit = () => reject(new Error('a load generator process exited'));
    w.proc.once('exit', onExit);
    const onMessage = (m: { result?: WorkerResult }) => {
      if (!m.result) return;
      w.proc.off('message', onMessage);
      w.proc.off('exit', onExit);
      resolve(m.result);
    };
    w.proc.on('message', onMessage);
    w.proc.send({ task });
  });
}

export async function httpLoad(o: HttpLoadOptions): Promise<HttpLoad> {
  const n = Math.max(1, Math.min(o.processes ?? LOAD_PROCESSES, o.connections));
  const workers = await Promise.all(Array.from({ length: n }, () => forkBench('load-worker', [])));
  try {
    // Worker k gets paths k, k+n, ...: with `once`, no path is asked twice.
    const tasks = workers.map((_, k): WorkerTask => ({
      url: o.url, seconds: o.seconds, once: o.once ?? false,
      connections: Math.floor(o.connections / n) + (k < o.connections % n ? 1 : 0),
      paths: o.paths.filter((_p, i) => i % n === k),
    }));
    const t0 = workers.map((w) => ticksOf(w.pid));
    const started = performance.now();
    const results = await Promise.all(workers.map((w, k) => runTask(w, tasks[k]!)));
    const wall = (performance.now() - started) / 1000;
    const generatorCores = workers.reduce((a, w, k) => a + (ticksOf(w.pid) - t0[k]!), 0) / 100 / wall;
    const seconds = Math.max(...results.map((r) => r.ms)) / 1000;
    const ok = results.reduce((a, r) => a + r.ok, 0);
    const failed = results.reduce((a, r) => a + r.failed, 0);
    const statuses: Record<string, number> = {};
    for (const r of results) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
    const lat = Float64Array.from(results.flatMap((r) => r.latencies)).sort();
    return {
      rate: ok / seconds, ok, failed, seconds, p50: percentile(lat, 50), p99: percentile(lat, 99),
      bytesPerResponse: results.reduce((a, r) => a + r.bytes, 0) / Math.max(1, ok + failed), statuses,
      generatorCores: Math.round(generatorCores * 100) / 100,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

/** One side of a comparison, measured once: its load and the cores its processes used meanwhile. */
export interface Measured {
  load: HttpLoad;
  cpu: Record<string, number>;
}

/** Turns of an alternated comparison. */
export const TURNS = 3;

/** Runs `o` against `pids`' processes: the load and their CPU over it. */
export async function measuredLoad(o: HttpLoadOptions, pids: Record<string, number>): Promise<Measured> {
  const cpu = cpuWindow(pids);
  const load = await httpLoad(o);
  return { load, cpu: cpu() };
}

/**
 * Measures two sides in turns (a, b, a, b, ...). This VM's speed drifts by up to 2× within minutes
 * (its neighbours, its first-touch costs), so one side timed after the other compares two
 * machines; within a turn both see about the same one. Returns the turn whose ratio of rates a/b
 * is the median (its figures are the row's), and every turn's ratio.
 */
export async function alternated<A, B>(
  turns: number, a: (turn: number) => Promise<A>, b: (turn: number) => Promise<B>,
  rateOf: (side: A | B) => number = (side) => (side as Measured).load.rate,
): Promise<{ a: A; b: B; ratios: number[] }> {
  const done: { a: A; b: B; ratio: number }[] = [];
  for (let turn = 0; turn < turns; turn++) {
    const ma = await a(turn);
    const mb = await b(turn);
    done.push({ a: ma, b: mb, ratio: rateOf(ma) / rateOf(mb) });
  }
  const ratios = done.map((d) => d.ratio);
  const median = [...done].sort((x, y) => x.ratio - y.ratio)[Math.floor((done.length - 1) / 2)]!;
  return { a: median.a, b: median.b, ratios };
}

/** "0.81, 0.92, 0.88": the ratios of an alternated comparison's turns, for a row's note. */
export function formatRatios(ratios: number[]): string {
  return ratios.map((r) => r.toFixed(2)).join(', ');
}
