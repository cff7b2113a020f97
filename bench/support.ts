// Shared pieces of the benchmark: bounded closed-loop load, latency statistics, child
// processes that say when they are ready, and process/Redis memory readings.
import { fork, execFileSync, type ChildProcess } from 'node:child_process';
import { get as httpGet, request as httpRequest, type Agent } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RedisClient } from '../queues/redis.js';
import { stopChild } from '../test/support/gateway.js';
import { withMallocTuning } from '../actors/supervisor/malloc.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface Latency {
  count: number;
  errors: number;
  seconds: number;
  /** Completed operations per second over the measured window. */
  rate: number;
  p50: number;
  p99: number;
  mean: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export interface LoopOptions {
  /** Operations in flight at any time (a closed loop: each finisher starts the next). */
  inFlight: number;
  /** Stop after this many operations... */
  maxCount: number;
  /** ...or after this long, whichever comes first. */
  maxMs: number;
  /** Operations run first and not measured. */
  warmup?: number;
  /** Called every `every` completed operations (index counted from the start of measurement). */
  onProgress?: { every: number; fn: (done: number) => Promise<void> };
}

/**
 * Runs op() with `inFlight` outstanding until maxCount or maxMs; an op that throws or resolves
 * false counts as an error. Latencies in ms.
 */
export async function closedLoop(opts: LoopOptions, op: (i: number) => Promise<boolean | void>): Promise<Latency> {
  if (opts.warmup) await closedLoop({ inFlight: opts.inFlight, maxCount: opts.warmup, maxMs: Math.min(opts.maxMs, 5000) }, op);
  const lat = new Float64Array(opts.maxCount);
  let started = 0;
  let done = 0;
  let errors = 0;
  const t0 = performance.now();
  const until = t0 + opts.maxMs;
  let tEnd = t0;
  let progress: Promise<void> = Promise.resolve();
  const lane = async () => {
    while (started < opts.maxCount && performance.now() < until) {
      const i = started++;
      const s = performance.now();
      let ok: boolean | void = false;
      try {
        ok = await op(i);
      } catch {
        ok = false;
      }
      const e = performance.now();
      lat[done++] = e - s;
      tEnd = e;
      if (ok === false) errors++;
      if (opts.onProgress && done % opts.onProgress.every === 0) {
        const n = done;
        progress = progress.then(() => opts.onProgress!.fn(n));
        await progress; // holds this lane only: a sample is taken while the others keep going
      }
    }
  };
  await Promise.all(Array.from({ length: opts.inFlight }, lane));
  const sorted = lat.subarray(0, done).sort();
  const seconds = (tEnd - t0) / 1000;
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: done, errors, seconds, rate: done / seconds,
    p50: percentile(sorted, 50), p99: percentile(sorted, 99), mean: sum / Math.max(1, done),
  };
}

export interface Child {
  proc: ChildProcess;
  pid: number;
  /** What the child sent with its ready message. */
  info: Record<string, unknown>;
  stop(): Promise<void>;
}

