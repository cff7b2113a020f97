// The client of the UG read benchmarks, in a process of its own: reading 64 MiB from memory costs
// the client more CPU than the server, and in the bench process that cost rose and fell with
// the bench's own heap (2-5 ms per MiB there, 0.5 in a small process), so which server was timed
// after which mattered more than the servers. Told over IPC which URLs to GET (and how many at
// once), it answers with the bytes it received.
import { Agent } from 'node:http';
import { childReady, closedLoop, countBytes } from './support.js';

export interface ReadTask {
  urls: string[];
  headers?: Record<string, string>;
  inFlight: number;
}

async function run(task: ReadTask): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: task.inFlight });
  let bytes = 0;
  try {
    const r = await closedLoop({ inFlight: task.inFlight, maxCount: task.urls.length, maxMs: 120_000 }, async (i) => {
      const n = await countBytes(task.urls[i]!, task.headers, agent); // not `bytes += await`: that reads `bytes` before the wait
      bytes += n;
      return true;
    });
    if (r.count < task.urls.length || r.errors > 0) throw new Error(`${r.count - r.errors} of ${task.urls.length} URLs read within 120 s`);
    return bytes;
  } finally {
    agent.destroy();
  }
}

process.on('message', (m: { task?: ReadTask }) => {
  if (!m.task) return;
  run(m.task).then((bytes) => process.send?.({ bytes }), (err: unknown) => process.send?.({ error: String(err) }));
});
childReady();
