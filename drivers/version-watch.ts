// Follows which driver bundle version a gateway runs. A publish announces itself on a pub/sub
// channel for speed; a slow poll backs it up, because pub/sub messages are lost across a
// disconnect. Listeners hear each new version once, with its method list.
import { EventEmitter } from 'node:events';
import { DRIVER_MODES, gatewayTypeOf, keys, methodOf, type DriverMode } from '../queues/names.js';
import { connectRedis, type RedisClient, type RedisTarget } from '../queues/redis.js';

export interface DriverVersion {
  hash: string;
  /** Driver methods the bundle exports (read_chunk, serialize, ...). */
  methods: string[];
  /** The modes those methods serve. */
  modes: Set<DriverMode>;
}

const POLL_MS = 2000;

export async function readDriverVersion(redis: RedisClient, gateway: string): Promise<DriverVersion | null> {
  const hash = await redis.get(keys.driverCurrent(gateway));
  if (!hash) return null;
  const meta = await redis.hget(keys.bundle(gateway, hash), 'meta');
  if (!meta) return null;
  const methods = (JSON.parse(meta) as { methods: string[] }).methods;
  const modes = new Set<DriverMode>();
  const type = gatewayTypeOf(gateway);
  for (const mode of DRIVER_MODES) if (methods.includes(methodOf(type, mode))) modes.add(mode);
  return { hash, methods, modes };
}

export class DriverVersionWatch extends EventEmitter<{ change: [DriverVersion] }> {
  private current: DriverVersion | null = null;
  private readonly sub: RedisClient;
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<void> = Promise.resolve();

  constructor(private readonly redis: RedisClient, target: RedisTarget, private readonly gateway: string) {
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
        const v = await readDriverVersion(this.redis, this.gateway);
        if (v && v.hash !== this.current?.hash) {
          this.current = v;
          this.emit('change', v);
        }
      } catch {
        // Redis away: keep the version we know; the next poll tries again.
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
