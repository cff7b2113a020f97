// The S3 RG driver's benchmarks (phase "s3"), each against @aws-sdk/client-s3 alone doing the same
// to the same S3-compatible server (s3rver, in a child process) in the same run:
//   PUTCHUNKS  1 MiB blocks, 8 in flight, through a gateway on the S3 driver (MB/s), against
//              PutObject of the same bytes at the same keys, 8 in flight
//   GET miss   4 KiB blocks stored in S3, each requested once through the gateway (req/s, 64
//              connections), against GetObject of the same objects, 64 in flight
// s3rver is a single-threaded JavaScript server writing files: it bounds both sides, and it is
// the figure of sgw over the SDK alone that says what the gateway costs.
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ReplyCodec } from '../proto/messages.js';
import { request_to_storage_path } from '../drivers/helpers.js';
import { httpLoad } from './cannon.js';
import { startBenchGateway, BenchFile, type BenchGateway } from './gateway.js';
import { CONNECTIONS } from './http-get.js';
import { chunkMBps, load, prepare, POSTS_IN_FLIGHT, WARMUP, WARMUP_MS } from './post-chunks.js';
import { closedLoop, cpuWindow, formatCpu, type Latency } from './support.js';
import { ratio, type Row } from './report.js';
import { S3_DRIVER_JS, startTestS3, type TestS3 } from '../test/support/s3.js';

const BUCKET = 'bench';
const PREFIX = 'rg/';
const log = (m: string) => process.stderr.write(`bench: ${m}\n`);

function disturbed(...cpus: Record<string, number>[]): string {
  const worst = Math.max(...cpus.map((c) => c.others ?? 0));
  return worst > 0.25 ? `; DISTURBED: other processes used up to ${worst.toFixed(2)} cores meanwhile` : '';
}

/** PUTCHUNKS through the gateway, then PutObject of the same chunks at the same keys from this process. */
async function puts(g: BenchGateway, s3: TestS3, seconds: number, maxRequests = 1600) {
  const file = new BenchFile(g, 0x53570001n);
  const p = prepare(file, maxRequests + WARMUP, true); // the S3 driver overwrites, as PutObject does
  const pids = { ...g.cpuPids, s3: s3.pid };
  const gateway = await load(g.f.url, p, seconds, pids, (r) => r.status === 200 && ReplyCodec.decode(r.body).error_code === 0);
  // The keys the driver wrote: the 64 block ids the prepared requests rotate through.
  const keys = Array.from({ length: 64 }, (_, i) => PREFIX + request_to_storage_path(file.readRequest(i)));
  const put = (i: number) => s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: keys[i % 64]!, Body: p.data, ContentLength: p.data.length })).then(() => true);
  await closedLoop({ inFlight: POSTS_IN_FLIGHT, maxCount: WARMUP, maxMs: WARMUP_MS }, put);
  const cpu = cpuWindow({ s3: s3.pid, bench: process.pid });
  const sdk = await closedLoop({ inFlight: POSTS_IN_FLIGHT, maxCount: maxRequests, maxMs: seconds * 1000 }, put);
  return { gateway, sdk: { ...sdk, cpu: cpu() } };
}

