// The configuration file's schema: every key, its type, default and meaning, in one place. The
// parser (config.ts), its error messages and the key table of docs/configuration.md (docs.ts)
// are all read from it, so they cannot drift apart.
import { z } from 'zod';
import { DRIVER_MODES } from '../../queues/names.js';

/** What the docs say of a key beyond its type: its meaning, and the variable that overrides it. */
export interface KeyDoc {
  doc: string;
  /** An environment variable that wins over the file. */
  env?: string;
  /** The type as the docs name it, where the schema's own would read badly. */
  type?: string;
  /** The default as the docs name it, where it is computed or relative. */
  default?: string;
}

/** Documentation of each key's schema, read by docs.ts. */
export const keyDocs = new WeakMap<z.ZodType, KeyDoc>();

function doc<T extends z.ZodType>(schema: T, d: KeyDoc | string): T {
  keyDocs.set(schema, typeof d === 'string' ? { doc: d } : d);
  return schema;
}

/** Integers may be written as strings too (environment variables always are). */
function int(min: number) {
  return z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v), z.number().int().min(min));
}

/** 64-bit ids: numbers up to 2^53, or decimal strings for anything larger (JSON numbers lose digits). */
function id64(signed = false) {
  return z.union([z.number(), z.string()]).transform((v, ctx): bigint => {
    let n: bigint;
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) {
        ctx.addIssue({ code: 'custom', message: Number.isInteger(v) ? `${v} is beyond 2^53: write it as a string` : 'must be an integer' });
        return z.NEVER;
      }
      n = BigInt(v);
    } else if (/^-?\d+$/.test(v.trim())) {
      n = BigInt(v.trim());
    } else {
      ctx.addIssue({ code: 'custom', message: 'must be an integer (a decimal string for large values)' });
      return z.NEVER;
    }
    const ok = signed ? n >= -(2n ** 63n) && n < 2n ** 63n : n >= 0n && n < 2n ** 64n;
    if (!ok) ctx.addIssue({ code: 'custom', message: `${n} is out of range for a ${signed ? 'signed' : 'unsigned'} 64-bit integer` });
    return n;
  });
}

const gatewayType = () => z.preprocess((v) => (typeof v === 'string' ? v.toUpperCase() : v), z.enum(['RG', 'AG', 'UG']));
const nonEmpty = () => z.string().min(1);
/** A key that may be absent or null; an empty string (an unset environment variable) counts as absent. */
const optionalString = () => z.preprocess((v) => (v === '' ? null : v), nonEmpty().nullable().default(null));

const peer = z.strictObject({
  id: doc(id64(), 'the peer\'s id (uint64); each id at most once'),
  type: doc(gatewayType(), '`RG`, `AG` or `UG`'),
  user_id: doc(id64(), 'the user the peer acts for'),
  caps: doc(int(0).default(0), 'capability bits: READ_DATA=1, WRITE_DATA=2, READ_METADATA=4, WRITE_METADATA=8, COORDINATE=16 ([security.md](security.md#capabilities))'),
  public_key: doc(nonEmpty(), 'PEM file of its public key (SPKI or PKCS#1)'),
  url: doc(optionalString(), 'where its http actor is reached (a UG fetches from and writes to it)'),
});

/** "host:port" of a Sentinel or a Cluster node. */
const hostPort = () => z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'must be "host:port"');

// Paths relative to the config file; read at start.
const redisTls = z.strictObject({
  ca: doc(optionalString(), { doc: 'PEM file of the CA that signed the servers\' certificates (default: the system\'s CAs)', default: 'system CAs' }),
  cert: doc(optionalString(), { doc: 'PEM file of a client certificate, when the servers ask for one (`tls-auth-clients`)', default: 'none' }),
  key: doc(optionalString(), { doc: 'PEM file of its private key', default: 'none' }),
});

