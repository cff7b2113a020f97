// The S3 RG driver's benchmarks (phase "s3"), each against @aws-sdk/client-s3 alone doing the same
// to the same S3-compatible server (s3rver, in a child process) in alternated turns of the same run:
//   PUTCHUNKS  1 MiB blocks, 8 in flight, through a gateway on the S3 driver (MB/s), against
//              PutObject of the same bytes at the same keys, 8 in flight
//   GET miss   MISSES_PER_SECOND × seconds objects of 4 KiB stored in S3, each requested once
//              through the gateway (64 connections), against GetObject of the same objects, 64 in
//              flight; both sides do that same work, and the rate is objects / the time it took
// The baseline's client is built from the driver's own settings (bucket.ts clientConfig: keep-alive
// connections, no SDK retries, checksums only when required), so the ratio is the gateway's cost,
// not a difference of client settings. s3rver is a single-threaded JavaScript server writing
// files: it bounds both sides.
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ReplyCodec } from '../proto/messages.js';
import { request_to_storage_path } from '../drivers/helpers.js';
import { bucketSettings, clientConfig } from '../drivers/builtin/s3/bucket.js';
import { alternated, formatRatios, httpLoad, TURNS } from './load.js';
import { startBenchGateway, BenchFile, type BenchGateway } from './gateway.js';
import { CONNECTIONS, turnSeconds } from './http-get.js';
import { chunkMBps, prepare, PostLoad, POSTS_IN_FLIGHT, WARMUP, WARMUP_MS } from './post-chunks.js';
import { closedLoop, cpuWindow, cutProfiles, formatCpu, profiled, usPerRequest, type Latency } from './support.js';
import { ratio, type Row } from './report.js';
import { S3_DRIVER_JS, S3_SECRETS, startTestS3, type TestS3 } from '../test/support/s3.js';

const BUCKET = 'bench';
const PREFIX = 'rg/';
/** Objects seeded per measured second for the GET misses: more than either side gets through here. */
const MISSES_PER_SECOND = 1000;
const log = (m: string) => process.stderr.write(`bench: ${m}\n`);

function disturbed(...cpus: Record<string, number>[]): string {
  const worst = Math.max(...cpus.map((c) => c.others ?? 0));
  return worst > 0.25 ? `; DISTURBED: other processes used up to ${worst.toFixed(2)} cores meanwhile` : '';
}

