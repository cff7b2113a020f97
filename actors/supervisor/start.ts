// `sgw start`: the supervising process of a host — one gateway, or the demo's four — with its
// folder locks, private Redis, driver publishing and summary. `sgw actor` is actors/run-actor.ts,
// so that an actor process loads none of this.
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { loadConfig, type GatewayConfig } from '../../proto/config/config.js';
import { createLogger, type Logger } from '../logger.js';
import { demoBanner, PER_GATEWAY_ENV, prepareDemo, shownPath } from './demo.js';
import { driverOnStart, type DriverDecision } from './driver-publishing.js';
import { driverProcesses, driverRole } from './driver-processes.js';
import { lockFolders } from './folder-lock.js';
import { StateRedis, stateRedisPaths } from './state-redis.js';
import { parseRoles, Supervisor, type Roles } from './supervisor.js';
import { ProgressLine, withProgress } from '../cli/progress.js';
import { onSignals } from '../signals.js';
import { releaseMemoryWhenIdle } from '../idle-memory.js';
import { claimAcquisitionGateway } from '../../queues/namespace/namespace.js';
import { connectRedis, describeRedis, redisAt, whenReady, type RedisTarget } from '../../queues/redis.js';

/** Fails at once with a clear message instead of an http actor crash-looping on EADDRINUSE. */
function assertPortFree(host: string, port: number, hint: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => reject(new Error(err.code === 'EADDRINUSE'
      ? `${host}:${port} is already in use: ${hint}`
      : `cannot listen on ${host}:${port}: ${err.message}`)));
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

/** `sgw start` prints its summary once the actors are ready, or after this long anyway (--wait). */
const ACTORS_READY_WAIT_S = 30;

export interface StartOptions {
  config?: string;
  roles?: string;
  /** Without config: run only this gateway of the demo (rg, ug, ag, ug-sample). */
  demo?: string;
  /** Seconds to wait for the actors to be ready before the summary (default 30). */
  wait?: string;
}

/** One gateway this `sgw start` runs the actors of. */
interface HostedGateway {
  config: GatewayConfig;
  configFile: string;
  roles: Roles;
}

/** How a run presents itself: who holds its folders, what to say when a port is taken, its summary. */
interface RunStyle {
  holder: string;
  portHint(g: HostedGateway): string;
  summary(redisLine: string, decisions: (DriverDecision | null)[]): string;
  /** How long the actors may take to be ready before the summary is printed anyway. */
  waitMs: number;
}

function waitMsOf(opts: StartOptions): number {
  if (opts.wait === undefined) return ACTORS_READY_WAIT_S * 1000;
  const s = Number(opts.wait);
  if (!(s >= 0) || !Number.isFinite(s)) throw new Error(`--wait ${opts.wait}: give the seconds to wait for the actors, a number ≥ 0`);
  return s * 1000;
}

export async function startGateway(opts: StartOptions): Promise<void> {
  releaseMemoryWhenIdle();
  if (opts.config && opts.demo) throw new Error('--demo runs a gateway of the demo: leave out --config');
  if (!opts.config && !opts.demo) return startDemo(opts);
  const configFile = opts.config ? resolve(opts.config) : demoGatewayConfig(opts.demo!);
  const config = loadConfig(configFile);
  const logger = createLogger(config.log.level, 'sgw');
  const roles = parseRoles(opts.roles, config);
  if (config.actors.activation === 'none') return prepareExternalActivation(config, configFile, roles, logger);
  const g: HostedGateway = { config, configFile, roles };
  await runGateways([g], logger, {
    holder: configFile, waitMs: waitMsOf(opts),
    portHint: () => `set gateway.port in ${configFile} or SGW_PORT`,
    summary: (redisLine, [decision]) => [
      `sgw: ${config.gateway.type} gateway ${config.gateway.id} (volume ${config.gateway.volume_id})`,
      roles.http ? `  serving      http://${config.gateway.host}:${config.gateway.port}/  (try GET /PING)` : null,
      `  redis        ${redisLine}`,
      `  config       ${configFile}`,
      roles.http || roles.cache ? `  cache        ${config.cache.dir}` : null,
      decision ? `  driver       ${decision.reason}` : null,
      `  stop with    Ctrl-C or kill -TERM ${process.pid}`,
      '',
    ].filter((l) => l !== null).join('\n'),
  });
}

