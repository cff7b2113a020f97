// Consecutive free loopback ports, for the demo (SGW_PORT and the three after it).
import { createServer, type Server } from 'node:net';
import { freePort } from '../../actors/supervisor/embedded-redis.js';

function listen(port: number): Promise<Server | null> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(null));
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

/** n consecutive ports free right now, checked by listening on each (then let go). */
export async function freePorts(n: number): Promise<number[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = await freePort();
    if (first + n > 65535) continue;
    const held = await Promise.all(Array.from({ length: n }, (_, i) => listen(first + i)));
    await Promise.all(held.map((s) => s && new Promise((r) => s.close(r))));
    if (held.every((s) => s !== null)) return Array.from({ length: n }, (_, i) => first + i);
  }
  throw new Error(`no ${n} consecutive free ports found`);
}
