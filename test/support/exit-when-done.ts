// AVA waits for a test file's process to exit by itself once its tests are done, with no time limit:
// one handle left open (a Redis client retrying a host that is gone, the pipe of a process that
// outlived its test) keeps the whole run waiting forever, as one CI run did after its last test
// passed. Once the tests are done the process gets a grace period to drain; then it names what
// kept it alive, and which processes are at the other end of its pipes, and exits.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { registerCompletionHandler } from 'ava';

const GRACE_MS = 20_000;

function fdTargets(pid: string, from = 0): string[] {
  try {
    return readdirSync(`/proc/${pid}/fd`).filter((fd) => Number(fd) >= from).map((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '';
      }
    });
  } catch {
    return [];
  }
}

const inode = (target: string): string | null => /^(?:pipe|socket):\[(\d+)\]$/.exec(target)?.[1] ?? null;

function commandOf(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 200);
  } catch {
    return '?';
  }
}

/**
 * Other processes at the far end of what this process opened (fds past its stdio, not shared with
 * its parent): child stdio is a socket pair (libuv), so the holders are found through `ss`, which
 * gives each socket's peer; plain pipes by their inode.
 */
function holders(): string[] {
  const inherited = new Set(fdTargets(String(process.ppid)));
  const mine = new Set(fdTargets('self', 3).filter((t) => !inherited.has(t)).map(inode).filter((n): n is string => n !== null));
  const found = new Map<string, string>();
  const ss = spawnSync('ss', ['-xpn'], { encoding: 'utf8' });
  for (const line of ss.stdout?.split('\n') ?? []) {
    const m = /\*\s+(\d+)\s+\*\s+(\d+)\s+users:(.*)$/.exec(line);
    if (!m || !mine.has(m[2]!)) continue;
    for (const [, pid] of m[3]!.matchAll(/pid=(\d+)/g)) if (Number(pid) !== process.pid && Number(pid) !== process.ppid) found.set(pid!, commandOf(pid!));
  }
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid && !found.has(p))) {
    if (fdTargets(pid).some((t) => t.startsWith('pipe:') && mine.has(inode(t)!))) found.set(pid, commandOf(pid));
  }
  return [...found].map(([pid, cmd]) => `pid ${pid} (${cmd})`);
}

registerCompletionHandler(() => {
  setTimeout(() => {
    const open = process.getActiveResourcesInfo(); // this grace timer is one of the Timeouts
    const held = holders();
    process.stderr.write(`# a test file's process was still busy ${GRACE_MS / 1000} s after its tests ended (${open.join(', ')})`
      + `${held.length ? `; at the other end of its pipes and sockets: ${held.join('; ')}` : ''}: exiting it\n`);
    process.exit(0);
  }, GRACE_MS).unref();
});
