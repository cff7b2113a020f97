// Follows which driver bundle version a gateway runs. A publish announces itself on a pub/sub
// channel for speed; a slow poll backs it up, because pub/sub messages are lost across a
// disconnect. Listeners hear each new version once, with its method list. A version is taken only
// when its signed manifest checks out against the gateway's key and its publish sequence is not
// below the one running (bundle-signature.ts): what Redis says is not trusted. A refused version
// is told once to 'refused' listeners, and the running version stays.
import { EventEmitter } from 'node:events';
import type { KeyObject } from 'node:crypto';
import { DRIVER_MODES, gatewayTypeOf, keys, methodOf, type DriverMode } from '../queues/names.js';
import { connectRedis, type RedisClient, type RedisTarget } from '../queues/redis.js';
import { BundleRefused, verifyBundle } from './bundle-signature.js';

export interface DriverVersion {
  hash: string;
  /** Publish sequence from the signed manifest. */
  seq: number;
  /** Driver methods the bundle exports (read_chunk, serialize, ...). */
  methods: string[];
  /** The modes those methods serve. */
  modes: Set<DriverMode>;
}

export interface WatchOptions {
  /** The gateway's private (or public) key: manifests are checked against it. */
  key: KeyObject;
  /** Refuse versions published before this sequence (remembered by a supervisor across restarts). */
  floor?: number;
}

const POLL_MS = 2000;

/** The current version, checked; null when none is published; throws BundleRefused. */
export async function readDriverVersion(redis: RedisClient, gateway: string, key: KeyObject, floor = 0): Promise<DriverVersion | null> {
  const hash = await redis.get(keys.driverCurrent(gateway));
  if (!hash) return null;
  const [meta, signed] = await redis.hmgetBuffer(keys.bundle(gateway, hash), 'meta', 'signed');
  if (!meta && !signed) return null; // a pointer to nothing: nothing to run
  const manifest = verifyBundle(signed, gateway, hash, key, floor);
  const methods = manifest.meta.methods;
  const modes = new Set<DriverMode>();
  const type = gatewayTypeOf(gateway);
  for (const mode of DRIVER_MODES) if (methods.includes(methodOf(type, mode))) modes.add(mode);
  return { hash, seq: manifest.seq, methods, modes };
}

export class DriverVersionWatch extends EventEmitter<{ change: [DriverVersion]; refused: [BundleRefused] }> {
  private current: DriverVersion | null = null;
  private readonly sub: RedisClient;
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<void> = Promise.resolve();
  /** "<hash> <reason>" of refusals already told, so a poll does not repeat them. */
  private readonly told = new Set<string>();

  constructor(private readonly redis: RedisClient, target: RedisTarget, private readonly gateway: string, private readonly opts: WatchOptions) {
    super();
    this.sub = connectRedis(target, 'patient', `sgw-driver-watch-${gateway}`);
    this.sub.subscribe(keys.driverChanged(gateway)).catch(() => {});
    this.sub.on('message', () => this.check());
    this.sub.on('ready', () => this.check()); // after a reconnect, catch up on what was missed
    this.timer = setInterval(() => this.check(), POLL_MS);
    this.timer.unref();
  }

  /** The version last seen, or null while none is published. */
  get version(): DriverVersion | null {
    return this.current;
  }

  /** Checks Redis now; resolves when listeners have heard of any change. */
  check(): Promise<void> {
    this.checking = this.checking.then(async () => {
      try {
        const hash = await this.redis.get(keys.driverCurrent(this.gateway));
        if (!hash || hash === this.current?.hash) return;
        const v = await readDriverVersion(this.redis, this.gateway, this.opts.key, Math.max(this.opts.floor ?? 0, this.current?.seq ?? 0));
        if (v && v.hash !== this.current?.hash) {
          this.current = v;
          this.emit('change', v);
        }
      } catch (err) {
        if (!(err instanceof BundleRefused)) return; // Redis away: keep the version we know; the next poll tries again
        const told = `${err.hash} ${err.reason}`;
        if (this.told.has(told)) return;
        this.told.add(told);
        this.emit('refused', err);
      }
    });
    return this.checking;
  }

  /** Resolves with the first published version (waits for a publish if there is none yet). */
  async first(): Promise<DriverVersion> {
    await this.check();
    if (this.current) return this.current;
    return new Promise((resolve) => this.once('change', resolve));
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.sub.disconnect();
  }
}
