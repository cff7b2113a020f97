// The progress line: shown on a terminal once an operation lasts over a second, never otherwise.
// A fake stream and a hand-driven clock and timer stand in for stderr and setInterval.
import test from 'ava';
import { ProgressLine, withProgress, type ProgressOptions, type ProgressStream } from '../actors/cli/progress.js';

function fakeStream(isTTY: boolean): ProgressStream & { out: string[] } {
  const out: string[] = [];
  return { ...(isTTY ? { isTTY: true } : {}), out, write: (s: string) => out.push(s) };
}

/** A clock that only moves when told to, and a timer whose ticks the test fires. */
function handClock(): ProgressOptions & { advance(ms: number): void; timers: number; stopped: number } {
  let t = 1_000_000;
  const ticks: (() => void)[] = [];
  const clock = {
    timers: 0,
    stopped: 0,
    now: () => t,
    every: (tick: () => void) => {
      clock.timers++;
      ticks.push(tick);
      return { stop: () => { clock.stopped++; ticks.splice(ticks.indexOf(tick), 1); } };
    },
    advance(ms: number) {
      t += ms;
      for (const tick of [...ticks]) tick();
    },
  };
  return clock;
}

test('on a terminal, an operation shorter than a second shows nothing', (t) => {
  const stream = fakeStream(true);
  const clock = handClock();
  const line = new ProgressLine('uploading', stream, clock);
  clock.advance(400);
  clock.advance(500);
  line.done();
  t.deepEqual(stream.out, []);
  t.is(clock.stopped, 1, 'the timer is stopped');
});

test('on a terminal, a longer operation redraws one line in place and erases it when done', (t) => {
  const stream = fakeStream(true);
  const clock = handClock();
  const line = new ProgressLine('bundling', stream, clock);
  clock.advance(1200);
  line.update('uploading', '2.0 MiB');
  clock.advance(300);
  t.is(stream.out.length, 2);
  t.regex(stream.out[0]!, /^\r\x1b\[K. bundling 1\.2s$/);
  t.regex(stream.out[1]!, /^\r\x1b\[K. uploading \(2\.0 MiB\) 1\.5s$/, 'the same line, overwritten');
  t.false(stream.out.join('').includes('\n'), 'never a new line');
  line.done();
  t.is(stream.out.at(-1), '\r\x1b[K', 'erased at the end');
  clock.advance(1000);
  t.is(stream.out.length, 3, 'nothing after done');
});

test('not a terminal: quiet however long it takes, and no timer is started', (t) => {
  const stream = fakeStream(false);
  const clock = handClock();
  const line = new ProgressLine('waiting for Redis', stream, clock);
  clock.advance(5000);
  line.done();
  t.deepEqual(stream.out, []);
  t.is(clock.timers, 0);
});

test('withProgress erases the line when the work fails, and passes the error on', async (t) => {
  const stream = fakeStream(true);
  const clock = handClock();
  const err = await t.throwsAsync(withProgress('publishing', async () => {
    clock.advance(2000);
    throw new Error('Redis went away');
  }, stream, clock));
  t.is(err?.message, 'Redis went away');
  t.is(stream.out.length, 2);
  t.is(stream.out[1], '\r\x1b[K');
  t.is(clock.stopped, 1);
});

test('withProgress returns what the work returns', async (t) => {
  t.is(await withProgress('x', async () => 42, fakeStream(true), handClock()), 42);
});
