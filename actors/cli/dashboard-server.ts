// `sgw dashboard`: the Bull dashboard alone, no data plane, for an operator's laptop. It only needs
// the config's Redis URL and admin credential; the same rules as on the http actor apply.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import Koa from 'koa';
import { loadConfig, type GatewayConfig } from '../../proto/config/config.js';
import { onSignals } from '../signals.js';
import { credentialConfigured } from '../../http/admin-auth.js';
import { createDashboard, DASHBOARD_PATH } from '../../http/dashboard.js';
import { answerErrors, HttpError } from '../../http/errors.js';
import { describeRedis } from '../../queues/redis.js';
import { redisTargetOf } from '../supervisor/state-redis.js';

export interface DashboardServerOptions {
  host: string;
  port: number;
  /** Serve without a credential; only on a loopback address. */
  insecureLocal: boolean;
}

export interface RunningDashboardServer {
  url: string;
  server: Server;
  stop(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** Throws with the fix in the message when the options would expose the queues to anyone. */
export function checkDashboardAccess(config: GatewayConfig, opts: DashboardServerOptions): void {
  if (opts.insecureLocal) {
    if (!LOOPBACK.has(opts.host)) throw new Error(`--insecure-local serves without a credential, so only on 127.0.0.1, not ${opts.host}`);
    return;
  }
  if (!credentialConfigured(config.admin)) {
    throw new Error(`no admin credential in ${config.file ?? 'the config'}: set admin.user and admin.password (or admin.token; `
      + 'or SGW_ADMIN_USER/SGW_ADMIN_PASSWORD/SGW_ADMIN_TOKEN), or pass --insecure-local to serve on 127.0.0.1 without one');
  }
}

export async function runDashboardServer(config: GatewayConfig, opts: DashboardServerOptions): Promise<RunningDashboardServer> {
  checkDashboardAccess(config, opts);
  const dashboard = createDashboard({ redis: redisTargetOf(config), admin: config.admin, open: opts.insecureLocal });
  const app = new Koa();
  app.use(answerErrors);
  app.use(dashboard.middleware);
  app.use((ctx) => {
    if (ctx.path === '/') return ctx.redirect(DASHBOARD_PATH);
    throw new HttpError(404, `nothing at ${ctx.path}: the dashboard is at ${DASHBOARD_PATH}`);
  });
  const server = app.listen(opts.port, opts.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}${DASHBOARD_PATH}`,
    server,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await dashboard.close();
    },
  };
}

/** The `sgw dashboard` command: serve until SIGINT/SIGTERM. */
export async function serveDashboard(o: { config: string; port: string; host: string; insecureLocal?: boolean }): Promise<void> {
  const port = Number(o.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be an integer from 0 to 65535, not "${o.port}"`);
  const config = loadConfig(resolve(o.config));
  const running = await runDashboardServer(config, { host: o.host, port, insecureLocal: o.insecureLocal ?? false });
  onSignals(running.stop);
  const access = o.insecureLocal ? 'no credential asked (--insecure-local)' : 'admin credential required';
  process.stderr.write(`sgw: dashboard of ${describeRedis(redisTargetOf(config))} at ${running.url}  (${access}; stop with Ctrl-C)\n`);
}
