// Every Redis name sgw uses, in one place. A gateway is addressed as "<type>.<id>" (e.g. "rg.20");
// its driver-mode queues are "<type>.<id>.<mode>" so they read naturally in a Bull dashboard.
import type { RedisClient } from './redis.js';

export const GATEWAY_TYPES = ['RG', 'AG', 'UG'] as const;
export type GatewayType = (typeof GATEWAY_TYPES)[number];

export const DRIVER_MODES = ['read', 'write', 'delete', 'rename', 'serialize', 'deserialize', 'cdn_url', 'refresh'] as const;
export type DriverMode = (typeof DRIVER_MODES)[number];

/** The driver method each mode calls, with the seeds' names. */
export const METHOD_OF_MODE: Record<DriverMode, string> = {
  read: 'read_chunk', write: 'write_chunk', delete: 'delete_chunk', rename: 'rename_file',
  serialize: 'serialize', deserialize: 'deserialize', cdn_url: 'cdn_url', refresh: 'refresh',
};

/** The AG's read method is `read` (seed 003); every other mode has one method name everywhere. */
export function methodOf(type: GatewayType, mode: DriverMode): string {
  return type === 'AG' && mode === 'read' ? 'read' : METHOD_OF_MODE[mode];
}

/** "ag.5" -> "AG". */
export function gatewayTypeOf(gateway: string): GatewayType {
  const t = gateway.slice(0, gateway.indexOf('.')).toUpperCase();
  if (!GATEWAY_TYPES.includes(t as GatewayType)) throw new Error(`${JSON.stringify(gateway)} is not a gateway key`);
  return t as GatewayType;
}

/** Modes an AG serves in its crawl actor rather than in driver actors. */
export const CRAWL_MODES: readonly DriverMode[] = ['refresh'];

/** Modes a driver of this gateway type may implement; only the first group is mandatory for an RG. */
export const MODES_OF_GATEWAY: Record<GatewayType, readonly DriverMode[]> = {
  RG: ['read', 'write', 'delete', 'rename', 'serialize', 'deserialize'],
  AG: ['read', 'serialize', 'refresh'],
  UG: ['cdn_url', 'serialize', 'deserialize'],
};

/**
 * Whether a gateway type serves nothing until a driver is published. Every UG mode is optional (a UG
 * without a driver passes chunks through), so a UG is whole without one.
 */
export const NEEDS_DRIVER: Record<GatewayType, boolean> = { RG: true, AG: true, UG: false };

// Redis Cluster keeps what one script, MULTI or multi-key command touches in one slot only when
// those keys share a hash tag (the part in {braces}). So every key of one gateway carries the
// gateway's tag, every key of one volume's namespace the volume's, and each BullMQ queue its own
// name: one queue, one gateway's bookkeeping, one volume each sit in one slot, and different
// ones spread over the shards; a sender's nonces have 16 tags of their own. Keys used alone
// (reply lists, chunks, block lists) carry no tag.

/** "{rg.20}": the hash tag of a gateway's own keys. */
const gatewayTag = (gateway: string) => `sgw:{${gateway}}`;
/** "{vol.3}": the hash tag of a volume's namespace (shared by its UGs and its AG). */
const volumeTag = (volume: bigint) => `sgw:{vol.${volume}}`;

/** BullMQ key prefix of one queue: its own hash tag, so each queue's scripts stay in one slot. */
export function queuePrefix(queueName: string): string {
  return `sgw:{${queueName}}`;
}

export function gatewayKey(type: GatewayType, id: bigint): string {
  return `${type.toLowerCase()}.${id}`;
}

export function modeQueueName(gateway: string, mode: DriverMode | 'cache'): string {
  return `${gateway}.${mode}`;
}

export const keys = {
  /** Set of every BullMQ queue name sgw created on this Redis, for dashboards and status. */
  queues: 'sgw:queues',
  /** List the asker instance pops its replies from. */
  results: (instance: string) => `sgw:results:${instance}`,
  /** A binary chunk riding beside a job (too large to inline in JSON job data). */
  chunk: (id: string) => `sgw:chunk:${id}`,
  /** The block_vec every driver call of one POST shares, sent once (see ask.ts). */
  blockVec: (id: string) => `sgw:blockvec:${id}`,
  /** Hash of the driver bundle version a gateway runs now. */
  driverCurrent: (gateway: string) => `${gatewayTag(gateway)}:driver`,
  /** Pub/sub channel announcing a new driver version (published by the same script, so tagged too). */
  driverChanged: (gateway: string) => `${gatewayTag(gateway)}:driver:changed`,
  /** A bundle published for a gateway, by content hash (hash fields: meta, code, config, secrets). */
  bundle: (gateway: string, hash: string) => `${gatewayTag(gateway)}:bundle:${hash}`,
  /** Sorted set of live actor instances of a mode, scored by heartbeat expiry (ms). */
  alive: (gateway: string, role: string) => `${gatewayTag(gateway)}:alive:${role}`,
  /**
   * Sorted set of live call servers of a mode on one host (a host id of blobs.ts), scored by expiry
   * (ms): an asker sends large chunks through a host file only when it is not empty.
   */
  aliveOn: (gateway: string, mode: string, hostId: string) => `${gatewayTag(gateway)}:on:${hostId}:${mode}`,
  /** Hash describing one live actor instance (host, pid, role, version, jobs). */
  actor: (gateway: string, instance: string) => `${gatewayTag(gateway)}:actor:${instance}`,
  /** Hash of bundles and calls refused unauthenticated ("bundle|<reason>", "call|<mode>|<reason>"): queues/refusals.ts. */
  refusals: (gateway: string) => `${gatewayTag(gateway)}:refusals`,
  /** Hash of actor restarts by role, counted by every supervisor of the gateway (for metrics). */
  restarts: (gateway: string) => `${gatewayTag(gateway)}:restarts`,
  /** Key prefix of one shard of a sender's remembered nonces (nonces.lua); its hash tag keeps a call in one slot. */
  nonces: (gateway: string, sender: bigint, shard: number) => `sgw:{${gateway}:nonce:${sender}:${shard}}`,
  /**
   * The crawl lease of an AG: the instance id of the one crawl actor allowed to crawl. In the
   * volume's slot, because namespace writes are fenced by it in one script.
   */
  crawlLease: (volume: bigint, gateway: string) => `${volumeTag(volume)}:crawl:${gateway}`,
  /** The AG of a volume (a volume may have at most one). */
  volumeAg: (volume: bigint) => `${volumeTag(volume)}:ag`,
  /** The volume namespace: hash of path -> entry JSON. */
  nsEntries: (volume: bigint) => `${volumeTag(volume)}:ns:e`,
  /** The volume namespace: child names of one directory (a sorted set, lexical order). */
  nsChildren: (volume: bigint, dir: string) => `${volumeTag(volume)}:ns:d:${dir}`,
};

/** Every queue sgw registered on this Redis (any gateway), sorted so a gateway's queues group together. */
export async function registeredQueues(redis: RedisClient): Promise<string[]> {
  return (await redis.smembers(keys.queues)).sort();
}
