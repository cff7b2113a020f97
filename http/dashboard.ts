// The Bull dashboard (bull-board) over every sgw queue that shares the Redis, behind the admin
// credential and read-only unless admin.allow_writes. Built on the first authorized request, so a
// gateway nobody inspects pays nothing (bull-board costs ~250 ms and ~40 MB to load); its Redis
// connection is its own, apart from the data plane's.
import type { Context, Middleware, Next } from 'koa';
import { Queue } from 'bullmq';
import type { createBullBoard } from '@bull-board/api';
import { isSingleExecutable, packagedFile } from '../drivers/packaged-files.js';
import type { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { requireAdmin, type AdminCredential } from './admin-auth.js';
import { HttpError, unavailable } from './errors.js';
import { connectRedis, whenReady, type RedisClient, type RedisTarget } from '../queues/redis.js';
import { queuePrefix, registeredQueues } from '../queues/names.js';

export const DASHBOARD_PATH = '/admin/queues';
const DEFAULT_REFRESH_MS = 10_000;
const REDIS_WAIT_MS = 3_000;

export interface DashboardOptions {
  redis: RedisTarget;
  admin: AdminCredential;
  /** Serve without asking for the credential (`sgw dashboard --insecure-local` only). */
  open?: boolean;
  /** How often the queue list is read again, so gateways started later appear. */
  refreshMs?: number;
}

export interface Dashboard {
  /** Answers under DASHBOARD_PATH; passes every other request on untouched. */
  middleware: Middleware;
  close(): Promise<void>;
}

/** bull-board's writes are PUT/POST/PATCH/DELETE; its pages, assets and reads are GET. */
function readOnlyGuard(allowWrites: boolean): Middleware {
  return async (ctx: Context, next: Next) => {
    if (!allowWrites && ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      throw new HttpError(405, 'the dashboard is read-only: set admin.allow_writes to retry, clean or remove jobs', { Allow: 'GET, HEAD' });
    }
    return next();
  };
}

class Board {
  private readonly queues = new Map<string, Queue>();
  private listedAt = 0;
  private listing: Promise<void> | null = null;

  private constructor(
    private readonly redis: RedisClient, private readonly api: ReturnType<typeof createBullBoard>,
    private readonly Adapter: typeof BullMQAdapter, readonly serve: Middleware,
    private readonly readOnly: boolean, private readonly refreshMs: number,
  ) {}

  static async open(target: RedisTarget, readOnly: boolean, refreshMs: number): Promise<Board> {
    const [{ createBullBoard }, { BullMQAdapter }, { KoaAdapter }] = await Promise.all([
      import('@bull-board/api'), import('@bull-board/api/bullMQAdapter'), import('@bull-board/koa'),
    ]);
    const adapter = new KoaAdapter();
    adapter.setBasePath(DASHBOARD_PATH);
    // The UI's pages and static files are read from disk: inside the single executable they are
    // embedded files (bull-board would otherwise look for them with require.resolve).
    const uiBasePath = isSingleExecutable() ? packagedFile('node_modules/@bull-board/ui') : undefined;
    const api = createBullBoard({ queues: [], serverAdapter: adapter, options: { uiConfig: { boardTitle: 'sgw queues' }, ...(uiBasePath ? { uiBasePath } : {}) } });
    // Fail fast: a dashboard page must not wait on a Redis that is away (it answers 503 instead).
    const redis = connectRedis(target, 'fail-fast', 'sgw-dashboard');
    return new Board(redis, api, BullMQAdapter, adapter.registerPlugin() as Middleware, readOnly, refreshMs);
  }

  /** Reads the queue list again when it is older than refreshMs (one SMEMBERS). */
  refresh(): Promise<void> {
    if (Date.now() - this.listedAt < this.refreshMs) return Promise.resolve();
    this.listing ??= this.list().finally(() => { this.listing = null; });
    return this.listing;
  }

  private async list(): Promise<void> {
    await whenReady(this.redis, REDIS_WAIT_MS).catch(() => {
      throw unavailable('the dashboard cannot reach Redis');
    });
    const names = await registeredQueues(this.redis);
    for (const name of names) {
      if (this.queues.has(name)) continue;
      const queue = new Queue(name, { connection: this.redis, prefix: queuePrefix(name) });
      queue.on('error', () => {});
      this.queues.set(name, queue);
      this.api.addQueue(new this.Adapter(queue, { readOnlyMode: this.readOnly, allowRetries: !this.readOnly }));
    }
    this.listedAt = Date.now();
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    this.redis.disconnect();
  }
}

export function createDashboard(opts: DashboardOptions): Dashboard {
  const guard = opts.open ? null : requireAdmin(opts.admin, 'off');
  const writes = readOnlyGuard(opts.admin.allow_writes);
  const readOnly = !opts.admin.allow_writes;
  let opening: Promise<Board> | null = null;
  let closed = false;

  const serve = async (ctx: Context, next: Next): Promise<void> => {
    if (closed) throw new HttpError(503, 'the dashboard is stopping');
    opening ??= Board.open(opts.redis, readOnly, opts.refreshMs ?? DEFAULT_REFRESH_MS);
    const board = await opening;
    await board.refresh();
    await board.serve(ctx, next);
  };
  const protectedServe = (ctx: Context, next: Next) => writes(ctx, () => serve(ctx, next));

  return {
    middleware: (ctx, next) => {
      if (ctx.path !== DASHBOARD_PATH && !ctx.path.startsWith(`${DASHBOARD_PATH}/`)) return next();
      return guard ? guard(ctx, () => protectedServe(ctx, next)) : protectedServe(ctx, next);
    },
    async close() {
      closed = true;
      await (await opening)?.close();
    },
  };
}
