// `sgw status`: what a gateway's cluster looks like right now, read from the shared Redis only
// (the registry of live actors, BullMQ's job counts, the chunk store's published usage, INFO).
import { Queue } from 'bullmq';
import type { GatewayConfig } from '../../proto/config/config.js';
import { listActors } from '../../queues/registry.js';
import { withProgress } from './progress.js';
import { connectRedis, describeRedis, whenReady, type RedisClient, type RedisTarget } from '../../queues/redis.js';
import { MODES_OF_GATEWAY, queuePrefix, registeredQueues } from '../../queues/names.js';
import { redisTargetOf } from '../supervisor/state-redis.js';

const REDIS_WAIT_MS = 5_000;
const COUNTED = ['waiting', 'active', 'delayed', 'failed', 'completed'] as const;

export interface ActorStatus {
  role: string;
  host: string;
  pid: number;
  /** Driver bundle hash, shortened; empty for http and cache actors. */
  version: string;
  uptime_s: number;
  jobs: number;
  instance: string;
}

export type QueueStatus = { name: string } & Record<(typeof COUNTED)[number], number>;

export interface CacheStatus {
  host: string;
  pid: number;
  bytes: number;
  max_bytes: number;
  entries: number;
  memory_bytes: number;
  hits: number;
  misses: number;
  evictions: number;
}

export interface GatewayStatus {
  gateway: string;
  redis: string;
  at: string;
  actors: ActorStatus[];
  queues: QueueStatus[];
  cache: CacheStatus[];
  redis_memory: { used_bytes: number; peak_bytes: number; max_bytes: number; policy: string };
}

function infoField(info: string, name: string): string {
  return new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '';
}

async function queueCounts(redis: RedisClient, names: string[]): Promise<QueueStatus[]> {
  return Promise.all(names.map(async (name) => {
    const q = new Queue(name, { connection: redis, prefix: queuePrefix(name) });
    q.on('error', () => {});
    try {
      const c = await q.getJobCounts(...COUNTED);
      return { name, waiting: c.waiting ?? 0, active: c.active ?? 0, delayed: c.delayed ?? 0, failed: c.failed ?? 0, completed: c.completed ?? 0 };
    } finally {
      await q.close();
    }
  }));
}

export async function readStatus(config: GatewayConfig, target: RedisTarget, now = Date.now()): Promise<GatewayStatus> {
  const gateway = config.gateway.key;
  const redis = connectRedis(target, 'fail-fast', 'sgw-status');
  try {
    await whenReady(redis, REDIS_WAIT_MS).catch((err: Error) => {
      throw new Error(`Redis at ${describeRedis(target)} is not reachable (waited ${REDIS_WAIT_MS / 1000} s: ${err.message})`);
    });
    const roles = ['http', 'cache', ...MODES_OF_GATEWAY[config.gateway.type].map((m) => `driver:${m}`)];
    const [actors, queueNames, info] = await Promise.all([
      listActors(redis, gateway, roles),
      registeredQueues(redis).then((all) => all.filter((n) => n.startsWith(`${gateway}.`))),
      redis.info('memory'),
    ]);
    const queues = await queueCounts(redis, queueNames);
    return {
      gateway, redis: describeRedis(target), at: new Date(now).toISOString(),
      actors: actors
        .map((a) => ({
          role: a.role, host: a.host, pid: a.pid, version: a.version.slice(0, 12),
          uptime_s: Math.max(0, Math.round((now - a.started) / 1000)), jobs: a.jobs, instance: a.instance,
        }))
        .sort((a, b) => a.role.localeCompare(b.role) || a.host.localeCompare(b.host) || a.pid - b.pid),
      queues,
      cache: actors.filter((a) => a.role === 'cache' && a.usage.bytes !== undefined).map((a) => ({
        host: a.host, pid: a.pid, bytes: a.usage.bytes ?? 0, max_bytes: a.usage.max_bytes ?? 0, entries: a.usage.entries ?? 0,
        memory_bytes: a.usage.memory_bytes ?? 0, hits: a.usage.hits ?? 0, misses: a.usage.misses ?? 0, evictions: a.usage.evictions ?? 0,
      })),
      redis_memory: {
        used_bytes: Number(infoField(info, 'used_memory')),
        peak_bytes: Number(infoField(info, 'used_memory_peak')),
        max_bytes: Number(infoField(info, 'maxmemory')),
        policy: infoField(info, 'maxmemory_policy'),
      },
    };
  } finally {
    redis.disconnect();
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

export function formatDuration(s: number): string {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

/** Left-aligned text columns, right-aligned numbers. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const numeric = head.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  const width = head.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells
    .map((r) => r.map((c, i) => (numeric[i] ? c.padStart(width[i]!) : c.padEnd(width[i]!))).join('  ').trimEnd())
    .join('\n');
}

export function formatStatus(s: GatewayStatus): string {
  const out = [`gateway ${s.gateway}  ·  redis ${s.redis}  ·  ${s.at}`, ''];
  out.push(`ACTORS (${s.actors.length} live)`);
  out.push(s.actors.length === 0 ? '  none registered' : table(
    ['ROLE', 'HOST', 'PID', 'VERSION', 'UPTIME', 'JOBS'],
    s.actors.map((a) => [a.role, a.host, a.pid, a.version || '-', formatDuration(a.uptime_s), a.jobs]),
  ));
  out.push('', 'QUEUES');
  out.push(s.queues.length === 0 ? '  none yet (a queue appears with its first actor or call)' : table(
    ['QUEUE', 'WAITING', 'ACTIVE', 'DELAYED', 'FAILED', 'COMPLETED'],
    s.queues.map((q) => [q.name, q.waiting, q.active, q.delayed, q.failed, q.completed]),
  ));
  out.push('', 'CACHE');
  out.push(s.cache.length === 0 ? '  no live cache actor' : table(
    ['HOST', 'PID', 'USED', 'BUDGET', 'ENTRIES', 'IN MEMORY', 'HITS', 'MISSES', 'EVICTIONS'],
    s.cache.map((c) => [c.host, c.pid, formatBytes(c.bytes), formatBytes(c.max_bytes), c.entries, formatBytes(c.memory_bytes), c.hits, c.misses, c.evictions]),
  ));
  const m = s.redis_memory;
  out.push('', `REDIS  used ${formatBytes(m.used_bytes)} (peak ${formatBytes(m.peak_bytes)}), maxmemory ${m.max_bytes > 0 ? formatBytes(m.max_bytes) : 'none'}, policy ${m.policy}`);
  return `${out.join('\n')}\n`;
}

/** The `sgw status` command. */
export async function printStatus(config: GatewayConfig, json: boolean): Promise<void> {
  const target = redisTargetOf(config);
  const status = await withProgress('reading status from Redis', () => readStatus(config, target));
  process.stdout.write(json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
}
