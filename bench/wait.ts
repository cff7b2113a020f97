// What "acknowledged means replicated" costs: a namespace commit followed by WAIT for one replica,
// against the same commit on a Redis without replicas, in the same run. Two figures: commits one
// after another on one connection (the WAIT's own cost), and small-file writes/s through a UG
// (each write ends in one commit) on a volume whose Redis has a replica against one whose has none.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { Namespace, random64, type NamespaceEntry } from '../queues/namespace/namespace.js';
import { redisAt, connectRedis, whenReady, type RedisClient } from '../queues/redis.js';
import { NO_WAIT, type ReplicationPolicy } from '../queues/replicas.js';
import { testRedis } from '../test/support/redis.js';
import { startReplicated } from '../test/support/redis-topologies.js';
import { patternBytes, startUgVolume, type RunningVolume } from '../test/support/ug.js';
import { closedLoop, type Latency } from './support.js';
import type { Row } from './report.js';

const log = (m: string) => process.stderr.write(`bench: ${m}\n`);
const COMMITS = 5000;
const WRITERS = 4;
const FILE_BYTES = 1024;
/** Measured rounds per setting, alternated so a busy neighbour disturbs both alike. */
const ROUNDS = 3;

function entry(path: string): NamespaceEntry {
  return {
    path, type: 'file', file_id: random64(false), file_version: random64(true), size: 1, mode: 0o644, mtime_sec: 1n, mtime_nsec: 0,
    manifest_mtime_sec: 1n, manifest_mtime_nsec: 0, coordinator_id: 1n, read_ttl: 5000, write_ttl: 0,
  };
}

/** Sequential publishes of new files on one connection: µs per commit. */
async function commits(redis: RedisClient, policy: ReplicationPolicy): Promise<Latency> {
  const ns = new Namespace(redis, BigInt(Date.now()) * 1000n + BigInt(Math.floor(Math.random() * 1000)), { replication: policy });
  return closedLoop({ inFlight: 1, maxCount: COMMITS, maxMs: 30_000, warmup: 200 }, async (i) => (await ns.publishFile(entry(`/f${i}-${randomUUID()}`), null)) === 0);
}

/** Small files written through the UG by WRITERS clients for `seconds`. */
async function ugWrites(v: RunningVolume, seconds: number): Promise<Latency> {
  const bytes = patternBytes(FILE_BYTES, 7);
  return closedLoop({ inFlight: WRITERS, maxCount: 1_000_000, maxMs: seconds * 1000 }, async (i) => (await v.client.put(`/bench/${randomUUID()}-${i}`, bytes)).status === 201);
}

export async function waitBenchmarks(seconds: number): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  log('WAIT: a master with one replica, next to the private Redis (no replica)');
  const replicated = await startReplicated(1);
  const single = await testRedis();
  const clients: RedisClient[] = [];
  const volumes: RunningVolume[] = [];
  try {
    const policy: ReplicationPolicy = { acks: 1, timeoutMs: 2000 };
    const waiting = connectRedis(redisAt(replicated.master.url), 'patient', 'sgw-bench-wait');
    const plain = connectRedis(redisAt(single.url), 'patient', 'sgw-bench-nowait');
    clients.push(waiting, plain);
    await Promise.all(clients.map((c) => whenReady(c)));
    const commitRuns: { wait: Latency[]; none: Latency[] } = { wait: [], none: [] };
    for (let r = 0; r < ROUNDS; r++) {
      log(`WAIT: ${COMMITS} namespace commits one after another, round ${r + 1}/${ROUNDS}`);
      commitRuns.none.push(await commits(plain, NO_WAIT));
      commitRuns.wait.push(await commits(waiting, policy));
    }

    log('WAIT: a UG and an RG on each Redis');
    const masterClient = new Redis(replicated.master.url);
    const singleClient = new Redis(single.url);
    clients.push(masterClient, singleClient);
    const common = { rgs: 1, blockSize: 65536 };
    volumes.push(await startUgVolume(singleClient, { ...common, ugConfig: { replication: { acks: 0, timeout_ms: 2000 } } }));
    const onMaster = { redis: replicated.master.url };
    volumes.push(await startUgVolume(masterClient, { ...common, ugConfig: { ...onMaster, replication: { acks: 1, timeout_ms: 2000 } }, rgConfig: onMaster }));
    const writeRuns: { wait: Latency[]; none: Latency[] } = { wait: [], none: [] };
    for (let r = 0; r < ROUNDS; r++) {
      log(`WAIT: ${FILE_BYTES}-byte files through the UG, ${WRITERS} writers, round ${r + 1}/${ROUNDS}`);
      writeRuns.none.push(await ugWrites(volumes[0]!, seconds));
      writeRuns.wait.push(await ugWrites(volumes[1]!, seconds));
    }

    const best = (runs: Latency[], pick: (l: Latency) => number, better: (a: number, b: number) => boolean) =>
      runs.map(pick).reduce((a, b) => (better(b, a) ? b : a));
    const us = (runs: Latency[]) => best(runs, (l) => l.mean * 1000, (a, b) => a < b);
    const rate = (runs: Latency[]) => best(runs, (l) => l.rate, (a, b) => a > b);
    const errors = [...writeRuns.wait, ...writeRuns.none, ...commitRuns.wait, ...commitRuns.none].reduce((a, l) => a + l.errors, 0);
    const rows: Row[] = [
      {
        name: 'namespace commit + WAIT for 1 replica, one after another', value: us(commitRuns.wait), unit: 'µs',
        baseline: us(commitRuns.none), baselineName: 'the same commit on a Redis without replicas',
        note: `best of ${ROUNDS} rounds of ${COMMITS}; rounds ${commitRuns.wait.map((l) => (l.mean * 1000).toFixed(0)).join(' / ')} µs vs ${commitRuns.none.map((l) => (l.mean * 1000).toFixed(0)).join(' / ')} µs${errors ? `; ${errors} operations failed` : ''}`,
      },
      {
        name: `UG ${FILE_BYTES}-byte file writes/s, Redis with 1 replica (WAIT), ${WRITERS} writers`, value: rate(writeRuns.wait), unit: '/s',
        baseline: rate(writeRuns.none), baselineName: 'Redis without replicas',
        note: `best of ${ROUNDS} alternated rounds of ${seconds} s; rounds ${writeRuns.wait.map((l) => l.rate.toFixed(0)).join(' / ')} vs ${writeRuns.none.map((l) => l.rate.toFixed(0)).join(' / ')}/s`,
      },
    ];
    return { rows, raw: { commitRuns, writeRuns } };
  } finally {
    await Promise.all(volumes.map((v) => v.stop()));
    for (const c of clients) c.disconnect();
    await replicated.stop();
  }
}
