// One gateway per folder. `sgw start` holds an exclusive flock(2) on <folder>/sgw.lock of its state
// folder (and of its cache folder) for its whole life; a second start, of this config or of another
// one naming the same folder, is refused at once with the holder named.
//
// Why flock: the kernel drops the lock when the holder's last descriptor closes — on exit, crash or
// kill -9 — so a stale lock never needs cleaning, and it holds across network namespaces (two
// containers sharing a volume), where an abstract unix socket name would not. Node has no flock(),
// so util-linux's flock(1) takes it on a descriptor this process hands down: a flock lock belongs to
// the open file description, which this process keeps open after the helper exits. Node opens files
// close-on-exec, so no actor or redis-server inherits it and outlives us holding the lock.
import { spawnSync } from 'node:child_process';
import { closeSync, constants, ftruncateSync, mkdirSync, openSync, readFileSync, realpathSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const LOCK_FILE = 'sgw.lock';
/** flock(1)'s exit code when the lock is taken (EX_TEMPFAIL). */
const CONFLICT = 75;

/** Who holds a folder, as the holder wrote it into the lock file. */
export interface LockHolder {
  pid: number;
  command: string;
  config: string | null;
  since: string;
}

export class FolderInUseError extends Error {
  override name = 'FolderInUseError';
  constructor(readonly folder: string, readonly holder: LockHolder | null) {
    super(`${folder} is in use by ${describeHolder(holder)}: one gateway per folder. Stop that one first`
      + `${holder ? ` (kill -TERM ${holder.pid})` : ''}, or give this config a state.dir and cache.dir of its own.`);
  }
}

function describeHolder(h: LockHolder | null): string {
  if (!h) return 'another process (it has not said which yet)';
  return `${h.command} (pid ${h.pid}${h.config ? `, config ${h.config}` : ''}, since ${h.since})`;
}

export interface FolderLock {
  folder: string;
  release(): void;
}

function readHolder(file: string): LockHolder | null {
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockHolder>;
    if (typeof h.pid !== 'number') return null;
    process.kill(h.pid, 0); // throws when that process is gone: what the file says is stale
    return { pid: h.pid, command: h.command ?? 'sgw', config: h.config ?? null, since: h.since ?? '?' };
  } catch {
    return null; // empty or stale (the holder is between locking and writing), or not ours
  }
}

/** Locks a folder (created if missing) or throws FolderInUseError naming the holder. */
export function lockFolder(folder: string, holder: Omit<LockHolder, 'pid' | 'since'>): FolderLock {
  mkdirSync(folder, { recursive: true });
  const file = join(folder, LOCK_FILE);
  const fd = openSync(file, constants.O_RDWR | constants.O_CREAT, 0o644);
  const r = spawnSync('flock', ['--exclusive', '--nonblock', '--conflict-exit-code', String(CONFLICT), '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
  if (r.status !== 0) {
    closeSync(fd);
    if (r.status === CONFLICT) throw new FolderInUseError(folder, readHolder(file));
    throw new Error(r.error
      ? `cannot lock ${folder}: flock(1) is needed (util-linux): ${r.error.message}`
      : `cannot lock ${folder}: ${String(r.stderr).trim() || `flock exited with ${r.status}`}`);
  }
  const me: LockHolder = { ...holder, pid: process.pid, since: new Date().toISOString() };
  ftruncateSync(fd);
  writeSync(fd, `${JSON.stringify(me)}\n`, 0);
  let open = true;
  return {
    folder,
    release() {
      if (!open) return;
      open = false;
      ftruncateSync(fd); // the next reader must not name us
      closeSync(fd);
    },
  };
}

/** Locks each distinct folder (two keys may name one folder); all or none. */
export function lockFolders(folders: string[], holder: Omit<LockHolder, 'pid' | 'since'>): FolderLock[] {
  const held: FolderLock[] = [];
  const seen = new Set<string>();
  try {
    for (const folder of folders) {
      mkdirSync(folder, { recursive: true });
      const real = realpathSync(folder);
      if (seen.has(real)) continue;
      seen.add(real);
      held.push(lockFolder(folder, holder));
    }
  } catch (err) {
    held.forEach((l) => l.release());
    throw err;
  }
  return held;
}
