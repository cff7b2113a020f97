// The time a serving actor gives a call (queues/ask.ts timeToAnswer): it stops early enough for
// its own answer (504 for a hung driver) to reach the asker before the asker's deadline (503).
import test from 'ava';
import { timeToAnswer } from '../queues/ask.js';

test('a serving actor keeps a fifth of the time left, at most 250 ms, for its answer to travel back', (t) => {
  const now = 1_000_000;
  t.is(timeToAnswer(now + 10_000, now), 9_750);
  t.is(timeToAnswer(now + 2_500, now), 2_250);
  t.is(timeToAnswer(now + 1_000, now), 800);
  t.is(timeToAnswer(now + 100, now), 80);
  t.is(timeToAnswer(now, now), 1, 'a deadline already reached still gets a timer');
  t.is(timeToAnswer(now - 500, now), 1);
});
