// The folder lock behind "one gateway per folder": held by a real process, refused to every other
// with the holder named, and released by the kernel when the holder dies, however it dies.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FolderInUseError, lockFolder, lockFolders, LOCK_FILE } from '../actors/supervisor/folder-lock.js';
import { processAlive, waitFor } from './support/gateway.js';

const LOCK_MODULE = fileURLToPath(new URL('../actors/supervisor/folder-lock.js', import.meta.url));

/** A separate process that locks the folder, says so on stdout, and waits to be killed. */
async function holder(folder: string): Promise<ChildProcess> {
  const code = `import(${JSON.stringify(LOCK_MODULE)}).then((m) => { m.lockFolder(${JSON.stringify(folder)}, { command: 'test holder', config: '/x/config.json' }); process.stdout.write('locked\\n'); setInterval(() => {}, 1000); });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  await waitFor('the holder to lock the folder', async () => out.includes('locked'));
  return child;
}

function tempFolder(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-lock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a locked folder is refused to another process, naming the folder and the holder', async (t) => {
  const dir = tempFolder(t);
  const child = await holder(dir);
  t.teardown(() => { child.kill('SIGKILL'); });
  const err = t.throws(() => lockFolder(dir, { command: 'sgw start', config: null }), { instanceOf: FolderInUseError });
  t.true(err!.message.includes(dir), err!.message);
  t.true(err!.message.includes(`pid ${child.pid}`), err!.message);
  t.true(err!.message.includes('/x/config.json'), err!.message);
  t.is(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid, child.pid, 'the refused attempt left the holder\'s record alone');
});

test('kill -9 of the holder releases the lock: the next lock succeeds', async (t) => {
  const dir = tempFolder(t);
  const child = await holder(dir);
  child.kill('SIGKILL');
  await waitFor('the holder to die', async () => !processAlive(child.pid!));
  const lock = lockFolder(dir, { command: 'sgw start', config: null });
  t.is(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid, process.pid);
  lock.release();
});

test('a lock released by its holder can be taken again, and the same folder named twice is locked once', (t) => {
  const dir = tempFolder(t);
  const locks = lockFolders([dir, join(dir, '.')], { command: 'sgw start', config: null });
  t.is(locks.length, 1);
  locks.forEach((l) => l.release());
  t.is(readFileSync(join(dir, LOCK_FILE), 'utf8'), '', 'a released lock names nobody');
  lockFolder(dir, { command: 'sgw start', config: null }).release();
});

test('locking several folders is all or nothing', async (t) => {
  const free = tempFolder(t);
  const taken = tempFolder(t);
  const child = await holder(taken);
  t.teardown(() => { child.kill('SIGKILL'); });
  t.throws(() => lockFolders([free, taken], { command: 'sgw start', config: null }), { instanceOf: FolderInUseError });
  lockFolder(free, { command: 'sgw start', config: null }).release(); // the first one was let go
  t.pass();
});
