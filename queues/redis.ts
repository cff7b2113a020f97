// Redis connections, made one way everywhere, to whichever Redis the user runs: one server (a
// redis:// or rediss:// URL), a Sentinel-watched master or a Redis Cluster. Two flavours: askers
// fail fast when Redis is away (so an HTTP request gets 503 at once instead of waiting in an
// offline queue), while workers and blocking loops wait and reconnect forever (BullMQ requires
// maxRetriesPerRequest: null). A refusal no reconnect can cure (a certificate the CA does not
// sign, a wrong password) ends the connection with a message that says so.
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';

export { Cluster, Redis };

/** A connection to any of the three: the commands sgw uses are the same on each. */
export type RedisClient = Redis | Cluster;

export interface HostPort {
  host: string;
  port: number;
}

/** TLS material, as PEM bytes (read from the files the config names). */
export interface RedisTls {
  ca: Buffer | null;
  cert: Buffer | null;
  key: Buffer | null;
}

/** Where Redis is and how to reach it: resolved once from the config, passed to every actor. */
export type RedisTarget =
  | { kind: 'single'; url: string; tls: RedisTls | null }
  | {
    kind: 'sentinel'; sentinels: HostPort[]; name: string; user: string | null; password: string | null;
    sentinelPassword: string | null; tls: RedisTls | null;
  }
  | { kind: 'cluster'; nodes: HostPort[]; user: string | null; password: string | null; tls: RedisTls | null };

/** A plain redis:// URL target (the private server, tests, benchmarks). */
export function redisAt(url: string): RedisTarget {
  return { kind: 'single', url, tls: null };
}

/** The URL without its password (what we print ends up in tickets and chat). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/** One line naming the Redis, without secrets: "rediss://127.0.0.1:6380/", "sentinel mymaster at ...". */
export function describeRedis(target: RedisTarget): string {
  const list = (nodes: HostPort[]) => nodes.map((n) => `${n.host}:${n.port}`).join(',');
  switch (target.kind) {
    case 'single': return `${redactUrl(target.url)}${target.tls && target.url.startsWith('redis:') ? ' (TLS)' : ''}`;
    case 'sentinel': return `sentinel master "${target.name}" via ${list(target.sentinels)}${target.tls ? ' (TLS)' : ''}`;
    case 'cluster': return `cluster ${list(target.nodes)}${target.tls ? ' (TLS)' : ''}`;
  }
}

/** A refusal no reconnect cures: the connection ends and says why. */
export class RedisRefusedError extends Error {
  override name = 'RedisRefusedError';
}

// Certificate checks that fail the same way on every attempt (node:tls error codes).
const TLS_TRUST_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_REJECTED',
]);

/** The refusal an error stands for, or null when trying again may help. */
function refusalOf(err: Error | null, target: RedisTarget): RedisRefusedError | null {
  if (!err) return null;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const where = describeRedis(target);
  if (TLS_TRUST_CODES.has(code)) {
    return new RedisRefusedError(`Redis at ${where}: its TLS certificate was refused (${code}: ${err.message}); `
      + 'check redis.tls.ca (the CA that signed the server certificate) and the host name');
  }
  if (/^(WRONGPASS|NOAUTH)/.test(err.message)) {
    return new RedisRefusedError(`Redis at ${where} refused the credentials (${err.message}); check the user and password of "redis"`);
  }
  return null;
}

const backoff = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000);

/** After a failover a connection may still reach the old master: reconnect and send the command again. */
const reconnectOnError = (err: Error) => (/^(READONLY|LOADING|MASTERDOWN)/.test(err.message) ? 2 : false);

function tlsOptions(tls: RedisTls | null): ConnectionOptions | undefined {
  if (!tls) return undefined;
  const opts: ConnectionOptions = {};
  if (tls.ca) opts.ca = tls.ca;
  if (tls.cert) opts.cert = tls.cert;
  if (tls.key) opts.key = tls.key;
  return opts;
}

export interface ConnectOptions {
  /** CLIENT SETNAME, to find the connection in CLIENT LIST. */
  name?: string;
  /** Commands issued in the same tick go out in one write (per node in a Cluster). */
  autoPipeline?: boolean;
  /** A command unanswered this long fails (a server that hangs instead of closing: see ask.ts). */
  commandTimeoutMs?: number;
}