/** `sgw start --demo <name>`: the demo folder made or refreshed, and the config file of that one gateway of it. */
function demoGatewayConfig(name: string): string {
  const demo = prepareDemo();
  const g = demo.gateways.find((d) => d.name === name);
  if (!g) throw new Error(`--demo ${name}: the demo's gateways are ${demo.gateways.map((d) => d.name).join(', ')}`);
  for (const v of PER_GATEWAY_ENV) delete process.env[v]; // as for the whole demo: its file says
  return g.configFile;
}

/** `sgw start` without --config: the demo's four gateways on one private Redis (demo.ts). */
async function startDemo(opts: StartOptions): Promise<void> {
  if (opts.roles) throw new Error('--roles needs --config: the demo runs every role of its gateways');
  const demo = prepareDemo();
  for (const name of PER_GATEWAY_ENV) delete process.env[name]; // actors inherit the environment too
  const gateways = demo.gateways.map((d) => {
    const config = loadConfig(d.configFile);
    return { config, configFile: d.configFile, roles: parseRoles(undefined, config) };
  });
  const logger = createLogger(gateways[0]!.config.log.level, 'sgw');
  await runGateways(gateways, logger, {
    holder: demo.home, waitMs: waitMsOf(opts),
    portHint: (g) => `the demo uses ports ${demo.gateways[0]!.port} to ${demo.gateways[0]!.port + 3}; set SGW_PORT to the first of 4 free ports (${shownPath(g.configFile)} wants ${g.config.gateway.port})`,
    summary: (redisLine) => demoBanner(demo, redisLine, process.pid),
  });
}

/** Users of a volume stop before the gateways that serve them, so their last requests are answered. */
const stopOrder = (g: HostedGateway) => (g.config.gateway.type === 'UG' ? 0 : 1);

/**
 * Runs the actors of these gateways on this host until SIGTERM or SIGINT: locks their folders, starts
 * the private Redis they share (when they name none), publishes drivers as driverOnStart decides,
 * starts a supervisor per gateway and prints the summary once the actors are ready.
 */
