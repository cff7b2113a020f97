// First-run set-up for `sgw start` without a config file: a demo of both kinds of volume, in a folder
// of its own (SGW_HOME, default .sgw) whose keys, credentials, sample data and state are made once
// and kept; its config files and driver folders are written again at every start.
//   volume 1: RG 20 (the built-in disk driver, chunks under storage/) and UG 10, to write and read;
//   volume 2: AG 30 publishing a copy of the sample folder, and UG 11 to read it. A volume with an
//             AG is an archive, read-only for its UGs (seed 003): hence two volumes and two UGs.
// Every gateway shares one state folder, so one private redis-server, and listens on its own port:
// SGW_PORT (default 8080) and the three after it.
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { generateKeyPair } from '../../drivers/secrets.js';
import { Caps } from '../../proto/messages.js';
import { isSingleExecutable, packagedFile } from '../../drivers/packaged-files.js';

/** Settings each gateway has its own of: read from the environment, they would make the four collide. */
export const PER_GATEWAY_ENV = ['SGW_PORT', 'SGW_CACHE_DIR', 'SGW_DRIVER', 'SGW_UG_TOKEN'] as const;

const BLOCK_SIZE = 65536;
const READ = Caps.READ_DATA | Caps.READ_METADATA;
const ALL = READ | Caps.WRITE_DATA | Caps.WRITE_METADATA | Caps.COORDINATE;
/** The sample data the AG publishes, shipped as the built-in dataset driver's example. */
const SAMPLE_SOURCE = 'drivers/builtin/dataset/sample';

export type DemoGatewayName = 'rg' | 'ug' | 'ag' | 'ug-sample';

export interface DemoGateway {
  name: DemoGatewayName;
  type: 'RG' | 'UG' | 'AG';
  id: string;
  volume: string;
  port: number;
  configFile: string;
}

export interface Demo {
  home: string;
  /** In start order: the gateways a UG talks to come before it. */
  gateways: DemoGateway[];
  storageDir: string;
  sampleDir: string;
  /** The application token of both UGs. */
  token: string;
  admin: { user: string; password: string };
}

/** The demo's folder: SGW_HOME, else .sgw in the working folder. */
export function demoHome(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.SGW_HOME ?? '.sgw');
}

/** The config `sgw ug` uses without --config: the demo's UG of volume 1. */
export function demoUgConfig(env: NodeJS.ProcessEnv = process.env): string {
  return join(demoHome(env), 'ug.json');
}

/** The config `sgw status` uses without --config: the demo's RG. */
export function demoRgConfig(env: NodeJS.ProcessEnv = process.env): string {
  return join(demoHome(env), 'rg.json');
}

/** --config when given, else the demo's config file of that role (made by `sgw start` without --config). */
export function configOrDemo(config: string | undefined, demoFile: string, what: string): string {
  if (config) return config;
  if (!existsSync(demoFile)) throw new Error(`no --config given, and there is no demo ${what} at ${demoFile} (sgw start without --config makes one)`);
  return demoFile;
}

function writeKeyPair(dir: string, name: string): void {
  if (existsSync(join(dir, `${name}.pem`))) return;
  // 2048 bits keeps the first start quick; `sgw keys new` defaults to 4096 like Syndicate.
  const { privatePem, publicPem } = generateKeyPair(2048);
  writeFileSync(join(dir, `${name}.pem`), privatePem, { mode: 0o600 });
  writeFileSync(join(dir, `${name}.pub.pem`), publicPem);
}

/** The UG token and the dashboard password: made on the first start, kept in a 0600 file. */
function credentials(home: string): { token: string; password: string } {
  const file = join(home, 'credentials.json');
  try {
    const c = JSON.parse(readFileSync(file, 'utf8')) as { ug_token?: unknown; admin_password?: unknown };
    if (typeof c.ug_token === 'string' && typeof c.admin_password === 'string') return { token: c.ug_token, password: c.admin_password };
  } catch {
    // first start
  }
  const made = { ug_token: randomBytes(12).toString('hex'), admin_password: randomBytes(12).toString('hex') };
  writeFileSync(file, `${JSON.stringify(made, null, 2)}\n`, { mode: 0o600 });
  return { token: made.ug_token, password: made.admin_password };
}

function writeJson(file: string, value: unknown): void {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** A driver folder that publishes a built-in driver as it is, with its config.json. */
function writeDriverFolder(dir: string, builtin: string, config: Record<string, unknown>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'driver.mjs'), `export * from 'sgw/builtin/${builtin}';\n`);
  writeJson(join(dir, 'config.json'), config);
}