/** A new connection of the given flavour to the target. */
export function connectRedis(target: RedisTarget, kind: 'fail-fast' | 'patient', opts: ConnectOptions | string = {}): RedisClient {
  const { name, autoPipeline, commandTimeoutMs } = typeof opts === 'string' ? { name: opts, autoPipeline: false, commandTimeoutMs: undefined } : opts;
  let fatal: RedisRefusedError | null = null;
  const retry = (times: number) => (fatal ? null : backoff(times));
  const perCommand: RedisOptions = kind === 'fail-fast'
    ? { enableOfflineQueue: false, maxRetriesPerRequest: 1 }
    : { maxRetriesPerRequest: null };
  const common: RedisOptions = {
    ...perCommand, connectionName: name, reconnectOnError, enableAutoPipelining: autoPipeline === true,
    ...(commandTimeoutMs ? { commandTimeout: commandTimeoutMs } : {}),
    ...(target.kind !== 'single' && target.user !== null ? { username: target.user } : {}),
    ...(target.kind !== 'single' && target.password !== null ? { password: target.password } : {}),
  };
  const tls = tlsOptions(target.tls);
  let client: RedisClient;
  switch (target.kind) {
    case 'single':
      client = new Redis(target.url, { ...common, retryStrategy: retry, ...(tls ? { tls } : {}) });
      break;
    case 'sentinel':
      client = new Redis({
        ...common, retryStrategy: retry,
        sentinels: target.sentinels, name: target.name,
        ...(target.sentinelPassword !== null ? { sentinelPassword: target.sentinelPassword } : {}),
        ...(tls ? { tls, sentinelTLS: tls, enableTLSForSentinelMode: true } : {}),
        sentinelRetryStrategy: (times: number) => (fatal ? null : backoff(times)),
        // A master that hangs instead of closing its connections is noticed through the
        // sentinels' +switch-master announcement.
        failoverDetector: true,
      });
      keepConnecting(client, () => fatal !== null);
      break;
    case 'cluster': {
      const { enableOfflineQueue, enableAutoPipelining, ...redisOptions } = common;
      const clusterOptions: ClusterOptions = {
        redisOptions: { ...redisOptions, ...(tls ? { tls } : {}) },
        enableOfflineQueue: enableOfflineQueue ?? true,
        enableAutoPipelining: enableAutoPipelining ?? false,
        clusterRetryStrategy: retry,
        // Slots move on failover: learn the new owners soon even when nobody is redirected.
        slotsRefreshInterval: 2000,
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 300,
        // TLS checks the certificate against the address the cluster announces, as given.
        ...(tls ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) } : {}),
      };
      client = new Cluster(target.nodes, clusterOptions);
      client.on('node error', (err: Error) => {
        fatal ??= refusalOf(err, target);
      });
      break;
    }
  }
  // Errors surface on the commands that fail; an unhandled 'error' event would crash the actor.
  client.on('error', (err: Error) => {
    fatal ??= refusalOf(err, target);
    // The cluster wraps the last node's error.
    fatal ??= refusalOf((err as { lastNodeError?: Error }).lastNodeError ?? null, target);
  });
  refusals.set(client, () => fatal);
  targets.set(client, target);
  return client;
}

const refusals = new WeakMap<RedisClient, () => RedisRefusedError | null>();
const targets = new WeakMap<RedisClient, RedisTarget>();

/** The target a connection made by connectRedis reaches (null for one made elsewhere). */
export function targetOf(redis: RedisClient): RedisTarget | null {
  return targets.get(redis) ?? null;
}

/** TLS options for a connection to the target's nodes or sentinels. */
export function tlsOf(target: RedisTarget): ConnectionOptions | undefined {
  return tlsOptions(target.tls);
}

/**
 * ioredis 6 gives up a Sentinel connection for good (status "end") when the failover detector of
 * its previous link disconnects it while it is asking the sentinels where the master went: seen on
 * every front host of a multi-host bed after a master's kill under load, unready until restarted.
 * A connection that nobody closed and no refusal ended is connected again.
 */
function keepConnecting(client: Redis, refused: () => boolean): void {
  let closing = false;
  let attempts = 0;
  const quit = client.quit.bind(client);
  const disconnect = client.disconnect.bind(client);
  client.quit = ((...args: Parameters<Redis['quit']>) => { closing = true; return quit(...args); }) as Redis['quit'];
  client.disconnect = (reconnect = false) => {
    if (!reconnect) closing = true;
    disconnect(reconnect);
  };
  client.on('ready', () => { attempts = 0; });
  client.on('end', () => {
    if (closing || refused()) return;
    setTimeout(() => {
      if (!closing && client.status === 'end') client.connect().catch(() => {});
    }, backoff(++attempts)).unref();
  });
}

/** Why the connection gave up for good, or null while it is fine or still trying. */
export function refusalOfConnection(redis: RedisClient): RedisRefusedError | null {
  return refusals.get(redis)?.() ?? null;
}

/**
 * Resolves once the connection is ready; rejects after timeoutMs, or at once with the reason when
 * Redis refused it for good (a certificate, a password).
 */
export function whenReady(redis: RedisClient, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('end', onEnd);
      if (err) reject(err);
      else resolve();
    };
    const onReady = () => done();
    const onEnd = () => done(refusalOfConnection(redis) ?? new Error('the Redis connection was closed'));
    const timer = setTimeout(() => done(refusalOfConnection(redis) ?? new Error(`Redis not reachable within ${timeoutMs} ms`)), timeoutMs);
    redis.once('ready', onReady);
    redis.once('end', onEnd);
    if (redis.status === 'end') onEnd();
  });
}

// What ioredis says when a command could not reach Redis, and what Redis says while it cannot
// take writes (loading, failing over, a replica, a cluster without a master for the slot).
const UNAVAILABLE = new RegExp(`^(${[
  'Connection is closed', 'Connection is aborted', 'Command aborted due to connection close', "Stream isn't writeable",
  'Reached the max retries per request', 'Failed to refresh slots cache', 'None of startup nodes is available',
  'Too many Cluster redirections', "Cluster isn't ready", 'Cluster is disconnect', 'Node is disconnected', 'Command timed out',
  'connect ECONNREFUSED', 'connect ETIMEDOUT',
  'LOADING', 'READONLY', 'MASTERDOWN', 'CLUSTERDOWN', 'TRYAGAIN', 'MOVED', 'ASK', 'NOREPLICAS', 'UNBLOCKED',
].join('|')})`);

/** True for an error that means "Redis is away or failing over": the caller should answer 503. */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err instanceof RedisRefusedError) return true;
  const name = err.name;
  if (name === 'MaxRetriesPerRequestError' || name === 'ClusterAllFailedError') return true;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT') return true;
  return UNAVAILABLE.test(err.message);
}
