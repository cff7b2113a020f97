// /metrics on a real gateway: Prometheus text that a strict parser accepts, guarded by the admin
// credential, with counters that move by exactly the traffic sent.
import test from 'ava';
import { ChunkType } from '../proto/messages.js';
import { formatBlockUrl } from '../http/data-url.js';
import { layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import { routeOf } from '../http/metrics.js';
import { ConfigError, parseConfig } from '../proto/config/config.js';
import { Queue } from 'bullmq';
import { randomUUID } from 'node:crypto';
import { keys, modeQueueName, queuePrefix } from '../queues/names.js';
import type { JobData } from '../queues/ask.js';
import { fileRef, liveActors, rawGet, signalActorAndAwaitAnother, waitFor } from './support/gateway.js';
import { gatewayPerFile } from './support/gateway-per-file.js';
import { parsePrometheusText, sampleValue, type Family } from './support/prom-text.js';

const TOKEN = 'metrics-test-token';
const gateway = gatewayPerFile({ config: { admin: { token: TOKEN } } });

async function scrape(): Promise<Map<string, Family>> {
  const res = await fetch(`${gateway.f.url}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  if (!res.headers.get('content-type')?.startsWith('text/plain; version=0.0.4')) throw new Error(`content type ${res.headers.get('content-type')}`);
  return parsePrometheusText(await res.text());
}

const v = (m: Map<string, Family>, name: string, labels: Record<string, string> = {}) => sampleValue(m, name, labels) ?? 0;

test('the strict parser refuses what Prometheus would refuse', (t) => {
  const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 3\n';
  t.is(sampleValue(parsePrometheusText(ok), 'a_total', { x: '1' }), 3);
  t.throws(() => parsePrometheusText('a_total 3\n'), { message: /no TYPE/ });
  t.throws(() => parsePrometheusText('# TYPE a counter\na{x=1} 3\n'), { message: /not quoted/ });
  t.throws(() => parsePrometheusText('# TYPE a counter\na 3\na 4\n'), { message: /twice/ });
  t.throws(() => parsePrometheusText('# TYPE a counter\na three\n'), { message: /bad value/ });
  t.throws(() => parsePrometheusText('# TYPE 1a counter\n'), { message: /bad metric name/ });
  t.throws(() => parsePrometheusText('# TYPE a counter\na 3'), { message: /newline/ });
});

test('route labels are templates, never raw paths', (t) => {
  t.is(routeOf('GET', '/DATA/3/dir/file.txt.fedcba9876543210.-3/0.1'), '/DATA/*');
  t.is(routeOf('POST', '/'), '/');
  t.is(routeOf('GET', '/PING'), '/PING');
  t.is(routeOf('GET', '/some/random/path/123'), 'other');
  t.is(routeOf('POST', '/elsewhere'), 'other');
  t.is(routeOf('GET', '/admin/queues/api/queues'), '/admin/queues/*');
  t.is(routeOf('PUT', '/FILES/dir/a.txt'), '/FILES/*');
  t.is(routeOf('GET', '/FILESX'), 'other');
});

test.serial('config: metrics are on by default, metrics.enabled must be a boolean', (t) => {
  const base = { gateway: { type: 'RG', id: 1, user_id: 1, volume_id: 1, private_key: 'keys/rg.pem' } };
  t.true(parseConfig(base, gateway.f.dir).metrics.enabled);
  t.false(parseConfig({ ...base, metrics: { enabled: false } }, gateway.f.dir).metrics.enabled);
  t.throws(() => parseConfig({ ...base, metrics: { enabled: 'no' } }, gateway.f.dir), { instanceOf: ConfigError, message: /metrics.enabled/ });
});

test.serial('/metrics needs the admin credential when one is configured', async (t) => {
  const { f } = gateway;
  const none = await fetch(`${f.url}/metrics`);
  t.is(none.status, 401);
  t.truthy(none.headers.get('www-authenticate'));
  t.is((await fetch(`${f.url}/metrics`, { headers: { Authorization: 'Bearer wrong' } })).status, 401);
  t.is((await fetch(`${f.url}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } })).status, 200);
});

