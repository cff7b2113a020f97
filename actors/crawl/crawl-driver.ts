// The crawl actor's view of an AG driver, whatever its language: next_dataset() to call over and
// over, refresh() for the refresh queue, and the lifecycle around them. A TypeScript driver runs
// in the actor's process (its crawl() reaches the actor through a global); a driver.py runs in
// Python chassis processes whose crawl() comes back to the actor as an upcall.
import type { Logger } from 'pino';
import type { GatewayConfig } from '../../proto/config/config.js';
import type { CallResult, IncomingCall } from '../../queues/ask.js';
import { isPythonBundle, loadDriverModule } from '../../drivers/bundle.js';
import { callDriver, DriverHung, type DriverFunction } from '../../drivers/chassis.js';
import { Errno } from '../../drivers/errno.js';
import { checkMetadataCommand, CRAWL_HANDLER, type MetadataCommand } from '../../drivers/helpers.js';
import type { OpenBundle } from '../../drivers/open-driver.js';
import { PythonDriverPool } from '../../drivers/python-pool.js';

export interface CrawlDriver {
  hasNextDataset: boolean;
  hasRefresh: boolean;
  /** Loads the driver and runs driver_init; false when it refuses to start. */
  start(): Promise<boolean>;
  /** One next_dataset() call: true while more may come. */
  nextDataset(): Promise<boolean>;
  refresh(call: IncomingCall): Promise<CallResult>;
  shutdown(): Promise<void>;
}

/** next_dataset may wait for changes as long as it likes; this only bounds a Python call's frame. */
const NEXT_DATASET_DEADLINE_MS = 24 * 3600_000;

export function crawlDriver(config: GatewayConfig, opened: OpenBundle, apply: (cmd: MetadataCommand) => Promise<number>, log: Logger): CrawlDriver {
  const methods = new Set(opened.bundle.meta.methods);
  const hasNextDataset = methods.has('next_dataset');
  const hasRefresh = methods.has('refresh');
  if (isPythonBundle(opened.bundle)) return pythonCrawlDriver(config, opened, apply, log, hasNextDataset, hasRefresh);

  const loaded = loadDriverModule(opened.bundle, config.actors.work_dir);
  const method = (name: string) => loaded.methods.get(name) as DriverFunction | undefined;
  return {
    hasNextDataset, hasRefresh,
    async start() {
      (globalThis as Record<symbol, unknown>)[CRAWL_HANDLER] = apply;
      const init = method('driver_init');
      return !init || (await init(opened.config, opened.secrets)) !== false;
    },
    async nextDataset() {
      return (await method('next_dataset')!(opened.config, opened.secrets)) !== false;
    },
    // A refresh that throws or outlives its deadline fails that call; the crawl goes on.
    refresh: (call) => callDriver(method('refresh')!, 'refresh', call, opened.config, opened.secrets)
      .catch((err: Error) => ({ rc: err instanceof DriverHung ? -Errno.ETIMEDOUT : -Errno.EIO, error: err.message })),
    async shutdown() {
      await method('driver_shutdown')?.();
    },
  };
}

function pythonCrawlDriver(
  config: GatewayConfig, opened: OpenBundle, apply: (cmd: MetadataCommand) => Promise<number>, log: Logger,
  hasNextDataset: boolean, hasRefresh: boolean,
): CrawlDriver {
  // A command from Python is checked as one from a TypeScript driver would be.
  const onCrawl = async (cmd: unknown) => {
    const checked = checkMetadataCommand(cmd);
    return checked ? apply(checked) : -Errno.EINVAL;
  };
  const pool = (mode: 'crawl' | 'refresh', method: string) => new PythonDriverPool({
    mode, method, config: opened.bundle.config, secrets: opened.secretsJson, code: Buffer.from(opened.bundle.code, 'utf8'),
    size: 1, maxFrameBytes: config.limits.max_upload_bytes, startTimeoutMs: config.limits.call_timeout_ms + 5_000,
    env: { SYNDICATE_GATEWAY_ID: String(config.gateway.id), SYNDICATE_VOLUME_ID: String(config.gateway.volume_id), SYNDICATE_USER_ID: String(config.gateway.user_id) },
    logger: log, onCrawl,
  });
  const crawl = hasNextDataset ? pool('crawl', 'next_dataset') : null;
  const refresh = hasRefresh ? pool('refresh', 'refresh') : null;
  process.once('exit', () => { crawl?.killAll(); refresh?.killAll(); });
  return {
    hasNextDataset, hasRefresh,
    async start() {
      const answers = await Promise.all([crawl?.start(), refresh?.start()]);
      return answers.every((a) => a === undefined || a === 'ready');
    },
    async nextDataset() {
      const r = await crawl!.call({ request: Buffer.alloc(0), requestId: undefined, deadline: Date.now() + NEXT_DATASET_DEADLINE_MS, jobId: undefined });
      if (r.rc !== 0) throw new Error(`next_dataset failed: rc ${r.rc}${r.error ? ` (${r.error})` : ''}`);
      return r.value === '1';
    },
    refresh: (call) => refresh!.call(call),
    async shutdown() {
      await Promise.all([crawl?.close(5_000), refresh?.close(5_000)]);
    },
  };
}
