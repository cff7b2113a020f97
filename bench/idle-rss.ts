// Memory of a default replica gateway at rest: `sgw start --demo rg` (the demo's RG alone, as its
// config file sets it up: its private redis-server, the http actor, one process for its driver
// modes) in a temp folder, left idle, then the RSS and the PSS of every process of its tree summed. RSS counts the pages processes share (the node binary,
// ~40 MB resident in each) once per process; PSS divides them among their sharers, so its sum is
// what the gateway really holds.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../actors/supervisor/embedded-redis.js';
import { CLI, stopChild } from '../test/support/gateway.js';
import { childrenOf, sleep } from './support.js';

export interface TreeMemory {
  /** Per process: its command (shortened) and RSS, PSS, anonymous RSS in KiB. */
  processes: { pid: number; args: string; rssKb: number; pssKb: number; anonKb: number }[];
  rssKb: number;
  pssKb: number;
}

function rollup(pid: number): { rssKb: number; pssKb: number; anonKb: number } | null {
  try {
    const smaps = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (text: string, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    return { rssKb: kb(smaps, 'Rss'), pssKb: kb(smaps, 'Pss'), anonKb: kb(status, 'RssAnon') };
  } catch {
    return null;
  }
}

/** Memory of a process and all its descendants. */
export function treeMemory(root: number): TreeMemory {
  const processes: TreeMemory['processes'] = [];
  const todo = [{ pid: root, args: 'sgw start' }];
  while (todo.length > 0) {
    const p = todo.pop()!;
    const m = rollup(p.pid);
    const role = / actor (\S+)/.exec(p.args)?.[1];
    if (m) processes.push({ pid: p.pid, args: role ?? p.args.split(' ')[0]!.split('/').pop()!, ...m });
    todo.push(...childrenOf(p.pid));
  }
  return { processes, rssKb: processes.reduce((a, p) => a + p.rssKb, 0), pssKb: processes.reduce((a, p) => a + p.pssKb, 0) };
}

/** Starts the demo's RG alone in a temp folder, waits until it serves and then `idleSeconds`, and measures it. */
export async function idleGatewayMemory(idleSeconds: number): Promise<TreeMemory> {
  const home = mkdtempSync(join(tmpdir(), 'sgw-bench-idle-'));
  const port = await freePort();
  const proc = spawn(process.execPath, [CLI, 'start', '--demo', 'rg'], {
    cwd: home, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SGW_HOME: join(home, '.sgw'), SGW_PORT: String(port), SGW_LOG_LEVEL: 'warn' },
  });
  let err = '';
  proc.stderr!.on('data', (d) => { err += d; });
  try {
    const deadline = Date.now() + 60_000;
    while (!err.includes('stop with')) {
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`the demo RG did not start: ${err}`);
      await sleep(200);
    }
    await sleep(idleSeconds * 1000);
    return treeMemory(proc.pid!);
  } finally {
    await stopChild(proc, 20_000);
    rmSync(home, { recursive: true, force: true });
  }
}