test.serial('a chunk too large for its job is counted by the way it reached the write actor', async (t) => {
  const { f } = gateway;
  const before = await scrape();
  const file = fileRef(f, { file_id: 0x5152n });
  const { blocks, data } = layOutChunks([{ block: { block_id: 0n, block_version: 1n, chunk_type: ChunkType.BLOCK }, bytes: Buffer.alloc(200_000, 7) }]);
  t.is((await sendControlPlane(f.url, putChunksFields(file, blocks), f.ugKey, data)).status, 200);
  const after = await scrape();
  const delta = (via: string) => v(after, 'sgw_chunk_transfers_total', { via }) - v(before, 'sgw_chunk_transfers_total', { via });
  t.is(delta('host'), 1, 'the write actor runs on this host: the chunk went through a host file');
  t.is(delta('redis'), 0);
});

test.serial('counters move with traffic: requests, durations, driver calls, cache, auth rejections', async (t) => {
  const { f } = gateway;
  const before = await scrape();
  const file = fileRef(f, { file_id: 0x5151n });
  const bytes = Buffer.from('counted by the metrics');
  const { blocks, data } = layOutChunks([{ block: { block_id: 0n, block_version: 1n, chunk_type: ChunkType.BLOCK }, bytes }]);
  t.is((await sendControlPlane(f.url, putChunksFields(file, blocks), f.ugKey, data)).status, 200);
  const url = (block: bigint) => formatBlockUrl(f.url, { volume_id: 3n, fs_path: file.fs_path, file_id: file.file_id, file_version: file.file_version, block_id: block, block_version: 1n });
  t.is((await fetch(url(0n))).status, 200); // miss: read from the driver, then cached
  t.is((await fetch(url(0n))).status, 200); // hit
  t.is((await fetch(url(0n))).status, 200); // hit
  t.is((await fetch(url(9n))).status, 404); // miss, driver says ENOENT
  t.is((await rawGet(f.url, '/DATA/3/../etc/passwd.1.2/0.1')).status, 400);
  // Signed with the wrong key: refused as a bad signature.
  t.is((await sendControlPlane(f.url, putChunksFields(file, blocks), f.rgKey, data)).status, 401);
  const after = await scrape();

  const delta = (name: string, labels: Record<string, string> = {}) => v(after, name, labels) - v(before, name, labels);
  const req = (method: string, route: string, status: string) => delta('sgw_http_requests_total', { route, method, status });
  t.is(req('GET', '/DATA/*', '200'), 3);
  t.is(req('GET', '/DATA/*', '404'), 1);
  t.is(req('GET', '/DATA/*', '400'), 1);
  t.is(req('POST', '/', '200'), 1);
  t.is(req('POST', '/', '401'), 1);
  t.is(delta('sgw_http_request_duration_seconds_count', { route: '/DATA/*', method: 'GET' }), 5);
  t.is(delta('sgw_auth_rejections_total', { reason: 'bad_signature' }), 1);
  t.is(delta('sgw_cache_hits_total'), 2);
  t.is(delta('sgw_cache_misses_total'), 2);
  t.true(v(after, 'sgw_cache_bytes') >= bytes.length);
  // One write and two reads went through the driver actors; each reply carried its processing time.
  t.is(delta('sgw_driver_call_duration_seconds_count', { mode: 'write' }), 1);
  t.is(delta('sgw_driver_call_duration_seconds_count', { mode: 'read' }), 2);
  t.is(delta('sgw_driver_call_processing_seconds_count', { mode: 'read' }), 2);
  t.true(v(after, 'sgw_driver_call_processing_seconds_sum', { mode: 'read' }) <= v(after, 'sgw_driver_call_duration_seconds_sum', { mode: 'read' }),
    'processing is part of the round trip');

  const fam = (name: string) => after.get(name);
  t.is(fam('sgw_http_requests_total')?.type, 'counter');
  t.is(fam('sgw_http_request_duration_seconds')?.type, 'histogram');
  t.is(v(after, 'sgw_driver_actors_alive', { mode: 'read' }), 1);
  t.is(v(after, 'sgw_driver_actors_alive', { mode: 'write' }), 1);
  t.is(v(after, 'sgw_queue_jobs', { queue: `${f.gatewayKey}.read`, state: 'waiting' }), 0);
  t.not(sampleValue(after, 'sgw_queue_jobs', { queue: `${f.gatewayKey}.write`, state: 'failed' }), undefined);
  t.is(v(after, 'sgw_redis_up'), 1);
  t.true(v(after, 'sgw_redis_ping_duration_seconds_count') >= 2, 'one PING per scrape');
  t.true(v(after, 'process_cpu_seconds_total') > 0, 'default process metrics');
  t.true((fam('nodejs_eventloop_lag_seconds')?.samples.length ?? 0) > 0);
  for (const f2 of after.values()) for (const s of f2.samples) if (s.name.startsWith('sgw_')) t.false(Number.isNaN(s.value), `${s.name} is NaN`);
  // Every label value is from a small set: no raw path or id leaks into a series.
  for (const f2 of after.values()) for (const s of f2.samples) for (const lv of Object.values(s.labels)) t.false(lv.includes('/dir/'), `${s.name} has a raw path label`);
});