/** The object form of `redis`; a plain string is its `url`. */
export const redisObjectSchema = z.strictObject({
  url: doc(optionalString(), { doc: '`redis://[user:password@]host:port[/db]` of one Redis; `rediss://` for TLS', default: 'none' }),
  sentinels: doc(z.array(hostPort()).min(1).optional(), { doc: 'Sentinels that watch the master (`["host:port", ...]`); sgw asks them where the master is, and follows a failover', type: 'array of "host:port"', default: 'none' }),
  name: doc(optionalString(), { doc: 'the master group name the sentinels watch (with `sentinels`)', default: 'none' }),
  cluster: doc(z.array(hostPort()).min(1).optional(), { doc: 'some nodes of a Redis Cluster (`["host:port", ...]`); the others are discovered', type: 'array of "host:port"', default: 'none' }),
  user: doc(optionalString(), { doc: 'ACL user (with `sentinels` or `cluster`; a URL carries its own)', default: 'default' }),
  password: doc(optionalString(), { doc: 'its password (with `sentinels` or `cluster`)', default: 'none' }),
  sentinel_password: doc(optionalString(), { doc: 'password of the sentinels themselves, when they have one', default: 'none' }),
  tls: redisTls.optional(),
}).superRefine((r, ctx) => {
  const forms = [r.url !== null, r.sentinels !== undefined, r.cluster !== undefined].filter(Boolean).length;
  if (forms !== 1) ctx.addIssue({ code: 'custom', message: 'give exactly one of "url", "sentinels" or "cluster"' });
  if (r.sentinels !== undefined && r.name === null) ctx.addIssue({ code: 'custom', path: ['name'], message: 'the master group name is needed with "sentinels"' });
  if (r.sentinels === undefined && (r.name !== null || r.sentinel_password !== null)) ctx.addIssue({ code: 'custom', message: '"name" and "sentinel_password" go with "sentinels"' });
  if (r.url !== null && (r.user !== null || r.password !== null)) ctx.addIssue({ code: 'custom', message: 'a URL carries its own user and password: redis://user:password@host:port' });
  if (r.url !== null && !/^rediss?:\/\/[^/]/.test(r.url)) ctx.addIssue({ code: 'custom', path: ['url'], message: 'must start with redis:// or rediss://' });
});

const driverCounts = z.strictObject(Object.fromEntries(DRIVER_MODES.map((m) => [m, int(1).optional()])) as Record<(typeof DRIVER_MODES)[number], z.ZodOptional<ReturnType<typeof int>>>);

