// The Python side of a driver actor: N chassis processes for its mode, each serving one call at a
// time. A chassis that dies or breaks the protocol is replaced and the call retried once on
// another (chunks are immutable: every call may run twice); one that outlives the call's deadline
// is killed and replaced, and the call gets -ETIMEDOUT, as a hung TypeScript driver does.
import type { Logger } from 'pino';
import type { CallResult, IncomingCall } from '../queues/ask.js';
import { ChassisHung, PythonChassis, type ChassisOptions, type ChassisStart } from './python-chassis.js';
import { Errno } from './errno.js';
import { pythonCommand, resolvePythonInterpreter } from './python-runtime.js';

const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 5000;
const PINO_LEVELS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = {
  10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal',
};

export interface PoolOptions extends Omit<ChassisOptions, 'onLine'> {
  /** Chassis processes (calls served at once). */
  size: number;
  logger: Logger;
}

interface Slot {
  chassis: PythonChassis | null;
  busy: boolean;
}

/** Logs one line a driver printed: its own JSON log lines keep their level, other lines are info (stdout) or warn (stderr). */
function logDriverLine(log: Logger, stream: 'stdout' | 'stderr', line: string, rid: string | undefined): void {
  if (line === '') return;
  const fields: Record<string, unknown> = { src: 'driver', stream, ...(rid ? { rid } : {}) };
  if (line.startsWith('{')) {
    try {
      const parsed = JSON.parse(line) as { level?: unknown; msg?: unknown };
      const level = typeof parsed.level === 'number' ? PINO_LEVELS[parsed.level] : undefined;
      if (level && typeof parsed.msg === 'string') return log[level](fields, parsed.msg);
    } catch {
      // not one of the helpers' lines: logged as printed
    }
  }
  log[stream === 'stdout' ? 'info' : 'warn'](fields, line);
}

export class PythonDriverPool {
  private readonly slots: Slot[] = [];
  private readonly waiting: ((slot: Slot | null) => void)[] = [];
  private closing = false;
  private readonly chassisOptions: ChassisOptions;
  private interpreter: string | null = null;

  constructor(private readonly opts: PoolOptions) {
    const { size: _size, logger, ...chassis } = opts;
    this.chassisOptions = { ...chassis, onLine: (stream, line, rid) => logDriverLine(logger, stream, line, rid) };
  }

  /**
   * Starts one chassis to learn the driver's answer; once it is ready the others start in the
   * background (the actor serves meanwhile), so an actor is ready as fast as one Python start.
   */
  async start(): Promise<ChassisStart> {
    this.interpreter ??= await resolvePythonInterpreter();
    const first = await PythonChassis.start(this.withInterpreter());
    if (first.outcome !== 'ready') {
      first.chassis.kill();
      return first.outcome;
    }
    const slot: Slot = { chassis: first.chassis, busy: false };
    this.slots.push(slot);
    this.watch(slot, first.chassis);
    for (let i = 1; i < this.opts.size; i++) {
      const slot: Slot = { chassis: null, busy: false };
      this.slots.push(slot);
      this.restart(slot);
    }
    return 'ready';
  }

  private withInterpreter(): ChassisOptions {
    return { ...this.chassisOptions, python: this.interpreter ?? pythonCommand() };
  }

  /** Pids of the running chassis processes (for status and tests). */
  pids(): number[] {
    return this.slots.flatMap((s) => (s.chassis?.alive && s.chassis.pid ? [s.chassis.pid] : []));
  }

  async call(call: IncomingCall): Promise<CallResult> {
    for (let attempt = 1; ; attempt++) {
      const slot = await this.acquire(call.deadline);
      if (!slot) return { rc: -Errno.ETIMEDOUT, error: 'no Python chassis was free before the deadline' };
      try {
        return await slot.chassis!.call(call);
      } catch (err) {
        const message = (err as Error).message;
        this.restart(slot);
        if (err instanceof ChassisHung) return { rc: -Errno.ETIMEDOUT, error: message };
        if (attempt >= 2 || Date.now() >= call.deadline) return { rc: -Errno.EIO, error: `${message} (the call was retried once)` };
        this.opts.logger.warn({ rid: call.requestId, err: message }, 'python chassis lost during a call; retrying it on another');
      } finally {
        this.release(slot);
      }
    }
  }

  /** Ends every chassis (driver_shutdown runs), killing those still running after graceMs. */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    for (const w of this.waiting.splice(0)) w(null);
    await Promise.all(this.slots.map((s) => s.chassis?.close(graceMs)));
  }

  /** Kills every chassis at once (the actor's process is exiting). */
  killAll(): void {
    this.closing = true;
    for (const s of this.slots) s.chassis?.kill();
  }

  private acquire(deadline: number): Promise<Slot | null> {
    const free = this.slots.find((s) => !s.busy && s.chassis?.alive);
    if (free) {
      free.busy = true;
      return Promise.resolve(free);
    }
    if (this.closing) return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiter = (slot: Slot | null) => {
        clearTimeout(timer);
        resolve(slot);
      };
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(waiter), 1);
        resolve(null);
      }, Math.max(0, deadline - Date.now()));
      this.waiting.push(waiter);
    });
  }

  private release(slot: Slot): void {
    slot.busy = false;
    if (slot.chassis && !slot.chassis.alive && !this.closing) this.restart(slot); // it died as its call ended
    if (!slot.chassis?.alive) return;
    const next = this.waiting.shift();
    if (next) {
      slot.busy = true;
      next(slot);
    }
  }

  /** A chassis that dies between calls (a driver thread exiting, the OOM killer) is replaced too. */
  private watch(slot: Slot, chassis: PythonChassis): void {
    void chassis.exit.then(() => {
      if (slot.chassis === chassis && !slot.busy && !this.closing) {
        this.opts.logger.warn({ pid: chassis.pid }, 'python chassis ended between calls; restarting it');
        this.restart(slot);
      }
    });
  }

  /** Kills the slot's chassis and starts another in the background (with back-off while starts fail). */
  private restart(slot: Slot): void {
    const old = slot.chassis;
    slot.chassis = null;
    old?.kill();
    void (async () => {
      for (let delay = RESTART_MIN_MS; !this.closing; delay = Math.min(RESTART_MAX_MS, delay * 2)) {
        const { chassis, outcome } = await PythonChassis.start(this.withInterpreter());
        if (outcome === 'ready' && !this.closing) {
          slot.chassis = chassis;
          this.watch(slot, chassis);
          if (!slot.busy) {
            slot.busy = true; // hand it to a waiting call, if any
            this.release(slot);
          }
          return;
        }
        chassis.kill();
        if (this.closing) return;
        this.opts.logger.error({ outcome, retryInMs: delay }, 'python chassis did not restart; trying again');
        await new Promise((r) => setTimeout(r, delay));
      }
    })();
  }
}
