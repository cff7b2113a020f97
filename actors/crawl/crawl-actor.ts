// The crawl actor of an acquisition gateway. Every host may run one; exactly one crawls at a time:
// the holder of the gateway's crawl lease. The leader runs the driver's next_dataset() over and
// over, turns each crawl(cmd) into a namespace write fenced by the lease, and serves the refresh
// queue. Standbys wait for the lease; when the leader dies they take over within a lease TTL and
// start the crawl again (re-publishing with `put` is idempotent).
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../../proto/config/config.js';
import { EXIT } from '../exit-codes.js';
import { boundStop } from '../stop-bound.js';
import { waitForVersion } from '../driver-actor.js';
import { crawlDriver } from './crawl-driver.js';
import { Lease } from './lease.js';
import { claimAcquisitionGateway, Namespace, UNCHANGED } from '../../queues/namespace/namespace.js';
import { Heartbeat } from '../../queues/registry.js';
import type { CallResult, IncomingCall } from '../../queues/ask.js';
import { CallServer } from '../../queues/serve.js';
import { keys } from '../../queues/names.js';
import { connectRedis, whenReady, type RedisTarget } from '../../queues/redis.js';
import { Errno, errnoName } from '../../drivers/errno.js';
import type { MetadataCommand } from '../../drivers/helpers.js';
import { JobMac } from '../../queues/job-mac.js';
import { callRefusals, openChecked } from '../refusal-log.js';

export const LEASE_TTL_MS = 3000;
const RETRY_MS = 1000;

export interface CrawlActorOptions {
  config: GatewayConfig;
  redis: RedisTarget;
  version?: string;
  logger: Logger;
  exit?: (code: number) => void;
}