export const configSchema = z.strictObject({
  gateway: z.strictObject({
    type: doc(gatewayType(), '`RG` (replica), `AG` (acquisition) or `UG` (user); any case'),
    id: doc(id64(), "this gateway's id (uint64)"),
    user_id: doc(id64(), 'the user this gateway acts for (uint64)'),
    volume_id: doc(id64(), 'the volume it serves (uint64)'),
    block_size: doc(int(1).default(65536), 'bytes per block; sets `offset`/`len` of block reads (the same on every gateway of a volume)'),
    host: doc(nonEmpty().default('127.0.0.1'), { doc: 'address the http actor listens on', env: 'SGW_HOST' }),
    port: doc(int(0).default(8080), { doc: 'port the http actor listens on', env: 'SGW_PORT' }),
    private_key: doc(nonEmpty(), 'PEM file, PKCS#1 or PKCS#8; signs replies (and an AG\'s manifests and blocks, a UG\'s manifests and requests) and opens sealed driver secrets'),
  }),
  volume: z.strictObject({
    version: doc(id64().default(1n), { doc: 'a sender announcing a newer volume version gets 503', type: 'uint64' }),
    cert_version: doc(id64().default(1n), { doc: 'a sender announcing a newer certificate version gets 503', type: 'uint64' }),
    archive: doc(z.boolean().default(false), 'a read-only volume whose data an AG publishes; required for an AG'),
    gateways: doc(z.array(peer).default([]), { doc: 'the peer gateways: who may send requests here (RG, AG) or whom a UG reads from and writes to', type: 'array of peers (below)' }),
  }).prefault({}),
  redis: doc(
    z.preprocess((v) => (v === '' ? null : typeof v === 'string' ? { url: v } : v), redisObjectSchema.nullable().default(null)),
    { doc: 'the shared Redis: a URL, or an object (below) for TLS files, Sentinel or Cluster; absent: `sgw start` runs a private redis-server ([redis.md](redis.md))', env: 'SGW_REDIS_URL', type: 'URL or object', default: 'embedded' },
  ),
  replication: z.strictObject({
    acks: doc(z.union([int(0), z.literal('all')]).default('all'), { doc: 'replicas that must hold a namespace change or a remembered nonce before it is acknowledged: `all` the master has at that moment (whichever one a failover promotes has it), a number (at most that many), or 0 (never wait)', type: '`all` or integer ≥ 0' }),
    timeout_ms: doc(int(1).default(2000), 'how long to wait for them; past it the request gets 503 with Retry-After instead of an acknowledgement one failure could undo'),
  }).prefault({}),
  driver: doc(optionalString(), { doc: 'driver bundle folder; `sgw start` publishes it when no version is published yet, or on a host with the `http` role when it changed since that host published it; absent or missing on this host: run the version published in Redis ([drivers.md](drivers.md#which-version-runs))', env: 'SGW_DRIVER', default: 'none' }),
  cache: z.strictObject({
    dir: doc(nonEmpty().default('cache'), { doc: 'chunk store folder (segment files)', env: 'SGW_CACHE_DIR' }),
    max_bytes: doc(int(0).default(1 << 30), { doc: 'byte budget of the chunk store on disk; the least recently read chunks go first', default: '1 GiB' }),
    memory_bytes: doc(int(0).default(64 << 20), { doc: 'hot chunks kept in memory in front of the disk', default: '64 MiB' }),
  }).prefault({}),
  state: z.strictObject({
    dir: doc(nonEmpty().default('state'), { doc: "this gateway's own state on this host: the private redis-server's data (when `redis` is absent) and the lock that refuses a second `sgw start` of the folder", env: 'SGW_STATE_DIR' }),
    appendfsync: doc(z.enum(['everysec', 'always']).default('always'), 'when the private redis-server flushes its append-only file to disk: `always` (before it answers: nothing acknowledged is lost, not even to a kill -9 of redis-server or a power loss) or `everysec` (faster; a power loss, or a kill -9 of redis-server while the disk lags, can lose the last second or two of acknowledged writes); see [state.md](state.md#what-can-be-lost)'),
  }).prefault({}),
  limits: z.strictObject({
    max_upload_bytes: doc(int(1).default(256 << 20), { doc: 'larger POST bodies get 413; also bounds each Python pipe frame and each form-uploaded file', default: '256 MiB' }),
    replay_window_s: doc(int(1).default(86_400), 'how long a (sender, nonce) pair is remembered'),
    call_timeout_ms: doc(int(50).default(10_000), 'deadline of one driver call (at most request_timeout_ms)'),
    request_timeout_ms: doc(int(100).default(30_000), 'every HTTP request is answered within this'),
    max_blocks_per_request: doc(int(1).default(16_384), 'chunks one POST may name; more get 413 before the data plane is read (a UG sends ~1,024 with 4 KiB blocks)'),
    post_bytes_in_flight: doc(int(1).default(256 << 20), { doc: 'POST body bytes one http actor holds at once; beyond it a new POST gets 503 with Retry-After before its body is read (one POST alone is always let through, up to max_upload_bytes)', default: '256 MiB' }),
    header_timeout_ms: doc(int(100).default(10_000), 'a connection must send the headers of its request within this, else it is closed'),
    body_idle_timeout_ms: doc(int(100).default(10_000), 'a POST body that stalls this long gets 408 and its connection is closed'),
    keep_alive_timeout_ms: doc(int(100).default(65_000), 'an idle kept-alive connection is closed after this; longer than the idle timeout of the load balancer in front (60 s on common ones), so it never reuses a connection the gateway is just closing'),
  }).prefault({}),
  actors: z.strictObject({
    count: doc(driverCounts.default({}), { doc: 'driver actor processes per mode on each host, e.g. `{"read": 2}`', type: 'object: mode → integer ≥ 1', default: '1 each' }),
    driver_processes: doc(z.enum(['per_mode', 'shared']).default('per_mode'), '`per_mode`: a driver actor process per mode (× `count`); `shared`: one process serves every driver mode of the host, each mode on its own queue worker (as many processes as the largest `count`; the demo runs so, [operations.md](operations.md#driver-processes))'),
    concurrency: doc(int(1).default(16), 'driver calls one driver actor runs at once (per mode)'),
    python_processes: doc(int(1).optional(), { doc: 'Python chassis processes per driver actor of a `driver.py` (each serves one call at a time)', default: 'min(concurrency, 2)' }),
    heap_growth_percent: doc(int(0).default(300), "V8 heap growing factor of actor processes (1 + percent/100), see [below](#memory-settings-of-actor-processes) (0: V8's default)"),
    work_dir: doc(nonEmpty().default('.sgw-work'), { doc: 'per-host state (loaded bundles, spooled uploads)', env: 'SGW_WORK_DIR' }),
    activation: doc(z.enum(['fork', 'none']).default('fork'), '`fork`: `sgw start` runs and restarts the actors; `none`: a service manager runs each `sgw actor` ([operations.md](operations.md#activation-and-systemd))'),
  }).prefault({}),
  admin: z.strictObject({
    user: doc(optionalString(), { doc: 'basic-auth user of the operator surfaces (dashboard, metrics); no `:`', env: 'SGW_ADMIN_USER', default: 'none' }),
    password: doc(optionalString(), { doc: 'its password (set both or neither)', env: 'SGW_ADMIN_PASSWORD', default: 'none' }),
    token: doc(optionalString(), { doc: 'bearer token of the operator surfaces; with no credential at all the [dashboard](operations.md#dashboard) is off and `/metrics` open', env: 'SGW_ADMIN_TOKEN', default: 'none' }),
    allow_writes: doc(z.boolean().default(false), 'the dashboard may retry, clean, pause and remove jobs'),
  }).prefault({}),
  log: z.strictObject({
    level: doc(z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'), { doc: 'pino level', env: 'SGW_LOG_LEVEL' }),
  }).prefault({}),
  http: z.strictObject({
    allowed_hosts: doc(z.array(nonEmpty()).default([]), { doc: 'names accepted in the Host header (any port), besides localhost, 127.0.0.1, [::1] and gateway.host; checked always when the http actor listens on loopback (a browser page whose name resolves to 127.0.0.1 must not reach it), elsewhere only when this list is set; others get 403', type: 'array of strings' }),
    namespace_access: doc(z.enum(['open', 'admin']).nullable().default(null), { doc: 'who may read `/NAMESPACE` on an RG or AG: `open` anyone, `admin` the admin credential (off, 404, while none is set); a UG always asks for `ug.token`', default: '`open` on an AG, `admin` on an RG' }),
  }).prefault({}),
  metrics: z.strictObject({
    enabled: doc(z.boolean().default(true), 'serve `/metrics` and count requests for it'),
  }).prefault({}),
  ug: z.strictObject({
    token: doc(optionalString(), { doc: 'bearer token of the application API; required for a UG', env: 'SGW_UG_TOKEN', default: 'none' }),
    parallel_blocks: doc(int(1).default(8), 'blocks one read fetches ahead / one write serializes at once'),
    batch_bytes: doc(int(1).default(4 << 20), { doc: "chunk bytes per PUTCHUNKS POST (keep under the replicas' `limits.max_upload_bytes`)", default: '4 MiB' }),
    posts_in_flight: doc(int(1).default(4), 'PUTCHUNKS POSTs one write keeps on their way to each replica while it reads on'),
  }).prefault({}),
});

export type ConfigFile = z.output<typeof configSchema>;

/** Environment variables that override keys of the file (names from the schema's docs). */
export function envOverrides(): { env: string; path: string[] }[] {
  const out: { env: string; path: string[] }[] = [];
  walkKeys(configSchema, [], (path, _schema, d) => {
    if (d?.env) out.push({ env: d.env, path });
  });
  return out;
}

/** The schema under wrappers (default, prefault, optional, nullable, pipe of a preprocess). */
export function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (;;) {
    const def = s._zod.def as { type: string; innerType?: z.ZodType; out?: z.ZodType; in?: z.ZodType };
    if ((def.type === 'default' || def.type === 'prefault' || def.type === 'optional' || def.type === 'nullable') && def.innerType) s = def.innerType;
    else if (def.type === 'pipe' && def.out && def.in) s = (def.in._zod.def as { type: string }).type === 'transform' ? def.out : def.in._zod.def.type === 'union' ? def.in : def.out;
    else return s;
  }
}

/** Calls visit for every documented key, depth first, in schema order. */
export function walkKeys(schema: z.ZodType, path: string[], visit: (path: string[], schema: z.ZodType, d: KeyDoc | undefined) => void): void {
  const inner = unwrap(schema);
  const def = inner._zod.def as { type: string; shape?: Record<string, z.ZodType> };
  const d = keyDocs.get(schema);
  if (def.type === 'object' && def.shape && !d) {
    for (const [k, v] of Object.entries(def.shape)) walkKeys(v, [...path, k], visit);
    return;
  }
  visit(path, schema, d);
}
