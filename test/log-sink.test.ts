// The buffered log destination (actors/log-sink.ts) on real files, a real FIFO and a real child
// process: lines arrive whole and in order, within the flush interval, at process exit, and a
// reader that stops reading costs bounded memory, not lost order.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LogSink } from '../actors/log-sink.js';
import { waitFor } from './support/gateway.js';

const LOGGER_JS = fileURLToPath(new URL('../actors/logger.js', import.meta.url));
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sgw-log-sink-'));
  dirs.push(d);
  return d;
}
test.after.always(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('lines below the write size reach the file within the flush interval, in order', async (t) => {
  const file = join(tempDir(), 'log');
  const fd = openSync(file, 'w');
  const sink = new LogSink({ fd, minWrite: 1 << 20, flushMs: 20, maxHeld: 1 << 20 });
  try {
    for (let i = 0; i < 3; i++) sink.write(`line ${i} é€\n`);
    const text = await waitFor('the lines in the file', async () => {
      const s = readFileSync(file, 'utf8');
      return s.split('\n').length > 3 && s;
    }, 10_000);
    t.is(text, 'line 0 é€\nline 1 é€\nline 2 é€\n');
  } finally {
    sink.close();
    closeSync(fd);
  }
});

test('a process that logs and exits at once leaves every line, long and multi-byte ones included, whole and in order', (t) => {
  const file = join(tempDir(), 'log');
  // pino through the process's shared sink; process.exit right after the last line.
  const script = `
    const { createLogger } = await import(${JSON.stringify(LOGGER_JS)});
    const a = createLogger('info', 'a');
    const b = createLogger('info', 'b');
    for (let i = 0; i < 20000; i++) {
      (i % 2 ? a : b).info({ i, text: i % 1000 === 0 ? 'ü'.repeat(40000) : 'ψ' + i }, 'line');
    }
    process.exit(0);`;
  const fd = openSync(file, 'w');
  try {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', fd, 'pipe'] });
    t.is(r.status, 0, String(r.stderr));
  } finally {
    closeSync(fd);
  }
  const lines = readFileSync(file, 'utf8').split('\n');
  t.is(lines.pop(), '', 'the last line is complete');
  t.is(lines.length, 20000);
  lines.forEach((l, i) => {
    const o = JSON.parse(l) as { i: number; name: string; text: string };
    if (o.i !== i || o.name !== (i % 2 ? 'a' : 'b')) t.fail(`line ${i}: ${l.slice(0, 100)}`);
    if (i % 1000 === 0 && o.text !== 'ü'.repeat(40000)) t.fail(`long line ${i} damaged`);
  });
  t.pass();
});

test('a reader that stops reading: held bytes stay bounded, later lines are dropped and counted (the log says how many), those written stay whole and in order', async (t) => {
  const fifo = join(tempDir(), 'fifo');
  execFileSync('mkfifo', [fifo]);
  // Read and write ends at once (no reader to wait for); non-blocking, so a full pipe answers EAGAIN.
  const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
  const maxHeld = 256 * 1024;
  const sink = new LogSink({ fd, minWrite: 4096, flushMs: 20, maxHeld });
  try {
    const line = (i: number) => `${String(i).padStart(8, '0')} ${'x'.repeat(90)}\n`;
    const total = 10_000; // 1 MB: more than the pipe (64 KiB) and maxHeld together
    for (let i = 0; i < total; i++) sink.write(line(i));
    t.true(sink.dropped > 0, 'lines beyond maxHeld are dropped');
    // Now read: what the sink held arrives, then nothing more.
    const buf = Buffer.alloc(1 << 20);
    let got = '';
    await waitFor('everything held to be written', async () => {
      for (;;) {
        let n = 0;
        try {
          n = readSync(fd, buf);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        }
        if (n === 0) break;
        got += buf.toString('latin1', 0, n);
      }
      return got.endsWith('}\n');
    }, 20_000);
    const lines = got.split('\n');
    t.is(lines.pop(), '');
    // Once the reader caught up, the log itself says how many lines it misses.
    const notice = JSON.parse(lines.pop()!) as { level: number; dropped: number; msg: string };
    t.like(notice, { level: 40, dropped: sink.dropped });
    t.regex(notice.msg, /log line\(s\) dropped: the log's reader did not keep up/);
    t.is(lines.length, total - sink.dropped);
    t.true(lines.every((l, i) => `${l}\n` === line(i)), 'the first lines, each whole, in order');
    t.true((total - sink.dropped) * 100 <= 64 * 1024 + maxHeld + 100, 'no more than the pipe and maxHeld took');
  } finally {
    sink.close();
    closeSync(fd);
  }
});