async function runGateways(gateways: HostedGateway[], logger: Logger, style: RunStyle): Promise<void> {
  // One gateway per folder, refused before anything starts; the kernel lets go when we exit.
  const folders = gateways.flatMap(({ config, roles }) => [config.state.dir, ...(roles.cache ? [config.cache.dir] : [])]);
  const locks = lockFolders(folders, { command: 'sgw start', config: style.holder });
  for (const g of gateways) if (g.roles.http) await assertPortFree(g.config.gateway.host, g.config.gateway.port, style.portHint(g));
  const progress = new ProgressLine('starting');
  let embedded: StateRedis | null = null;
  const running: { g: HostedGateway; supervisor: Supervisor }[] = [];
  onSignals(async (signal) => {
    progress.done();
    // Ctrl-C in a terminal reaches the whole process group, the private redis-server included:
    // it is going away with us, not to be restarted.
    if (signal === 'SIGINT') embedded?.letGo();
    logger.info('stopping: draining actors');
    process.stderr.write('sgw: stopping: the actors finish their requests ...\n');
    for (const phase of [0, 1]) await Promise.all(running.filter((r) => stopOrder(r.g) === phase).map((r) => r.supervisor.stop()));
    await embedded?.stop();
    locks.forEach((l) => l.release());
    const what = `${running.length === 1 ? 'the gateway' : `${running.length} gateways`}${embedded ? ' and the private redis-server' : ''}`;
    process.stderr.write(`sgw: stopped: ${what}, every process of it has exited\n`);
  });
  const first = gateways[0]!.config; // the demo's gateways share one state folder, so one private Redis
  let target = first.redis;
  if (!target) {
    progress.update('starting the private redis-server');
    embedded = await StateRedis.start(first, logger);
    target = redisAt(embedded.url);
  }
  const decisions: (DriverDecision | null)[] = [];
  for (const g of gateways) {
    const label = gateways.length > 1 ? `${g.config.gateway.key}: ` : '';
    if (g.config.gateway.type === 'AG') await claimVolume(g.config, target);
    const decision = await driverOnStart(g.config, target, g.roles.http, (step) => progress.update(`${label}${step}`));
    if (decision) logger.info({ gateway: g.config.gateway.key, version: decision.version, published: decision.published }, decision.reason);
    decisions.push(decision);
    progress.update(`${label}waiting for Redis and the driver version`);
    const supervisor = new Supervisor({ config: g.config, configFile: g.configFile, redis: target, ...(embedded ? { embeddedUrl: embedded.url } : {}), roles: g.roles, logger });
    running.push({ g, supervisor });
    await supervisor.start();
  }
  const counts = running.map(() => ({ ready: 0, total: 0 }));
  const starting = await Promise.all(running.map(({ supervisor }, i) => supervisor.settled(style.waitMs, (ready, total) => {
    counts[i] = { ready, total };
    progress.update('waiting for the actors', `${counts.reduce((n, c) => n + c.ready, 0)}/${counts.reduce((n, c) => n + c.total, 0)} ready`);
  })));
  progress.done();
  const redisLine = `${describeRedis(target)}${embedded ? `  (private redis-server, data in ${stateRedisPaths(first).dir}, stopped with sgw)` : ''}`;
  process.stderr.write(style.summary(redisLine, decisions));
  const late = running.flatMap(({ g }, i) => starting[i]!.map((role) => (running.length > 1 ? `${g.config.gateway.key} ${role}` : role)));
  if (late.length > 0) {
    process.stderr.write(`sgw: still starting after ${style.waitMs / 1000} s: ${late.join(', ')}; they serve once ready `
      + `(the log says what they wait for; sgw status shows who runs)\n`);
    logger.warn({ actors: late }, 'actors still starting after the summary');
  }
}

/** Refuses a second AG for the volume here, with the reason, rather than in crash-looping actors. */
async function claimVolume(config: GatewayConfig, target: RedisTarget): Promise<void> {
  const redis = connectRedis(target, 'patient', 'sgw-start');
  try {
    await whenReady(redis, 30_000);
    await claimAcquisitionGateway(redis, config);
  } finally {
    redis.disconnect();
  }
}

/** The actor commands of these roles, as a service manager would run them. */
export function actorCommands(roles: Roles, config: GatewayConfig, configFile: string): string[] {
  const list = [
    ...(roles.http ? [roles.cache ? 'http --with-cache' : 'http'] : roles.cache ? ['cache'] : []),
    ...new Set(driverProcesses(config.actors, [...roles.drivers]).map(driverRole)),
    ...(roles.crawl ? ['crawl'] : []),
  ];
  return list.map((r) => `sgw actor ${r} --config ${configFile}`);
}

/**
 * actors.activation "none": another manager (systemd, ...) runs every actor, so this only does what
 * is shared (publish the driver) and says what to run. The private redis-server is refused: external
 * actors could not find it, and it would die with this command.
 */
async function prepareExternalActivation(config: GatewayConfig, configFile: string, roles: Roles, logger: Logger): Promise<void> {
  if (!config.redis) {
    throw new Error(`actors.activation is "none" in ${configFile}: set "redis" (or SGW_REDIS_URL) to the shared Redis the actors connect to; the private redis-server is only for activation "fork"`);
  }
  const target = config.redis;
  const decision = await withProgress('checking the driver', (line) => driverOnStart(config, target, roles.http, (step) => line.update(step)));
  if (decision) logger.info({ version: decision.version, published: decision.published }, decision.reason);
  process.stderr.write([
    `sgw: ${config.gateway.type} gateway ${config.gateway.id}: actors.activation is "none", so no actor is started here.`,
    '  Your service manager runs each actor of this host, e.g.:',
    ...actorCommands(roles, config, configFile).map((c) => `    ${c}`),
    ...(decision ? [`  driver: ${decision.reason}`] : []),
    '',
  ].join('\n'));
}
