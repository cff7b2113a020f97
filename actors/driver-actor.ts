// A driver actor: one OS process serving one driver mode of one gateway. It loads a bundle
// version from Redis (no shared file system needed), consumes "<gateway>.<mode>", calls one
// driver method per job and answers on the asker's result list. A driver that throws or hangs
// costs that call only: the call fails, the actor drains and exits, its supervisor restarts it.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../proto/config/config.js';
import { Heartbeat } from '../queues/registry.js';
import type { CallResult, IncomingCall } from '../queues/ask.js';
import { CallServer } from '../queues/serve.js';
import { methodOf, type DriverMode } from '../queues/names.js';
import { connectRedis, whenReady, type RedisClient, type RedisTarget } from '../queues/redis.js';
import { currentBundleHash, isPythonBundle, loadDriverModule } from '../drivers/bundle.js';
import type { OpenBundle } from '../drivers/open-driver.js';
import { JobMac } from '../queues/job-mac.js';
import { callRefusals, openChecked } from './refusal-log.js';
import { callDriver, DriverHung, DriverThrew, type DriverFunction } from '../drivers/chassis.js';
import { Errno } from '../drivers/errno.js';

import { EXIT, NOT_NEEDED } from './exit-codes.js';
import { boundStop } from './stop-bound.js';

export { EXIT };

export interface DriverActorOptions {
  config: GatewayConfig;
  redis: RedisTarget;
  /** The modes this process serves: one (actors.driver_processes per_mode), or several (shared). */
  modes: DriverMode[];
  /** Bundle hash to run; default: the gateway's current version. */
  version?: string;
  logger: Logger;
  /** Process-level hooks (tests run actors in their own process through the CLI). */
  exit?: (code: number) => void;
}

