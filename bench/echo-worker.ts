// A worker process for the driver-call benchmark, answering every call with the bytes it got.
//   echo-worker bare REDIS_URL REQUEST_LIST   BRPOP a frame, LPUSH it back onto the reply list
//                                             named in its header (the bare-Redis baseline)
//   echo-worker bullmq REDIS_URL QUEUE        a plain BullMQ Worker: each job's data is a bare-echo
//                                             frame (base64), LPUSHed back the same way (the
//                                             floor of any design that makes a call a BullMQ job)
//   echo-worker sgw  REDIS_URL GATEWAY MODE N a CallServer (sgw's ask/reply machinery: BullMQ
//                                             job in, reply list out) with concurrency N
// Frames of the bare echo: [u16 reply-key length][reply key][u32 id][payload].
import { Redis } from 'ioredis';
import { Worker } from 'bullmq';
import { CallServer } from '../queues/serve.js';
import { childReady } from './support.js';
import { redisAt } from '../queues/redis.js';

const [kind, redisUrl, ...rest] = process.argv.slice(2);
if (!redisUrl) throw new Error('usage: echo-worker bare|sgw REDIS_URL ...');

async function bare(requestList: string): Promise<void> {
  const blocking = new Redis(redisUrl!);
  const out = new Redis(redisUrl!);
  let running = true;
  childReady({}, () => {
    running = false;
    blocking.disconnect();
    out.disconnect();
  });
  while (running) {
    let got: [Buffer, Buffer] | null;
    try {
      got = await blocking.brpopBuffer(requestList, 1);
    } catch {
      if (!running) return;
      throw new Error('bare echo worker lost Redis');
    }
    if (!got) continue;
    const frame = got[1];
    // Not awaited: replies are pipelined on their own connection while the next BRPOP waits.
    out.lpush(replyKeyOf(frame), frame).catch(() => {});
  }
}

/** The reply list a bare-echo frame names in its header. */
const replyKeyOf = (frame: Buffer) => frame.subarray(2, 2 + frame.readUInt16BE(0));

async function bullmq(queue: string): Promise<void> {
  const out = new Redis(redisUrl!);
  const worker = new Worker(queue, async (job) => {
    const frame = Buffer.from(job.data.f as string, 'base64');
    await out.lpush(replyKeyOf(frame), frame);
  }, { connection: new Redis(redisUrl!, { maxRetriesPerRequest: null }), concurrency: 64, removeOnComplete: { count: 100 } });
  await worker.waitUntilReady();
  childReady({}, async () => {
    await worker.close();
    out.disconnect();
  });
}

async function sgw(gateway: string, mode: string, concurrency: number): Promise<void> {
  const server = new CallServer({ mac: null,
    redis: redisAt(redisUrl!), gateway, mode, concurrency,
    handler: async (call) => (call.chunk ? { rc: 0, chunk: call.chunk } : { rc: 0 }),
  });
  await server.ready();
  childReady({}, () => server.close(2000));
}

if (kind === 'bare') await bare(rest[0] ?? 'bench:echo:requests');
else if (kind === 'bullmq') await bullmq(rest[0] ?? 'bench-echo');
else if (kind === 'sgw') await sgw(rest[0] ?? 'bench.echo', rest[1] ?? 'read', Number(rest[2] ?? 64));
else throw new Error(`unknown echo worker kind ${kind}`);
