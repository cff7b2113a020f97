// Memory settings of actor processes: V8's heap growing factor (actors/supervisor/heap.ts), configured, with
// its default and its refusals; glibc's malloc settings (actors/supervisor/malloc.ts), which the supervisor
// puts in every actor's environment unless the operator set their own. Their effect on garbage
// collection and page faults is measured by the PUTCHUNKS benchmark.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { ConfigError, parseConfig } from '../proto/config/config.js';
import { MALLOC_TUNABLES, withMallocTuning } from '../actors/supervisor/malloc.js';
import { withHeapFlags } from '../actors/supervisor/heap.js';
import { childrenOf } from '../bench/support.js';
import { configFolder } from './support/config-folder.js';
import { cleanup, makeGatewayFolder, startGatewayProcess, waitForGateway } from './support/gateway.js';

test('config: actors.heap_growth_percent defaults to 300, 0 keeps V8\'s own, a negative or fractional value is refused', (t) => {
  const { dir, base } = configFolder(t);
  t.is(parseConfig(base, dir).actors.heap_growth_percent, 300);
  t.is(parseConfig({ ...base, actors: { heap_growth_percent: 0 } }, dir).actors.heap_growth_percent, 0);
  for (const bad of [-1, 2.5, 'lots']) {
    t.throws(() => parseConfig({ ...base, actors: { heap_growth_percent: bad } }, dir), { instanceOf: ConfigError, message: /actors\.heap_growth_percent/ });
  }
});

test('malloc settings: added to an environment without GLIBC_TUNABLES; an operator\'s own, even "", is kept', (t) => {
  t.is(withMallocTuning({ PATH: '/bin' }).GLIBC_TUNABLES, MALLOC_TUNABLES);
  t.is(withMallocTuning({ PATH: '/bin' }).PATH, '/bin');
  t.is(withMallocTuning({ GLIBC_TUNABLES: '' }).GLIBC_TUNABLES, '');
  t.is(withMallocTuning({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }).GLIBC_TUNABLES, 'glibc.malloc.arena_max=2');
});

function environOf(pid: number): Map<string, string> {
  const entries = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').filter(Boolean).map((e) => {
    const eq = e.indexOf('=');
    return [e.slice(0, eq), e.slice(eq + 1)] as [string, string];
  });
  return new Map(entries);
}

for (const [title, own] of [['every actor process starts with the malloc settings', undefined], ['an operator\'s GLIBC_TUNABLES reaches the actors unchanged', 'glibc.malloc.arena_max=2']] as const) {
  test.serial(`supervisor: ${title}`, async (t) => {
    const f = await makeGatewayFolder();
    const gw = startGatewayProcess(f.configFile, undefined, undefined, { env: { GLIBC_TUNABLES: own } });
    const redis = new Redis(f.redisUrl);
    try {
      await waitForGateway(f, redis);
      const actors = childrenOf(gw.proc.pid!).filter((c) => / actor /.test(c.args));
      t.true(actors.length >= 2, gw.output());
      // glibc cuts the variable at its first ':' in place while parsing it, and /proc shows that.
      for (const a of actors) t.is(environOf(a.pid).get('GLIBC_TUNABLES'), (own ?? MALLOC_TUNABLES).split(':')[0], a.args);
    } finally {
      await gw.stop();
      redis.disconnect();
      cleanup([f.dir]);
    }
  });
}

test('heap flags: chunk-holding actors get 4 MB semi-spaces, rarely called ones 1 MB, others V8\'s own; NODE_OPTIONS kept', (t) => {
  t.is(withHeapFlags({ NODE_OPTIONS: '--enable-source-maps' }, 'http').NODE_OPTIONS, '--enable-source-maps --max-semi-space-size=4');
  t.is(withHeapFlags({}, 'cache').NODE_OPTIONS, '--max-semi-space-size=4');
  t.is(withHeapFlags({}, 'driver:rename').NODE_OPTIONS, '--max-semi-space-size=1');
  t.is(withHeapFlags({}, 'driver:read').NODE_OPTIONS, undefined);
});
