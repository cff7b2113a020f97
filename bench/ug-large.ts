// Large UG transfers stream: a 1 GiB file written and read back through a UG and one RG (default
// cache sizes), while the RSS of every actor of both gateways is sampled. No actor may need memory
// in proportion to the file (target: at most 256 MiB each). The bytes read back are checked
// against a hash of what was written.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { testRedis } from '../test/support/redis.js';
import type { RunningVolume } from '../test/support/ug.js';
import type { Row } from './report.js';
import { memoryOf, RssSampler } from './support.js';
import { cpuNote, putFile, startBenchVolume, timed, volumePids, type Timed } from './ug.js';
import { get as httpGet } from 'node:http';

const SIZE = 1 << 30;
const PIECE = 1 << 20;
const LIMIT_MIB = 256;
const log = (m: string) => process.stderr.write(`bench: ${m}\n`);

/** 1 GiB of bytes that differ from block to block, made as they are sent (the same each time). */
function content(base: Buffer): Readable {
  let i = 0;
  return new Readable({
    read() {
      if (i * PIECE >= SIZE) return void this.push(null);
      const piece = Buffer.from(base);
      piece.writeUInt32BE(i++, 0);
      this.push(piece);
    },
  });
}

function sha256Of(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    stream.on('data', (d: Buffer) => h.update(d));
    stream.once('end', () => resolve(h.digest('hex')));
    stream.once('error', reject);
  });
}

function readHash(v: RunningVolume, path: string): Promise<{ bytes: number; sha: string }> {
  return new Promise((resolve, reject) => {
    httpGet(`${v.client.url}/FILES${path}`, { headers: { Authorization: `Bearer ${v.client.token}` } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`GET ${path}: ${res.statusCode}`));
      const h = createHash('sha256');
      let bytes = 0;
      res.on('data', (d: Buffer) => { h.update(d); bytes += d.length; });
      res.once('end', () => resolve({ bytes, sha: h.digest('hex') }));
      res.once('error', reject);
    }).once('error', reject);
  });
}

/** Runs `fn` while sampling the RSS of the actors; the largest sample of each, in MiB. */
async function peaks(pids: Record<string, number>, fn: () => Promise<Timed>): Promise<{ t: Timed; peakMiB: Record<string, number> }> {
  const actors = Object.entries(pids).filter(([k]) => / /.test(k));
  const sampler = new RssSampler(actors.map(([, pid]) => pid), 100).start();
  const t = await fn();
  const max = sampler.stop();
  return { t, peakMiB: Object.fromEntries(actors.map(([k, pid]) => [k, Math.round((max.get(pid) ?? NaN) / 102.4) / 10])) };
}

export async function ugLargeTransfers(): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  const redisServer = await testRedis();
  const redis = new Redis(redisServer.url);
  let v: RunningVolume | null = null;
  try {
    log('UG 1 GiB: starting a UG and one RG (1 MiB blocks, default cache sizes)');
    v = await startBenchVolume(redis, { memoryTierBytes: 64 << 20 });
    const running = v;
    const pids = volumePids(v, redisServer.pid);
    const base = randomBytes(PIECE);
    const expected = await sha256Of(content(base));
    log('UG 1 GiB: write');
    const write = await peaks(pids, () => timed(pids, SIZE, () => putFile(running, '/big/1g.bin', content(base))));
    log('UG 1 GiB: read');
    let got = { bytes: 0, sha: '' };
    const read = await peaks(pids, () => timed(pids, SIZE, async () => { got = await readHash(running, '/big/1g.bin'); }));
    if (got.bytes !== SIZE || got.sha !== expected) throw new Error(`read back ${got.bytes} bytes with another hash than written`);
    const hwm = Object.fromEntries(Object.entries(pids).filter(([k]) => / /.test(k)).map(([k, pid]) => [k, Math.round((memoryOf(pid)?.hwmKb ?? NaN) / 102.4) / 10]));
    const row = (what: string, r: { t: Timed; peakMiB: Record<string, number> }): Row => {
      const [worst, mib] = Object.entries(r.peakMiB).sort((a, b) => b[1] - a[1])[0]!;
      return {
        name: `UG ${what} of 1 GiB: largest actor RSS (max sampled)`, value: mib, unit: 'MiB', target: `≤ ${LIMIT_MIB} MiB each`, pass: mib <= LIMIT_MIB,
        note: `${worst}; all: ${Object.entries(r.peakMiB).map(([k, m]) => `${k} ${m}`).join(', ')}; ${(SIZE / 1e6 / r.t.seconds).toFixed(0)} MB/s; ${cpuNote(r.t)}`,
      };
    };
    const rows = [row('write', write), row('read (bytes checked)', read)];
    rows[1]!.note += `; VmHWM (peak since start): ${Object.entries(hwm).map(([k, m]) => `${k} ${m}`).join(', ')}`;
    return { rows, raw: { write, read, hwm } };
  } finally {
    await v?.stop();
    redis.disconnect();
  }
}