/** "driver:write 2710, http 1900, ..." µs of CPU per request of each busy process. */
function perRequest(cpu: Record<string, number>, rate: number): string {
  return Object.entries(cpu).filter(([k, v]) => k !== 'others' && v >= 0.02).sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${usPerRequest(v, rate).toFixed(0)}`).join(', ');
}

interface Sides {
  g: BenchGateway;
  s3: TestS3;
  /** The SDK alone, with the driver's client settings. */
  sdk: S3Client;
  /** The gateway's actors, whose profiles are cut around each measured window. */
  actors: number[];
}

/**
 * PUTCHUNKS through the gateway and PutObject of the same chunks at the same keys from this
 * process, in alternated turns.
 */
async function puts({ g, s3, sdk, actors }: Sides, seconds: number, maxRequests = 1600) {
  const file = new BenchFile(g, 0x53570001n);
  const p = prepare(file, maxRequests + WARMUP, true); // the S3 driver overwrites, as PutObject does
  const l = new PostLoad(g.f.url, p, { ...g.cpuPids, s3: s3.pid }, (r) => r.status === 200 && ReplyCodec.decode(r.body).error_code === 0);
  // The keys the driver writes: the 64 block ids the prepared requests rotate through.
  const keys = Array.from({ length: 64 }, (_, i) => PREFIX + request_to_storage_path(file.readRequest(i)));
  // The request write_chunk sends, from the same client settings.
  const put = (i: number) => sdk.send(new PutObjectCommand({
    Bucket: BUCKET, Key: keys[i % 64]!, Body: p.data, ContentLength: p.data.length, ContentType: 'application/octet-stream',
  })).then(() => true);
  try {
    await l.warmUp();
    await closedLoop({ inFlight: POSTS_IN_FLIGHT, maxCount: WARMUP, maxMs: WARMUP_MS }, put);
    const perTurn = Math.floor(maxRequests / TURNS);
    const r = await alternated(TURNS, async () => {
      cutProfiles(actors);
      const gateway = await l.run(turnSeconds(seconds), perTurn);
      cutProfiles(actors);
      return gateway;
    }, async () => {
      const cpu = cpuWindow({ s3: s3.pid, bench: process.pid });
      const alone = await closedLoop({ inFlight: POSTS_IN_FLIGHT, maxCount: perTurn, maxMs: turnSeconds(seconds) * 1000 }, put);
      return { ...alone, cpu: cpu() };
    }, (side) => side.rate);
    return { gateway: r.a, sdk: r.b, ratios: r.ratios };
  } finally {
    l.close();
  }
}

/**
 * Cache-miss GETs through the gateway of objects seeded with the SDK, and GetObject of others as
 * many, in alternated turns: each side gets each of its objects once, and its rate is their count
 * / the time it took. `seconds` × 4 is only a guard against a stuck run (a run it cuts short says so).
 */
async function misses({ g, s3, sdk, actors }: Sides, seconds: number, count = seconds * MISSES_PER_SECOND) {
  const warm = 300;
  const perTurn = Math.floor(count / TURNS);
  const file = new BenchFile(g, 0x53570002n);
  // Turn t: the gateway gets objects warm + 2t·perTurn onwards, the SDK alone the next perTurn.
  const keys = Array.from({ length: warm + 2 * TURNS * perTurn }, (_, i) => PREFIX + request_to_storage_path(file.readRequest(i)));
  const bytes = Buffer.alloc(4096, 0x53);
  log(`seeding ${keys.length} objects of 4 KiB into the S3 server`);
  const seeded = await closedLoop({ inFlight: 64, maxCount: keys.length, maxMs: 300_000 }, (i) =>
    s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: keys[i]!, Body: bytes })).then(() => true));
  if (seeded.count < keys.length || seeded.errors) throw new Error(`seeding stored ${seeded.count - seeded.errors} of ${keys.length} objects`);
  const paths = keys.map((_, i) => file.path(i));
  const guard = seconds * 4;
  await httpLoad({ url: g.f.url, connections: CONNECTIONS, seconds: 2, once: true, paths: paths.slice(0, warm) });
  await closedLoop({ inFlight: CONNECTIONS, maxCount: warm, maxMs: 2000 }, (i) => getObject(sdk, keys[i]!, bytes.length));
  const from = (turn: number, side: 0 | 1) => warm + (2 * turn + side) * perTurn;
  const r = await alternated(TURNS, async (turn) => {
    cutProfiles(actors);
    const cpu = cpuWindow({ ...g.cpuPids, s3: s3.pid });
    const load = await httpLoad({ url: g.f.url, connections: CONNECTIONS, seconds: guard, once: true, paths: paths.slice(from(turn, 0), from(turn, 0) + perTurn) });
    const gatewayCpu = cpu();
    cutProfiles(actors);
    return { load, cpu: gatewayCpu };
  }, async (turn) => {
    const cpu = cpuWindow({ s3: s3.pid, bench: process.pid });
    const alone = await closedLoop({ inFlight: CONNECTIONS, maxCount: perTurn, maxMs: guard * 1000 }, (i) => getObject(sdk, keys[from(turn, 1) + i]!, bytes.length));
    return { load: alone, cpu: cpu() };
  }, (side) => side.load.rate);
  const gateway = r.a.load;
  return {
    count: perTurn, gateway, gatewayCpu: r.a.cpu, sdk: r.b.load, sdkCpu: r.b.cpu, ratios: r.ratios,
    cut: gateway.ok + gateway.failed < perTurn || r.b.load.count < perTurn,
  };
}

async function getObject(sdk: S3Client, key: string, size: number): Promise<boolean> {
  const r = await sdk.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return (await r.Body!.transformToByteArray()).length === size;
}

export async function s3Benchmarks(seconds: number): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  log('S3 driver: an S3-compatible server (s3rver) and a gateway on the S3 driver');
  const s3 = await startTestS3();
  let g: BenchGateway | null = null;
  let sdk: S3Client | null = null;
  try {
    await s3.createBucket(BUCKET);
    const driver = s3.driverOptions(S3_DRIVER_JS, { BUCKET, PREFIX });
    const settings = bucketSettings(driver.driverConfig!, S3_SECRETS);
    if (typeof settings === 'string') throw new Error(settings);
    sdk = new S3Client(clientConfig(settings));
    g = await profiled(() => startBenchGateway(driver));
    const sides: Sides = { g, s3, sdk, actors: Object.values(g.pids) };
    log('S3 driver: POST PUTCHUNKS 1 MiB, gateway and the SDK alone in turns');
    const put = await puts(sides, seconds);
    log('S3 driver: GET 4 KiB cache misses, gateway and the SDK alone in turns');
    const miss = await misses(sides, seconds);
    const putRate = put.gateway.count / put.gateway.seconds;
    const putRow: Row = {
      name: `S3 driver: POST PUTCHUNKS 1 MiB, MB/s (${POSTS_IN_FLIGHT} in flight)`, value: chunkMBps(put.gateway), unit: 'MB/s',
      baseline: chunkMBps(put.sdk), baselineName: '@aws-sdk/client-s3 PutObject alone', target: 'ratio ≥ 0.7',
    };
    putRow.pass = ratio(putRow)! >= 0.7 && put.gateway.errors === 0;
    putRow.note = `gateway/SDK in ${put.ratios.length} alternated turns: ${formatRatios(put.ratios)} (the median turn's figures); CPU cores: ${formatCpu(put.gateway.cpu)} (SDK alone: ${formatCpu(put.sdk.cpu)})${disturbed(put.gateway.cpu, put.sdk.cpu)}; `
      + `µs of CPU per 1 MiB request: ${perRequest(put.gateway.cpu, putRate)} (SDK alone: ${perRequest(put.sdk.cpu, put.sdk.rate)})`
      + `${put.gateway.errors ? `; ${put.gateway.errors} POSTs failed` : ''}`;
    const missRow: Row = {
      name: `S3 driver: GET 4 KiB cache miss, req/s (${CONNECTIONS} conns, ${miss.count} objects a turn)`, value: miss.gateway.rate, unit: '/s',
      baseline: miss.sdk.rate, baselineName: '@aws-sdk/client-s3 GetObject alone', target: 'ratio ≥ 0.7',
    };
    missRow.pass = ratio(missRow)! >= 0.7 && miss.gateway.failed === 0;
    missRow.note = `gateway/SDK in ${miss.ratios.length} alternated turns: ${formatRatios(miss.ratios)} (the median turn's figures); ${miss.gateway.seconds.toFixed(1)} s (SDK alone ${miss.sdk.seconds.toFixed(1)} s); `
      + `CPU cores: ${formatCpu(miss.gatewayCpu)}, load generator ${miss.gateway.generatorCores} (SDK alone: ${formatCpu(miss.sdkCpu)})${disturbed(miss.gatewayCpu, miss.sdkCpu)}; `
      + `µs of CPU per request: ${perRequest(miss.gatewayCpu, miss.gateway.rate)} (SDK alone: ${perRequest(miss.sdkCpu, miss.sdk.rate)})`
      + `${miss.gateway.failed ? `; ${miss.gateway.failed} failed: ${JSON.stringify(miss.gateway.statuses)}` : ''}`
      + `${miss.cut ? `; a side was cut short by the ${seconds * 4} s guard before getting all ${miss.count} objects` : ''}`;
    return {
      rows: [
        putRow,
        { name: 'S3 driver: POST PUTCHUNKS 1 MiB, p50', value: put.gateway.p50, unit: 'ms', baseline: put.sdk.p50, baselineName: 'SDK PutObject' },
        {
          name: 'S3 driver: PUTCHUNKS 1 MiB, driver:write actor CPU per request', value: usPerRequest(put.gateway.cpu['driver:write'], putRate), unit: 'µs',
          baseline: usPerRequest(put.sdk.cpu.bench, put.sdk.rate), baselineName: 'SDK PutObject alone, its process',
        },
        missRow,
        { name: 'S3 driver: GET 4 KiB cache miss, p99', value: miss.gateway.p99, unit: 'ms', baseline: miss.sdk.p99, baselineName: 'SDK GetObject' },
        {
          name: 'S3 driver: GET 4 KiB cache miss, driver:read actor CPU per request', value: usPerRequest(miss.gatewayCpu['driver:read'], miss.gateway.rate), unit: 'µs',
          baseline: usPerRequest(miss.sdkCpu.bench, miss.sdk.rate), baselineName: 'SDK GetObject alone, its process',
        },
      ],
      raw: { put, miss },
    };
  } finally {
    await g?.stop();
    sdk?.destroy();
    await s3.close();
  }
}