test.serial('a driver actor killed and restarted by the supervisor is counted in sgw_actor_restarts_total', async (t) => {
  const { f, redis } = gateway;
  const before = v(await scrape(), 'sgw_actor_restarts_total', { role: 'driver:read' });
  await signalActorAndAwaitAnother(redis, f.gatewayKey, 'driver:read', 'SIGKILL');
  t.is(v(await scrape(), 'sgw_actor_restarts_total', { role: 'driver:read' }) - before, 1);
});

test.serial('with the read actors paused, queued jobs show as depth and an oldest-waiting age that grows; both fall back once they resume', async (t) => {
  const { f, redis } = gateway;
  const pids = await Promise.all((await liveActors(redis, f.gatewayKey, 'driver:read')).map(async (i) => Number(await redis.hget(keys.actor(f.gatewayKey, i), 'pid'))));
  t.true(pids.length > 0 && pids.every((p) => p > 0));
  const resume = () => { for (const pid of pids) { try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ } } };
  t.teardown(resume);
  const name = modeQueueName(f.gatewayKey, 'read');
  const queue = new Queue<JobData>(name, { connection: redis, prefix: queuePrefix(name) });
  t.teardown(() => queue.close());
  const depth = (m: Map<string, Family>, state: string) => v(m, 'sgw_queue_depth', { gateway: f.gatewayKey, mode: 'read', state });
  const age = (m: Map<string, Family>) => v(m, 'sgw_queue_oldest_wait_seconds', { gateway: f.gatewayKey, mode: 'read' });
  const idle = await scrape();
  t.is(depth(idle, 'waiting'), 0);
  t.is(age(idle), 0);

  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  const n = 3;
  // Calls nobody waits for: once resumed, the actors drop them (their deadline passed) without a driver call.
  for (let i = 0; i < n; i++) await queue.add('read', { calls: [{ id: randomUUID(), reply: `sgw:results:${randomUUID()}`, deadline: Date.now() + 100, req: '' }] });
  const queued = await waitFor('the queued jobs counted', async () => { const m = await scrape(); return depth(m, 'waiting') === n && m; });
  t.true(age(queued) > 0);
  const later = await waitFor('an older oldest job', async () => { const m = await scrape(); return age(m) > age(queued) && m; });
  t.is(depth(later, 'waiting'), n, 'nothing was taken meanwhile');
  t.is(later.get('sgw_queue_depth')?.type, 'gauge');

  resume();
  const drained = await waitFor('the queue drained', async () => { const m = await scrape(); return depth(m, 'waiting') === 0 && m; });
  t.is(age(drained), 0);
});
