// A call server in its own process for the host side-channel test: it answers each call with the
// SHA-256 of the chunk it received. argv: redis URL, gateway key. SGW_SHM_DIR picks its "host".
import { createHash } from 'node:crypto';
import { CallServer } from '../../queues/serve.js';
import { redisAt } from '../../queues/redis.js';

const [redisUrl, gateway] = process.argv.slice(2);
const server = new CallServer({ mac: null,
  redis: redisAt(redisUrl!), gateway: gateway!, mode: 'write', concurrency: 4,
  handler: async (call) => ({ rc: 0, value: createHash('sha256').update(call.chunk ?? Buffer.alloc(0)).digest('hex') }),
});
await server.ready();
process.send?.('ready');
process.on('disconnect', () => void server.close(1000).then(() => process.exit(0)));
