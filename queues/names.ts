// Every Redis name sgw uses, in one place. A gateway is addressed as "<type>.<id>" (e.g. "rg.20");
// its driver-mode queues are "<type>.<id>.<mode>" so they read naturally in a Bull dashboard.
export const GATEWAY_TYPES = ['RG', 'AG', 'UG'] as const;
export type GatewayType = (typeof GATEWAY_TYPES)[number];

export const DRIVER_MODES = ['read', 'write', 'delete', 'rename', 'serialize', 'deserialize', 'cdn_url', 'refresh'] as const;
export type DriverMode = (typeof DRIVER_MODES)[number];

/** The driver method each mode calls, with the seeds' names. */
export const METHOD_OF_MODE: Record<DriverMode, string> = {
  read: 'read_chunk', write: 'write_chunk', delete: 'delete_chunk', rename: 'rename_file',
  serialize: 'serialize', deserialize: 'deserialize', cdn_url: 'cdn_url', refresh: 'refresh',
};

/** Modes a driver of this gateway type may implement; only the first group is mandatory for an RG. */
export const MODES_OF_GATEWAY: Record<GatewayType, readonly DriverMode[]> = {
  RG: ['read', 'write', 'delete', 'rename', 'serialize', 'deserialize'],
  AG: ['read', 'serialize', 'refresh'],
  UG: ['cdn_url', 'serialize', 'deserialize'],
};

/** BullMQ key prefix for sgw's queues. */
export const QUEUE_PREFIX = 'sgw';

export function gatewayKey(type: GatewayType, id: bigint): string {
  return `${type.toLowerCase()}.${id}`;
}

export function modeQueueName(gateway: string, mode: DriverMode | 'cache'): string {
  return `${gateway}.${mode}`;
}

export const keys = {
  /** List the asker instance pops its replies from. */
  results: (instance: string) => `sgw:results:${instance}`,
  /** A binary chunk riding beside a job (too large to inline in JSON job data). */
  chunk: (id: string) => `sgw:chunk:${id}`,
  /** Hash of the driver bundle version a gateway runs now. */
  driverCurrent: (gateway: string) => `sgw:${gateway}:driver`,
  /** Pub/sub channel announcing a new driver version. */
  driverChanged: (gateway: string) => `sgw:${gateway}:driver:changed`,
  /** A published bundle, by content hash (hash fields: meta, code, config, secrets). */
  bundle: (hash: string) => `sgw:bundle:${hash}`,
  /** Sorted set of live actor instances of a mode, scored by heartbeat expiry (ms). */
  alive: (gateway: string, role: string) => `sgw:${gateway}:alive:${role}`,
  /** Hash describing one live actor instance (host, pid, role, version, jobs). */
  actor: (gateway: string, instance: string) => `sgw:${gateway}:actor:${instance}`,
  /** Hash of actor restarts by role, counted by every supervisor of the gateway (for metrics). */
  restarts: (gateway: string) => `sgw:${gateway}:restarts`,
  /** Seen (sender, nonce) pairs, for replay protection. */
  nonce: (gateway: string, sender: bigint, nonce: bigint) => `sgw:${gateway}:nonce:${sender}:${nonce}`,
};
