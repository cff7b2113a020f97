// The HTTP load generator of the GET benchmarks: closed-loop keep-alive GETs from several
// processes (bench/load-worker.ts), so that the generator is not what limits the figure; the CPU
// it used is reported with every run. Rates count 2xx answers over the slowest process's window.
import { forkBench, ticksOf, type Child } from './support.js';
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
