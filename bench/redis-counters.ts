// Redis's own counters, read before and after a measured run, for figures per request: commands
// (INFO commandstats), CPU (INFO cpu) and bytes in and out (INFO stats). Redis counts a command a
// Lua script runs both in its own line and inside the script's (EVALSHA's calls and µs include it).
import type { RedisClient } from '../queues/redis.js';

export interface CommandCount {
  calls: number;
  usec: number;
}

export interface RedisCounters {
  /** Per command name as INFO spells it, lower case ("evalsha", "client|setname"). */
  commands: Record<string, CommandCount>;
  /** used_cpu_sys + used_cpu_user: the whole redis-server process, every thread. */
  cpuSeconds: number;
  netInputBytes: number;
  netOutputBytes: number;
}

/** Commands that run other commands: their calls are the client's, their µs include the inner ones. */
export const SCRIPT_COMMANDS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro']);

function field(info: string, name: string): number {
  return Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
}

export async function readRedisCounters(redis: RedisClient): Promise<RedisCounters> {
  // One round trip each, in this order: the INFO calls themselves are left out of the deltas.
  const stats = await redis.info('commandstats');
  const cpu = await redis.info('cpu');
  const net = await redis.info('stats');
  const commands: Record<string, CommandCount> = {};
  for (const m of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    commands[m[1]!] = { calls: Number(m[2]), usec: Number(m[3]) };
  }
  return {
    commands,
    cpuSeconds: field(cpu, 'used_cpu_sys') + field(cpu, 'used_cpu_user'),
    netInputBytes: field(net, 'total_net_input_bytes'),
    netOutputBytes: field(net, 'total_net_output_bytes'),
  };
}

/** What Redis did between two readings (the measurement's own INFO commands left out). */
export function countersBetween(before: RedisCounters, after: RedisCounters): RedisCounters {
  const commands: Record<string, CommandCount> = {};
  for (const [name, c] of Object.entries(after.commands)) {
    if (name === 'info') continue;
    const b = before.commands[name] ?? { calls: 0, usec: 0 };
    if (c.calls > b.calls) commands[name] = { calls: c.calls - b.calls, usec: c.usec - b.usec };
  }
  return {
    commands,
    cpuSeconds: after.cpuSeconds - before.cpuSeconds,
    netInputBytes: after.netInputBytes - before.netInputBytes,
    netOutputBytes: after.netOutputBytes - before.netOutputBytes,
  };
}

/** Every command execution, those inside scripts included. */
export function totalCalls(c: RedisCounters): number {
  return Object.values(c.commands).reduce((a, x) => a + x.calls, 0);
}

/** Script runs (EVALSHA and kin): each one round trip of a client. */
export function scriptCalls(c: RedisCounters): number {
  return Object.entries(c.commands).filter(([n]) => SCRIPT_COMMANDS.has(n)).reduce((a, [, x]) => a + x.calls, 0);
}

/** The `n` commands with the most calls. */
export function topCommands(c: RedisCounters, n: number): [string, CommandCount][] {
  return Object.entries(c.commands).sort((a, b) => b[1].calls - a[1].calls).slice(0, n);
}