/** Forks one of the bench's own programs (dist/bench/<name>.js) and waits for {ready: true}. */
export function forkBench(name: string, args: string[], timeoutMs = 15_000): Promise<Child> {
  const script = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  // Baselines run with the actors' malloc settings: the comparison is of the code, not of glibc.
  const proc = fork(script, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: withMallocTuning(process.env) });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`${name} ${args[0] ?? ''} not ready within ${timeoutMs} ms`)); }, timeoutMs);
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited with ${code} before it was ready`)); });
    proc.on('message', (m: { ready?: boolean } & Record<string, unknown>) => {
      if (!m?.ready) return;
      clearTimeout(timer);
      proc.removeAllListeners('exit');
      resolve({ proc, pid: proc.pid!, info: m, stop: async () => { await stopChild(proc, 5000); } });
    });
  });
}

/** For the programs forkBench starts: exit with the parent, report ready. */
export function childReady(info: Record<string, unknown> = {}, stop: () => Promise<void> | void = () => {}): void {
  const quit = () => void Promise.resolve(stop()).finally(() => process.exit(0));
  process.once('SIGTERM', quit);
  process.once('SIGINT', quit);
  process.once('disconnect', quit);
  process.send?.({ ready: true, ...info });
}

export interface MemSample {
  rssKb: number;
  hwmKb: number;
}

/** VmRSS and VmHWM (peak RSS) of a process, in KiB; null once it is gone. */
export function memoryOf(pid: number): MemSample | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** Child processes of a pid with their command lines (`ps --ppid`). */
export function childrenOf(pid: number): { pid: number; args: string }[] {
  let out = '';
  try {
    out = execFileSync('ps', ['--ppid', String(pid), '-o', 'pid=,args='], { encoding: 'utf8' });
  } catch {
    return []; // ps exits 1 when there are none
  }
  return out.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => {
    const sp = l.indexOf(' ');
    return { pid: Number(l.slice(0, sp)), args: l.slice(sp + 1) };
  });
}

/** Polls the RSS of some processes and keeps the largest seen, while a phase runs. */
export class RssSampler {
  private readonly max = new Map<number, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly pids: number[], private readonly everyMs = 200) {}

  start(): this {
    const take = () => {
      for (const pid of this.pids) {
        const m = memoryOf(pid);
        if (m) this.max.set(pid, Math.max(this.max.get(pid) ?? 0, m.rssKb));
      }
    };
    take();
    this.timer = setInterval(take, this.everyMs);
    return this;
  }

  stop(): Map<number, number> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return this.max;
  }
}

/** Redis INFO memory used_memory, in bytes. */
export async function redisUsedMemory(redis: RedisClient): Promise<number> {
  const info = await redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? NaN);
}

export const MiB = 1024 * 1024;

/** Fields 3.. of /proc/<pid>/stat (index 0 is the state, 1 the ppid, 11-14 utime stime cutime cstime). */
function statOf(pid: number): number[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  } catch {
    return null;
  }
}

/** utime + stime of a process in clock ticks (1/100 s), or NaN once it is gone. */
export function ticksOf(pid: number): number {
  const f = statOf(pid);
  return f ? f[11]! + f[12]! : NaN;
}

/**
 * CPU ticks of the whole machine (busy, not idle or iowait) and of this process's tree (live
 * descendants, plus what reaped ones left in their parents' cutime/cstime), to tell how much of
 * the machine something else used meanwhile: others' test runs disturb the figures.
 */
export function cpuTicks(): { busy: number; mine: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const busy = cpu.reduce((a, b) => a + b, 0) - (cpu[3] ?? 0) - (cpu[4] ?? 0);
  const children = new Map<number, number[]>();
  const ticks = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statOf(Number(name));
    if (!f) continue;
    ticks.set(Number(name), f[11]! + f[12]! + f[13]! + f[14]!);
    children.set(f[1]!, [...(children.get(f[1]!) ?? []), Number(name)]);
  }
  let mine = 0;
  const todo = [process.pid];
  while (todo.length) {
    const pid = todo.pop()!;
    mine += ticks.get(pid) ?? 0;
    todo.push(...(children.get(pid) ?? []));
  }
  return { busy, mine };
}

/** Starts a CPU reading of named processes; the returned function gives cores used since, plus `others`. */
export function cpuWindow(pids: Record<string, number>): () => Record<string, number> {
  const t0 = performance.now();
  const start = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, ticksOf(pid)]));
  const machine = cpuTicks();
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const cores = (ticks: number) => Math.round((ticks / 100 / seconds) * 1000) / 1000;
    const out: Record<string, number> = {};
    for (const [k, pid] of Object.entries(pids)) out[k] = cores(ticksOf(pid) - start[k]!);
    const now = cpuTicks();
    out.others = cores(Math.max(0, now.busy - machine.busy - (now.mine - machine.mine)));
    return out;
  };
}

/** "http 0.93, redis 0.41, ..." for the busiest processes of a CPU reading. */
export function formatCpu(cpu: Record<string, number> | undefined): string {
  if (!cpu) return '';
  return Object.entries(cpu).filter(([, v]) => v >= 0.05).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
}

/** SGW_BENCH_PROFILE as the bench was started with (run.ts hands it only to the gateways). */
const PROFILE_DIR = process.env.SGW_BENCH_PROFILE;

/**
 * Runs `start` with the environment that makes the processes it starts write CPU profiles
 * (bench/cpu-profile.ts) when the bench was asked for them; this process is not profiled.
 */
export async function profiled<T>(start: () => Promise<T>): Promise<T> {
  if (!PROFILE_DIR) return start();
  const saved = { NODE_OPTIONS: process.env.NODE_OPTIONS, SGW_BENCH_PROFILE: process.env.SGW_BENCH_PROFILE };
  process.env.NODE_OPTIONS = `--import=${new URL('./cpu-profile.js', import.meta.url).href}`;
  process.env.SGW_BENCH_PROFILE = PROFILE_DIR;
  try {
    return await start();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** With profiling on, starts a new profile window in these processes (SIGUSR2, see cpu-profile.ts). */
export function cutProfiles(pids: number[]): void {
  if (!PROFILE_DIR) return;
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGUSR2');
    } catch {
      // gone
    }
  }
}

/** Microseconds of CPU per request of a process that used `cores` while serving `rate` requests/s. */
export function usPerRequest(cores: number | undefined, rate: number): number {
  return cores === undefined ? NaN : (cores / rate) * 1e6;
}

/** GET a URL and count its bytes without keeping them. */
/** PUT of a streamed body; resolves on 201, else rejects with the status and the answer's text. */
export function putStream(url: string, headers: Record<string, string>, body: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'PUT', headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.once('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`PUT ${url}: ${res.statusCode} ${Buffer.concat(parts).toString()}`))));
    });
    pipeline(body, req).catch(reject);
  });
}

export function countBytes(url: string, headers: Record<string, string> = {}, agent?: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { headers, ...(agent ? { agent } : {}) }, (res) => {
      let n = 0;
      res.on('data', (d: Buffer) => { n += d.length; });
      res.once('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`GET ${url}: ${res.statusCode}`))));
      res.once('error', reject);
    });
    req.once('error', reject);
  });
}