/** Cache-miss GETs through the gateway of objects seeded with the SDK, then GetObject of the same ones. */
async function misses(g: BenchGateway, s3: TestS3, seconds: number, blocks = 4000) {
  const warm = 300;
  const file = new BenchFile(g, 0x53570002n);
  const keys = Array.from({ length: warm + blocks }, (_, i) => PREFIX + request_to_storage_path(file.readRequest(i)));
  const bytes = Buffer.alloc(4096, 0x53);
  log(`seeding ${keys.length} objects of 4 KiB into the S3 server`);
  const seeded = await closedLoop({ inFlight: 64, maxCount: keys.length, maxMs: 120_000 }, (i) =>
    s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: keys[i]!, Body: bytes })).then(() => true));
  if (seeded.count < keys.length || seeded.errors) throw new Error(`seeding stored ${seeded.count - seeded.errors} of ${keys.length} objects`);
  const paths = keys.map((_, i) => file.path(i));
  await httpLoad({ url: g.f.url, connections: CONNECTIONS, seconds: 2, amount: warm, path: (i) => paths[i]! });
  const cpu = cpuWindow({ ...g.cpuPids, s3: s3.pid });
  const gateway = await httpLoad({ url: g.f.url, connections: CONNECTIONS, seconds, amount: blocks, path: (i) => paths[warm + i]! });
  const gatewayCpu = cpu();
  const sdkCpu = cpuWindow({ s3: s3.pid, bench: process.pid });
  const sdk: Latency = await closedLoop({ inFlight: CONNECTIONS, maxCount: blocks, maxMs: seconds * 1000 }, async (i) => {
    const r = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: keys[warm + i]! }));
    return (await r.Body!.transformToByteArray()).length === bytes.length;
  });
  const requested = gateway.ok + gateway.failed;
  return { gateway, gatewayCpu, sdk, sdkCpu: sdkCpu(), exhausted: requested >= blocks || sdk.count >= blocks };
}

export async function s3Benchmarks(seconds: number): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  log('S3 driver: an S3-compatible server (s3rver) and a gateway on the S3 driver');
  const s3 = await startTestS3();
  let g: BenchGateway | null = null;
  try {
    await s3.createBucket(BUCKET);
    g = await startBenchGateway(s3.driverOptions(S3_DRIVER_JS, { BUCKET, PREFIX }));
    log('S3 driver: POST PUTCHUNKS 1 MiB, gateway then the SDK alone');
    const put = await puts(g, s3, seconds);
    log('S3 driver: GET 4 KiB cache misses, gateway then the SDK alone');
    const miss = await misses(g, s3, seconds);
    const putRow: Row = {
      name: `S3 driver: POST PUTCHUNKS 1 MiB, MB/s (${POSTS_IN_FLIGHT} in flight)`, value: chunkMBps(put.gateway), unit: 'MB/s',
      baseline: chunkMBps(put.sdk), baselineName: '@aws-sdk/client-s3 PutObject alone', target: 'ratio ≥ 0.7',
    };
    putRow.pass = ratio(putRow)! >= 0.7 && put.gateway.errors === 0;
    putRow.note = `CPU cores: ${formatCpu(put.gateway.cpu)} (SDK alone: ${formatCpu(put.sdk.cpu)})${disturbed(put.gateway.cpu, put.sdk.cpu)}`
      + `${put.gateway.errors ? `; ${put.gateway.errors} POSTs failed` : ''}`;
    const missRow: Row = {
      name: `S3 driver: GET 4 KiB cache miss, req/s (${CONNECTIONS} conns)`, value: miss.gateway.rate, unit: '/s',
      baseline: miss.sdk.rate, baselineName: '@aws-sdk/client-s3 GetObject alone', target: 'ratio ≥ 0.7',
    };
    missRow.pass = ratio(missRow)! >= 0.7 && miss.gateway.failed === 0;
    missRow.note = `CPU cores: ${formatCpu(miss.gatewayCpu)} (SDK alone: ${formatCpu(miss.sdkCpu)})${disturbed(miss.gatewayCpu, miss.sdkCpu)}`
      + `${miss.gateway.failed ? `; ${miss.gateway.failed} failed: ${JSON.stringify(miss.gateway.statuses)}` : ''}`
      + `${miss.exhausted ? '; ran out of seeded objects before the time limit' : ''}`;
    return {
      rows: [
        putRow,
        { name: 'S3 driver: POST PUTCHUNKS 1 MiB, p50', value: put.gateway.p50, unit: 'ms', baseline: put.sdk.p50, baselineName: 'SDK PutObject' },
        missRow,
        { name: 'S3 driver: GET 4 KiB cache miss, p99', value: miss.gateway.p99, unit: 'ms', baseline: miss.sdk.p99, baselineName: 'SDK GetObject' },
      ],
      raw: { put, miss },
    };
  } finally {
    await g?.stop();
    await s3.close();
  }
}
