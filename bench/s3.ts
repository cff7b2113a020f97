// The S3 RG driver's benchmarks (phase "s3"), each against @aws-sdk/client-s3 alone doing the same
// to the same S3-compatible server (s3rver, in a child process) in the same run:
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
import { httpLoad, type HttpLoad } from './load.js';
import { startBenchGateway, BenchFile, type BenchGateway } from './gateway.js';
import { CONNECTIONS } from './http-get.js';
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

/** PUTCHUNKS through the gateway, then PutObject of the same chunks at the same keys from this process. */
async function puts({ g, s3, sdk, actors }: Sides, seconds: number, maxRequests = 1600) {
  const file = new BenchFile(g, 0x53570001n);
  const p = prepare(file, maxRequests + WARMUP, true); // the S3 driver overwrites, as PutObject does
  const l = new PostLoad(g.f.url, p, { ...g.cpuPids, s3: s3.pid }, (r) => r.status === 200 && ReplyCodec.decode(r.body).error_code === 0);
  let gateway: Latency & { cpu: Record<string, number> };
  try {
    await l.warmUp();
    cutProfiles(actors);
    gateway = await l.run(seconds);
    cutProfiles(actors);
  } finally {
    l.close();
  }
  // The keys the driver wrote: the 64 block ids the prepared requests rotate through.
  const keys = Array.from({ length: 64 }, (_, i) => PREFIX + request_to_storage_path(file.readRequest(i)));
  // The request write_chunk sends, from the same client settings.
  const put = (i: number) => sdk.send(new PutObjectCommand({
    Bucket: BUCKET, Key: keys[i % 64]!, Body: p.data, ContentLength: p.data.length, ContentType: 'application/octet-stream',
  })).then(() => true);
  await closedLoop({ inFlight: POSTS_IN_FLIGHT, maxCount: WARMUP, maxMs: WARMUP_MS }, put);
  const cpu = cpuWindow({ s3: s3.pid, bench: process.pid });
  const alone = await closedLoop({ inFlight: POSTS_IN_FLIGHT, maxCount: maxRequests, maxMs: seconds * 1000 }, put);
  return { gateway, sdk: { ...alone, cpu: cpu() } };
}

/**
 * Cache-miss GETs through the gateway of `count` objects seeded with the SDK, then GetObject of
 * the same ones: each side gets each object once, and its rate is `count` / the time it took.
 * `seconds` × 4 is only a guard against a stuck run (a run it cuts short says so).
 */
async function misses({ g, s3, sdk, actors }: Sides, seconds: number, count = seconds * MISSES_PER_SECOND) {
  const warm = 300;
  const file = new BenchFile(g, 0x53570002n);
  const keys = Array.from({ length: warm + count }, (_, i) => PREFIX + request_to_storage_path(file.readRequest(i)));
  const bytes = Buffer.alloc(4096, 0x53);
  log(`seeding ${keys.length} objects of 4 KiB into the S3 server`);
  const seeded = await closedLoop({ inFlight: 64, maxCount: keys.length, maxMs: 300_000 }, (i) =>
    s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: keys[i]!, Body: bytes })).then(() => true));
  if (seeded.count < keys.length || seeded.errors) throw new Error(`seeding stored ${seeded.count - seeded.errors} of ${keys.length} objects`);
  const paths = keys.map((_, i) => file.path(i));
  const guard = seconds * 4;
  await httpLoad({ url: g.f.url, connections: CONNECTIONS, seconds: 2, once: true, paths: paths.slice(0, warm) });
  await closedLoop({ inFlight: CONNECTIONS, maxCount: warm, maxMs: 2000 }, (i) => getObject(sdk, keys[i]!, bytes.length));
  cutProfiles(actors);
  const cpu = cpuWindow({ ...g.cpuPids, s3: s3.pid });
  const gateway: HttpLoad = await httpLoad({ url: g.f.url, connections: CONNECTIONS, seconds: guard, once: true, paths: paths.slice(warm) });
  const gatewayCpu = cpu();
  cutProfiles(actors);
  const sdkCpu = cpuWindow({ s3: s3.pid, bench: process.pid });
  const alone: Latency = await closedLoop({ inFlight: CONNECTIONS, maxCount: count, maxMs: guard * 1000 }, (i) => getObject(sdk, keys[warm + i]!, bytes.length));
  return { count, gateway, gatewayCpu, sdk: alone, sdkCpu: sdkCpu(), cut: gateway.ok + gateway.failed < count || alone.count < count };
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
    log('S3 driver: POST PUTCHUNKS 1 MiB, gateway then the SDK alone');
    const put = await puts(sides, seconds);
    log('S3 driver: GET 4 KiB cache misses, gateway then the SDK alone');
    const miss = await misses(sides, seconds);
    const putRate = put.gateway.count / put.gateway.seconds;
    const putRow: Row = {
      name: `S3 driver: POST PUTCHUNKS 1 MiB, MB/s (${POSTS_IN_FLIGHT} in flight)`, value: chunkMBps(put.gateway), unit: 'MB/s',
      baseline: chunkMBps(put.sdk), baselineName: '@aws-sdk/client-s3 PutObject alone', target: 'ratio ≥ 0.7',
    };
    putRow.pass = ratio(putRow)! >= 0.7 && put.gateway.errors === 0;
    putRow.note = `CPU cores: ${formatCpu(put.gateway.cpu)} (SDK alone: ${formatCpu(put.sdk.cpu)})${disturbed(put.gateway.cpu, put.sdk.cpu)}; `
      + `µs of CPU per 1 MiB request: ${perRequest(put.gateway.cpu, putRate)} (SDK alone: ${perRequest(put.sdk.cpu, put.sdk.rate)})`
      + `${put.gateway.errors ? `; ${put.gateway.errors} POSTs failed` : ''}`;
    const missRow: Row = {
      name: `S3 driver: GET 4 KiB cache miss, req/s (${CONNECTIONS} conns, ${miss.count} objects)`, value: miss.gateway.rate, unit: '/s',
      baseline: miss.sdk.rate, baselineName: '@aws-sdk/client-s3 GetObject alone', target: 'ratio ≥ 0.7',
    };
    missRow.pass = ratio(missRow)! >= 0.7 && miss.gateway.failed === 0;
    missRow.note = `${miss.gateway.seconds.toFixed(1)} s (SDK alone ${miss.sdk.seconds.toFixed(1)} s); `
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
