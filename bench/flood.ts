// The flood of issue 15, item 2, against a gateway with the default limits (256 MiB uploads,
// 256 MiB of POST bodies in flight): 20 clients, each POSTing a bogus control plane followed by
// 200 MiB paced over 15 s, starting again whenever refused. Measured: the total RSS of the
// gateway's processes (idle, then the peak during the flood) and /PING latency before and during.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { cleanup, makeGatewayFolder, startGatewayProcess, waitForGateway } from '../test/support/gateway.js';
import { testRedis } from '../test/support/redis.js';
import { PingPoller, postHead, streamingPost, TreeRssSampler, treeRss } from '../test/support/attack.js';
import { MiB, sleep, type Latency } from './support.js';

export const FLOOD_CLIENTS = 20;
const OFFER = 200 * MiB;
const PACE = OFFER / 15;

export interface FloodResult {
  rssIdleMiB: number;
  rssPeakMiB: number;
  ping: { idle: Pick<Latency, 'p50' | 'p99' | 'count'>; flood: Pick<Latency, 'p50' | 'p99' | 'count'> & { failed: number } };
  posts: number;
  statuses: Record<string, number>;
  /** Largest share of its 200 MiB a client had written when its answer came. */
  maxSentMiB: number;
}

function quantiles(ms: number[]): Pick<Latency, 'p50' | 'p99' | 'count'> {
  const s = [...ms].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), count: s.length };
}

export async function flood(seconds: number): Promise<FloodResult> {
  const f = await makeGatewayFolder({ config: { limits: { call_timeout_ms: 5000 }, log: { level: 'warn' } } });
  const gw = startGatewayProcess(f.configFile);
  const redis = new Redis((await testRedis()).url);
  try {
    await waitForGateway(f, redis);
    await sleep(2000);
    const root = gw.proc.pid!;
    const rssIdle = treeRss(root);
    const idlePings = new PingPoller(f.url);
    await sleep(seconds * 1000);
    const idle = quantiles((await idlePings.stop()).map((p) => p.ms));

    const sampler = new TreeRssSampler(root);
    const pings = new PingPoller(f.url);
    const bogus = postHead(Buffer.concat([Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), randomBytes(72)]));
    const statuses: Record<string, number> = {};
    let posts = 0;
    let maxSent = 0;
    const until = Date.now() + seconds * 1000;
    await Promise.all(Array.from({ length: FLOOD_CLIENTS }, async () => {
      while (Date.now() < until) {
        const post = streamingPost(f.url, bogus.contentType, bogus.head, OFFER, { bytesPerSecond: PACE });
        const a = await post.answer.catch((err: Error) => ({ status: `error ${err.message}`, sent: post.sent() }));
        posts++;
        statuses[String(a.status)] = (statuses[String(a.status)] ?? 0) + 1;
        maxSent = Math.max(maxSent, a.sent);
      }
    }));
    const rssPeak = sampler.stop();
    const during = await pings.stop();
    return {
      rssIdleMiB: rssIdle / MiB, rssPeakMiB: rssPeak / MiB, posts, statuses, maxSentMiB: maxSent / MiB,
      ping: { idle, flood: { ...quantiles(during.map((p) => p.ms)), failed: during.filter((p) => p.status !== 200).length } },
    };
  } finally {
    await gw.stop();
    redis.disconnect();
    cleanup([f.dir]);
  }
}
