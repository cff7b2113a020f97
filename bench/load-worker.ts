// One process of the HTTP load generator (bench/load.ts): closed-loop GETs on keep-alive
// connections through node:http, whose native parser costs the client far less per response
// than autocannon's (which became the bottleneck of the AG's cache hits). Told what to do over
// IPC, it answers with its counts and latencies.
import { Agent, request } from 'node:http';
import { childReady } from './support.js';

export interface WorkerTask {
  url: string;
  connections: number;
  seconds: number;
  /** Paths this worker requests, in order. */
  paths: string[];
  /** Each path once (the run ends when they are used up); else round and round. */
  once: boolean;
}

export interface WorkerResult {
  ok: number;
  failed: number;
  bytes: number;
  /** Milliseconds from the start to the last response. */
  ms: number;
  statuses: Record<string, number>;
  latencies: number[];
}

function get(agent: Agent, url: URL, path: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve) => {
    const req = request({ host: url.hostname, port: url.port, path, agent }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => { bytes += d.length; });
      res.once('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.once('error', () => resolve({ status: 0, bytes }));
    });
    req.once('error', () => resolve({ status: 0, bytes: 0 }));
    req.end();
  });
}

async function run(task: WorkerTask): Promise<WorkerResult> {
  const url = new URL(task.url);
  const agent = new Agent({ keepAlive: true, maxSockets: task.connections });
  const statuses: Record<string, number> = {};
  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  let bytes = 0;
  let next = 0;
  const t0 = performance.now();
  const until = t0 + task.seconds * 1000;
  let last = t0;
  const lane = async () => {
    while (performance.now() < until && (!task.once || next < task.paths.length)) {
      const path = task.paths[next++ % task.paths.length]!;
      const s = performance.now();
      const r = await get(agent, url, path);
      last = performance.now();
      latencies.push(last - s);
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      bytes += r.bytes;
      if (r.status >= 200 && r.status < 300) ok++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: task.connections }, lane));
  agent.destroy();
  return { ok, failed, bytes, ms: last - t0, statuses, latencies };
}

process.on('message', (m: { task?: WorkerTask }) => {
  if (!m.task) return;
  void run(m.task).then((result) => process.send?.({ result }));
});
childReady();
