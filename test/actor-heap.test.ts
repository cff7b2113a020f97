// The heap growing factor of actor processes (actors/heap.ts): configured, with its default and
// its refusals. Its effect on garbage collection is measured by the PUTCHUNKS benchmark.
import test from 'ava';
import { ConfigError, parseConfig } from '../actors/config.js';
import { configFolder } from './support/config-folder.js';

test('config: actors.heap_growth_percent defaults to 300, 0 keeps V8\'s own, a negative or fractional value is refused', (t) => {
  const { dir, base } = configFolder(t);
  t.is(parseConfig(base, dir).actors.heap_growth_percent, 300);
  t.is(parseConfig({ ...base, actors: { heap_growth_percent: 0 } }, dir).actors.heap_growth_percent, 0);
  for (const bad of [-1, 2.5, 'lots']) {
    t.throws(() => parseConfig({ ...base, actors: { heap_growth_percent: bad } }, dir), { instanceOf: ConfigError, message: /actors\.heap_growth_percent/ });
  }
});
