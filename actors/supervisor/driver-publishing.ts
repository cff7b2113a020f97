// Which driver version a host runs when its config names a `driver` folder. `sgw driver publish`
// always publishes the folder; `sgw start` publishes it only when that is what the person wants:
//   1. no version is published yet: any host that has the folder publishes it (the initial version);
//   2. a front host (role http) publishes the folder when its content changed since this host last
//      published it from this config (remembered in the state folder);
//   3. otherwise the host runs the current version, whoever published it: a front host restarted
//      with an old folder no longer swaps every worker back, and a worker needs no folder at all.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GatewayConfig } from '../../proto/config/config.js';
import type { DriverBundle } from '../../drivers/bundle.js';
import { connectRedis, whenReady, type RedisClient, type RedisTarget } from '../../queues/redis.js';

export interface PublishResult {
  hash: string;
  changed: boolean;
  methods: string[];
}

/** What `sgw start` decided about the driver, for its log line and summary. */
export interface DriverDecision {
  /** The version this host's actors will run (null: none published yet; they wait for one). */
  version: string | null;
  published: boolean;
  /** Why, in words a person reads in the log. */
  reason: string;
}

interface PublishRecord {
  folder: string;
  hash: string;
  at: string;
}

/** Where this host remembers what it last published from its config's driver folder. */
export function publishRecordFile(config: GatewayConfig): string {
  return join(config.state.dir, `driver-published.${config.gateway.key}.json`);
}

function readRecord(config: GatewayConfig): PublishRecord | null {
  try {
    const r = JSON.parse(readFileSync(publishRecordFile(config), 'utf8')) as Partial<PublishRecord>;
    return typeof r.hash === 'string' && typeof r.folder === 'string' ? { folder: r.folder, hash: r.hash, at: String(r.at ?? '') } : null;
  } catch {
    return null;
  }
}

function writeRecord(config: GatewayConfig, folder: string, hash: string): void {
  const file = publishRecordFile(config);
  mkdirSync(config.state.dir, { recursive: true });
  writeFileSync(`${file}.tmp`, `${JSON.stringify({ folder, hash, at: new Date().toISOString() } satisfies PublishRecord)}\n`);
  renameSync(`${file}.tmp`, file);
}

/** Builds a driver folder, refusing sealed secrets this gateway's key cannot open. */
async function bundleOf(config: GatewayConfig, folder: string, onStep: (step: string) => void): Promise<DriverBundle> {
  onStep('bundling the driver');
  // Loaded here, not with sgw start: only a host that bundles pays for esbuild, whose service
  // process is stopped again afterwards.
  const [{ buildBundle, stopBundler }, { unsealSecrets }] = await Promise.all([import('../../drivers/bundle.js'), import('../../drivers/secrets.js')]);
  const bundle = await buildBundle(folder).finally(stopBundler);
  // Fail here, with a clear message, rather than in every driver actor on every host.
  if (bundle.secrets) JSON.parse(unsealSecrets(bundle.secrets, config.gateway.private_key).toString());
  return bundle;
}

async function withRedis<T>(target: RedisTarget, onStep: (step: string) => void, use: (redis: RedisClient) => Promise<T>): Promise<T> {
  const redis = connectRedis(target, 'patient', 'sgw-publish');
  try {
    onStep('waiting for Redis');
    await whenReady(redis);
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

/** Publishes a driver folder as the gateway's current version (`sgw driver publish`). */
export async function publishDriver(
  config: GatewayConfig, target: RedisTarget, folder = config.driver, onStep: (step: string) => void = () => {},
): Promise<PublishResult> {
  if (!folder) throw new Error('no driver folder: set "driver" in the config file or pass --dir');
  const bundle = await bundleOf(config, folder, onStep);
  const { publishBundle } = await import('../../drivers/bundle.js');
  const r = await withRedis(target, onStep, (redis) => {
    onStep('uploading the driver bundle');
    return publishBundle(redis, config.gateway.key, bundle, config.gateway.private_key);
  });
  if (folder === config.driver) writeRecord(config, folder, bundle.hash);
  return { ...r, methods: bundle.meta.methods };
}

/** Whether the gateway's stored version `hash` carries a valid signature of this gateway. */
async function isSigned(redis: RedisClient, config: GatewayConfig, hash: string): Promise<boolean> {
  const { readDriverVersion } = await import('../../drivers/version-watch.js');
  try {
    return (await readDriverVersion(redis, config.gateway.key, config.gateway.private_key))?.hash === hash;
  } catch {
    return false;
  }
}

const short = (hash: string | null | undefined) => (hash ? hash.slice(0, 12) : 'none');

/** The start-time rule (see the top of this file): publishes the config's folder or leaves the current version. */
export async function driverOnStart(
  config: GatewayConfig, target: RedisTarget, front: boolean, onStep: (step: string) => void = () => {},
): Promise<DriverDecision | null> {
  const folder = config.driver;
  if (!folder) return null;
  const { currentBundleHash, publishBundle } = await import('../../drivers/bundle.js');
  const current = await withRedis(target, onStep, (redis) => currentBundleHash(redis, config.gateway.key));
  if (!existsSync(folder)) {
    return {
      version: current, published: false,
      reason: `the driver folder ${folder} is not on this host: ${current ? `running the published version ${short(current)}` : 'waiting for a version to be published (sgw driver publish)'}`,
    };
  }
  if (current !== null && !front) {
    return { version: current, published: false, reason: `this host runs no http actor, so it publishes no driver: running the published version ${short(current)}` };
  }
  const bundle = await bundleOf(config, folder, onStep);
  const record = readRecord(config);
  const publish = async (reason: string): Promise<DriverDecision> => {
    await withRedis(target, onStep, (redis) => {
      onStep('uploading the driver bundle');
      return publishBundle(redis, config.gateway.key, bundle, config.gateway.private_key);
    });
    writeRecord(config, folder, bundle.hash);
    return { version: bundle.hash, published: true, reason };
  };
  if (current === null) return publish(`no driver version was published yet: published ${short(bundle.hash)} from ${folder}`);
  if (current === bundle.hash) {
    // Published by an sgw that did not sign bundles yet: actors refuse it until it is signed.
    if (!(await withRedis(target, onStep, (redis) => isSigned(redis, config, current)))) return publish(`signed the current version ${short(current)} (published unsigned before)`);
    if (record?.hash !== bundle.hash) writeRecord(config, folder, bundle.hash);
    return { version: current, published: false, reason: `the driver folder ${folder} is the current version ${short(current)}` };
  }
  if (record?.hash === bundle.hash) {
    return {
      version: current, published: false,
      reason: `the driver folder ${folder} is unchanged since this host published it (${short(record.hash)}): running the current version ${short(current)}, published since`,
    };
  }
  if (record) return publish(`the driver folder ${folder} changed since this host published it (${short(record.hash)}): published ${short(bundle.hash)}, replacing ${short(current)}`);
  return {
    version: current, published: false,
    reason: `the driver folder ${folder} (${short(bundle.hash)}) differs from the current version ${short(current)} and was never published from this host: `
      + `running ${short(current)}; to make the folder current, run sgw driver publish${config.file ? ` --config ${config.file}` : ''}`,
  };
}