export async function waitForVersion(redis: RedisClient, gateway: string, logger: Logger): Promise<string> {
  let warned = false;
  for (;;) {
    const hash = await currentBundleHash(redis, gateway);
    if (hash) return hash;
    if (!warned) logger.warn({ gateway }, 'no driver published yet; waiting for "sgw driver publish"');
    warned = true;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export async function runDriverActor(opts: DriverActorOptions): Promise<{ stop(code?: number): Promise<void>; version: string; seq: number }> {
  const { config } = opts;
  const gateway = config.gateway.key;
  const instance = randomUUID();
  const role = opts.modes.map((m) => `driver:${m}`).join('+');
  const log = opts.logger.child({ actor: role, instance });
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const redis = connectRedis(opts.redis, 'patient', `sgw-driver-${opts.modes.join('+')}-${instance}`);
  await whenReady(redis, 30_000);
  /** Ends the actor before it served anything (the exit hook does not return in production). */
  const giveUp = (code: number, fields: object, msg: string): never => {
    if (code === EXIT.OK) log.info(fields, msg);
    else log.error(fields, msg);
    redis.disconnect();
    exit(code);
    throw new Error(`driver actor gave up: ${msg}`);
  };

  const hash = opts.version ?? (await waitForVersion(redis, gateway, log));
  const opened = await openChecked(redis, config, hash, log);
  if (!opened) {
    return giveUp(EXIT.CONFIG, { hash }, 'driver bundle not found in Redis');
  }
  if (opened === 'refused') {
    redis.disconnect();
    exit(EXIT.CONFIG);
    throw new Error('driver actor gave up: its bundle was refused');
  }
  const python = isPythonBundle(opened.bundle);
  const driver = python
    ? await startPythonDriver(opts, opened, log)
    : await startNodeDriver(opts, opened, () => void stop(EXIT.RECYCLE), log);
  if (driver === 'not-implemented') {
    // Said before the exit, so that the supervisor does not start it again.
    await new Promise<void>((resolve) => (process.send ? process.send({ type: NOT_NEEDED }, () => resolve()) : resolve()));
    return giveUp(EXIT.OK, { hash, modes: opts.modes }, 'this driver version does not implement the mode');
  }
  if (driver === 'failed') {
    return giveUp(EXIT.CONFIG, { hash }, 'the driver refused to start (driver_init returned false, or it failed to load)');
  }
  const skipped = opts.modes.filter((m) => !driver.calls.has(m));
  if (skipped.length > 0) log.info({ hash, skipped }, 'this driver version does not implement these modes');

  // Per mode: its own queue worker and heartbeat, so readiness, status and metrics see modes, not processes.
  const served1 = driver.calls.size === 1;
  const served = [...driver.calls].map(([mode, call]) => {
    const heartbeat = new Heartbeat(redis, gateway, { instance: served1 ? instance : `${instance}.${mode}`, role: `driver:${mode}`, version: hash });
    const server = new CallServer({
      redis: opts.redis, gateway, mode, concurrency: config.actors.concurrency, handler: call,
      mac: JobMac.forGateway(config.gateway.private_key, gateway), onRefused: callRefusals(redis, gateway, mode, log),
      onRecycle: () => log.warn({ mode }, 'the queue worker stopped taking jobs while jobs waited; replaced it'),
      onDone: (c, result, ms) => {
        heartbeat.jobs++;
        if (result.rc !== 0 && result.rc !== -Errno.ENOENT) log.warn({ rid: c.requestId, mode, rc: result.rc, error: result.error, ms }, 'driver call failed');
        else if (log.isLevelEnabled('debug')) log.debug({ rid: c.requestId, mode, rc: result.rc, ms }, 'driver call');
      },
    });
    return { heartbeat, server };
  });
  let stopping: Promise<void> | null = null;
  let selfCheck: NodeJS.Timeout | undefined;
  const stop = (code = EXIT.OK as number): Promise<void> => {
    stopping ??= (async () => {
      log.info({ code }, 'driver actor stopping');
      clearInterval(selfCheck);
      const unbound = boundStop('driver actor', code, config.limits.request_timeout_ms, log, exit);
      await Promise.all(served.map((s) => s.heartbeat.stop()));
      await Promise.all(served.map((s) => s.server.close(config.limits.request_timeout_ms)));
      try {
        await driver.shutdown();
      } catch (err) {
        log.warn({ err }, 'driver_shutdown threw');
      }
      unbound();
      redis.disconnect();
      exit(code);
    })();
    return stopping;
  };

  await Promise.all(served.map((s) => s.server.ready()));
  for (const s of served) s.heartbeat.start();
  // The heartbeat has a connection of its own: an actor whose worker can no longer take jobs would
  // look alive forever. Recycle it instead, so its supervisor starts a fresh one.
  selfCheck = setInterval(() => {
    if (served.every((s) => s.server.healthy()) || stopping) return;
    log.error('a queue worker stopped taking jobs; recycling actor');
    void stop(EXIT.RECYCLE);
  }, 1000);
  selfCheck.unref();
  log.info({ hash, modes: [...driver.calls.keys()], concurrency: config.actors.concurrency, python }, 'driver actor ready');
  return { stop, version: hash, seq: opened.manifest.seq };
}

/** The driver's methods for this actor's modes, ready to serve calls. */
interface RunningDriver {
  /** By mode, a call of that mode's method; modes the driver lacks are absent. */
  calls: Map<DriverMode, (call: IncomingCall) => Promise<CallResult>>;
  shutdown(): Promise<void>;
}

type DriverStart = RunningDriver | 'not-implemented' | 'failed';

/** A TypeScript driver, loaded into this process once, whatever its modes. A throw or a hang costs the call and recycles the actor. */
async function startNodeDriver(opts: DriverActorOptions, opened: OpenBundle, recycle: () => void, log: Logger): Promise<DriverStart> {
  const { config } = opts;
  const { config: driverConfig, secrets } = opened;
  const loaded = loadDriverModule(opened.bundle, config.actors.work_dir);
  const calls: RunningDriver['calls'] = new Map();
  for (const mode of opts.modes) {
    const method = methodOf(config.gateway.type, mode);
    const fn = loaded.methods.get(method) as DriverFunction | undefined;
    if (!fn) continue;
    calls.set(mode, async (call) => {
      try {
        return await callDriver(fn, mode, call, driverConfig, secrets, method);
      } catch (err) {
        const hung = err instanceof DriverHung;
        if (!hung && !(err instanceof DriverThrew)) throw err;
        log.error({ rid: call.requestId, mode, err: (err as Error).message }, hung ? 'driver call hung; recycling actor' : 'driver threw; recycling actor');
        setImmediate(recycle);
        return { rc: hung ? -Errno.ETIMEDOUT : -Errno.EIO, error: (err as Error).message };
      }
    });
  }
  if (calls.size === 0) return 'not-implemented';
  const init = loaded.methods.get('driver_init') as DriverFunction | undefined;
  if (init && (await init(driverConfig, secrets)) === false) return 'failed';
  return {
    calls,
    async shutdown() {
      await (loaded.methods.get('driver_shutdown') as DriverFunction | undefined)?.();
    },
  };
}

/** A driver.py: per mode, a pool of Python chassis processes (each runs one method) that this actor restarts as needed. */
async function startPythonDriver(opts: DriverActorOptions, opened: OpenBundle, log: Logger): Promise<DriverStart> {
  const { config } = opts;
  // Loaded only for a driver.py: a TypeScript driver's actor does without it.
  const { PythonDriverPool } = await import('../drivers/python-pool.js');
  const calls: RunningDriver['calls'] = new Map();
  const pools: InstanceType<typeof PythonDriverPool>[] = [];
  const shutdown = async () => void (await Promise.all(pools.map((p) => p.close(5_000))));
  for (const mode of opts.modes) {
    const pool = new PythonDriverPool({
      mode, method: methodOf(config.gateway.type, mode), config: opened.bundle.config, secrets: opened.secretsJson, code: Buffer.from(opened.bundle.code, 'utf8'),
      size: config.actors.python_processes,
      maxFrameBytes: config.limits.max_upload_bytes,
      startTimeoutMs: config.limits.call_timeout_ms + 5_000,
      env: {
        SYNDICATE_GATEWAY_ID: String(config.gateway.id), SYNDICATE_VOLUME_ID: String(config.gateway.volume_id),
        SYNDICATE_USER_ID: String(config.gateway.user_id), SYNDICATE_CONFIG_PATH: config.file ?? '',
      },
      logger: opts.modes.length > 1 ? log.child({ mode }) : log,
    });
    process.once('exit', () => pool.killAll()); // no chassis outlives its actor
    const outcome = await pool.start();
    if (outcome === 'failed') {
      await shutdown();
      return 'failed';
    }
    if (outcome !== 'ready') continue;
    pools.push(pool);
    calls.set(mode, (call) => pool.call(call));
  }
  return calls.size === 0 ? 'not-implemented' : { calls, shutdown };
}
