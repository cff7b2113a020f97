// A call server in its own process for the lease test: each call reports "started" to the parent
// (over IPC), waits for the parent's "release", then answers with this process's pid. It reports a
// call dropped as stale and a call answered. argv: redis URL, gateway key, lock ms.
import { CallServer } from '../../queues/serve.js';
import { redisAt } from '../../queues/redis.js';

const [redisUrl, gateway, lockMs] = process.argv.slice(2);
const send = (msg: object) => process.send?.(msg);
let release: () => void = () => {};
const released = new Promise<void>((resolve) => { release = resolve; });
process.on('message', (m) => { if (m === 'release') release(); });

const server = new CallServer({
  redis: redisAt(redisUrl!), gateway: gateway!, mode: 'write', concurrency: 1, lockMs: Number(lockMs), mac: null,
  handler: async (call) => {
    send({ started: call.jobId });
    await released;
    return { rc: 0, value: String(process.pid) };
  },
  onStale: () => send({ stale: true }),
  onDone: () => send({ done: true }),
});
await server.ready();
send({ ready: true });
process.on('disconnect', () => void server.close(1000).then(() => process.exit(0)));