export interface CrawlStats {
  applied: number;
  unchanged: number;
  refused: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function runCrawlActor(opts: CrawlActorOptions): Promise<{ stop(code?: number): Promise<void>; stats: CrawlStats; version: string; seq: number }> {
  const { config } = opts;
  const gateway = config.gateway.key;
  const instance = randomUUID();
  const log = opts.logger.child({ actor: 'crawl', instance });
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  // Auto-pipelined: a driver's crawl commands issued together go out in one write.
  const redis = connectRedis(opts.redis, 'patient', { name: `sgw-crawl-${instance}`, autoPipeline: true });
  await whenReady(redis, 30_000);
  await claimAcquisitionGateway(redis, config);
  const hash = opts.version ?? (await waitForVersion(redis, gateway, log));
  const opened = await openChecked(redis, config, hash, log);
  if (!opened || opened === 'refused') {
    if (!opened) log.error({ hash }, 'driver bundle not found in Redis');
    redis.disconnect();
    exit(EXIT.CONFIG);
    throw new Error('driver bundle not found');
  }
  // Its writes wait for replicas on a connection of their own: lease renewals never queue behind a WAIT.
  const nsWriter = connectRedis(opts.redis, 'patient', `sgw-crawl-namespace-${instance}`);
  const namespace = new Namespace(redis, config.gateway.volume_id, { replication: config.replication, writer: nsWriter });
  // apply() is defined below; the driver calls it only once this actor leads the crawl.
  const driver = crawlDriver(config, opened, (cmd) => apply(cmd), log);
  const lease = new Lease(redis, keys.crawlLease(config.gateway.volume_id, gateway), instance, LEASE_TTL_MS);
  const beats = [new Heartbeat(redis, gateway, { instance, role: 'crawl', version: hash })];
  beats[0]!.start();
  const stats: CrawlStats = { applied: 0, unchanged: 0, refused: 0 };
  let stopping: Promise<void> | null = null;
  let refreshServer: CallServer | null = null;
  let renewTimer: NodeJS.Timeout | null = null;
  let leading = false;

  const stop = (code: number = EXIT.OK): Promise<void> => {
    stopping ??= (async () => {
      log.info({ code, leading, ...stats }, 'crawl actor stopping');
      if (renewTimer) clearInterval(renewTimer);
      const unbound = boundStop('crawl actor', code, config.limits.request_timeout_ms, log, exit);
      await Promise.all(beats.map((b) => b.stop()));
      await refreshServer?.close(config.limits.request_timeout_ms);
      try {
        await driver.shutdown();
      } catch (err) {
        log.warn({ err }, 'driver_shutdown threw');
      }
      // Freeing the lease lets a standby take over at once instead of after the TTL.
      if (leading) await lease.release().catch(() => {});
      unbound();
      redis.disconnect();
      nsWriter.disconnect();
      exit(code);
    })();
    return stopping;
  };

  const apply = async (cmd: MetadataCommand): Promise<number> => {
    if (stopping) return -Errno.ESTALE;
    const rc = await namespace.apply(cmd, config.gateway.id, { leaseKey: lease.key, token: lease.token });
    if (rc === -Errno.ESTALE) {
      log.error('lost the crawl lease; stopping so a standby can lead');
      void stop(EXIT.RECYCLE);
    }
    if (rc === UNCHANGED) stats.unchanged++;
    else if (rc < 0) stats.refused++;
    else stats.applied++;
    if (rc < 0) log.warn({ cmd: cmd.cmd, path: cmd.path, rc, errno: errnoName(rc) }, 'crawl command refused');
    else if (log.isLevelEnabled('debug')) log.debug({ cmd: cmd.cmd, path: cmd.path, rc }, 'crawl command');
    return rc === UNCHANGED ? 0 : rc;
  };

  const lead = async (): Promise<void> => {
    while (!stopping && !(await lease.acquire().catch(() => false))) await sleep(RETRY_MS);
    if (stopping) return;
    leading = true;
    log.info({ hash }, 'holding the crawl lease: crawling');
    renewTimer = setInterval(() => {
      lease.renew().then((ok) => {
        if (!ok && !stopping) {
          log.error('crawl lease expired; stopping so a standby can lead');
          void stop(EXIT.RECYCLE);
        }
      }, () => {});
    }, LEASE_TTL_MS / 3);
    if (!(await driver.start())) {
      log.error({ hash }, 'the driver refused to start (driver_init returned false, or it failed to load)');
      return void stop(EXIT.CONFIG);
    }
    if (driver.hasRefresh) {
      refreshServer = new CallServer({
        redis: opts.redis, gateway, mode: 'refresh', concurrency: 1,
        mac: JobMac.forGateway(config.gateway.private_key, gateway), onRefused: callRefusals(redis, gateway, 'refresh', log),
        handler: (call: IncomingCall): Promise<CallResult> => driver.refresh(call),
        onRecycle: () => log.warn('the refresh worker stopped taking jobs while jobs waited; replaced it'),
        onDone: (call, result) => {
          if (result.rc !== 0) log.warn({ rid: call.requestId, rc: result.rc, error: result.error }, 'refresh failed');
        },
      });
      await refreshServer.ready();
      const beat = new Heartbeat(redis, gateway, { instance, role: 'driver:refresh', version: hash });
      beat.start();
      beats.push(beat);
    }
    if (!driver.hasNextDataset) {
      log.warn('the driver has no next_dataset: nothing to crawl');
      return;
    }
    let failures = 0;
    while (!stopping) {
      try {
        const more = await driver.nextDataset();
        failures = 0;
        if (!more) {
          log.info(stats, 'next_dataset says the dataset is complete');
          return;
        }
      } catch (err) {
        failures++;
        log.error({ err: (err as Error).message, failures }, 'next_dataset threw; calling it again after a pause');
        await sleep(Math.min(10_000, RETRY_MS * failures));
      }
    }
  };
  void lead().catch((err: Error) => {
    log.error({ err: err.message }, 'crawl failed');
    void stop(EXIT.RECYCLE);
  });
  log.info({ hash }, 'crawl actor ready (standing by for the lease)');
  return { stop, stats, version: hash, seq: opened.manifest.seq };
}