/** Writes (or refreshes) the demo folder and returns what is in it. basePort: SGW_PORT or 8080. */
export function prepareDemo(home = demoHome(), basePort = Number(process.env.SGW_PORT ?? 8080)): Demo {
  if (!Number.isInteger(basePort) || basePort < 1 || basePort > 65532) throw new Error(`SGW_PORT must be a port number ≤ 65532 (the demo uses it and the three after it), got ${process.env.SGW_PORT}`);
  const root = resolve(home);
  const keys = join(root, 'keys');
  for (const d of [root, keys]) mkdirSync(d, { recursive: true });
  for (const name of ['rg', 'ug', 'ag', 'ug-sample']) writeKeyPair(keys, name);
  const { token, password } = credentials(root);
  const sampleDir = join(root, 'sample');
  // A copy, so that files dropped into it (or removed) show how the AG follows its dataset.
  if (!existsSync(sampleDir)) cpSync(packagedFile(SAMPLE_SOURCE), sampleDir, { recursive: true, preserveTimestamps: true });
  const demo: Demo = { home: root, gateways: [], storageDir: join(root, 'storage'), sampleDir, token, admin: { user: 'admin', password } };
  const gw = (name: DemoGatewayName, type: DemoGateway['type'], id: string, volume: string, offset: number): DemoGateway =>
    ({ name, type, id, volume, port: basePort + offset, configFile: join(root, `${name}.json`) });
  const rg = gw('rg', 'RG', '20', '1', 0);
  const ug = gw('ug', 'UG', '10', '1', 1);
  const ag = gw('ag', 'AG', '30', '2', 2);
  const ugSample = gw('ug-sample', 'UG', '11', '2', 3);
  demo.gateways = [rg, ag, ug, ugSample];

  const url = (g: DemoGateway) => `http://127.0.0.1:${g.port}`;
  const peer = (g: DemoGateway, caps: number) => ({ id: g.id, type: g.type, user_id: '1', caps, public_key: `keys/${g.name}.pub.pem`, url: url(g) });
  const common = (g: DemoGateway) => ({
    gateway: { type: g.type, id: g.id, user_id: '1', volume_id: g.volume, block_size: BLOCK_SIZE, host: '127.0.0.1', port: g.port, private_key: `keys/${g.name}.pem` },
    cache: { dir: `cache/${g.name}`, max_bytes: 1 << 30 },
    state: { dir: 'state' },
    admin: { user: demo.admin.user, password },
    log: { level: 'warn' },
    // A laptop's gateways are mostly idle: one process for all driver modes of each (operations.md#driver-processes).
    actors: { driver_processes: 'shared' },
  });
  writeDriverFolder(join(root, 'rg-driver'), 'disk', { STORAGE_DIR: '../storage' });
  writeDriverFolder(join(root, 'ag-driver'), 'dataset', { DATASET_DIR: '../sample' });
  const configs: [DemoGateway, Record<string, unknown>][] = [
    [rg, { ...common(rg), volume: { gateways: [peer(ug, ALL)] }, driver: 'rg-driver' }],
    [ug, { ...common(ug), volume: { gateways: [peer(rg, READ)] }, ug: { token } }],
    [ag, { ...common(ag), volume: { archive: true, gateways: [peer(ugSample, READ)] }, driver: 'ag-driver' }],
    [ugSample, { ...common(ugSample), volume: { archive: true, gateways: [peer(ag, READ)] }, ug: { token } }],
  ];
  for (const [g, config] of configs) writeJson(g.configFile, config);
  return demo;
}

/** A path as a person in this folder would type it. */
export function shownPath(path: string, cwd = process.cwd()): string {
  const rel = relative(cwd, path);
  return rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}

/** How to run sgw from this folder: the single executable itself, or the package's bin through npx. */
function sgwCommand(): string {
  if (!isSingleExecutable()) return 'npx sgw';
  const exe = shownPath(process.execPath);
  return exe.includes('/') ? exe : `./${exe}`;
}

/** What `sgw start` prints once the demo serves: where each gateway is, and the commands that work next. */
export function demoBanner(demo: Demo, redisLine: string, pid: number): string {
  const [rg, ag, ug, ugSample] = demo.gateways as [DemoGateway, DemoGateway, DemoGateway, DemoGateway];
  const url = (g: DemoGateway) => `http://127.0.0.1:${g.port}/`;
  const sgw = sgwCommand();
  // Without --config, `sgw ug` finds the demo's UG only where this start found the demo.
  const ugFlag = demo.home === demoHome({}) ? '' : ` --config ${shownPath(ug.configFile)}`;
  const sampleFlag = ` --config ${shownPath(ugSample.configFile)}`;
  // Any local file will do; outside a checkout there may be no README.md.
  const local = existsSync('README.md') ? 'README.md' : shownPath(join(demo.sampleDir, 'hello.txt'));
  const width = Math.max(...demo.gateways.map((g) => url(g).length));
  const line = (g: DemoGateway, what: string) => `${g.type} ${g.id}  ${url(g).padEnd(width)}  ${what}`;
  return [
    `sgw demo: 4 gateways, 2 volumes, in ${shownPath(demo.home)}`,
    `  volume 1   ${line(rg, `built-in disk driver, chunks in ${shownPath(demo.storageDir)}`)}`,
    `             ${line(ug, `files you write; token ${demo.token}`)}`,
    `  volume 2   ${line(ag, `publishes ${shownPath(demo.sampleDir)} (read-only; files you drop in appear)`)}`,
    `             ${line(ugSample, `reads what the AG publishes; token ${demo.token}`)}`,
    `  dashboard  ${url(rg)}admin/queues  user ${demo.admin.user}, password ${demo.admin.password}`,
    `  redis      ${redisLine}`,
    `  stop with  Ctrl-C or kill -TERM ${pid}`,
    '',
    'Try, in another terminal in this folder:',
    `  ${sgw} ug put ${local} /hello.md${ugFlag}`,
    `  ${sgw} ug ls /${ugFlag}`,
    `  ${sgw} ug cat /hello.md${ugFlag}`,
    `  ${sgw} ug ls /data${sampleFlag}`,
    `  ${sgw} ug cat /hello.txt${sampleFlag}`,
    '',
  ].join('\n');
}
