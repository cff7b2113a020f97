// The client of the UG benchmarks, in a process of its own: moving 64 MiB costs the client as
// much CPU as the server, or more, and in the bench process that cost rose and fell 2-5× with
// the bench's own heap, so which side was timed after which mattered more than the servers. Told
// over IPC what to do, it GETs a list of URLs (some at once) or PUTs a file, and answers with the
// bytes it received or sent.
import { createReadStream } from 'node:fs';
import { Agent } from 'node:http';
import { childReady, closedLoop, countBytes, putStream } from './support.js';

export type TransferTask =
  | { get: { urls: string[]; headers: Record<string, string>; inFlight: number } }
  | { put: { url: string; headers: Record<string, string>; file: string; chunkBytes: number } };

async function getAll(t: { urls: string[]; headers: Record<string, string>; inFlight: number }): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: t.inFlight });
  let bytes = 0;
  try {
    const r = await closedLoop({ inFlight: t.inFlight, maxCount: t.urls.length, maxMs: 120_000 }, async (i) => {
      const n = await countBytes(t.urls[i]!, t.headers, agent); // not `bytes += await`: that reads `bytes` before the wait
      bytes += n;
    });
    if (r.count < t.urls.length || r.errors > 0) throw new Error(`${r.count - r.errors} of ${t.urls.length} GETs answered 200 within 120 s`);
    return bytes;
  } finally {
    agent.destroy();
  }
}

/** PUT of a file, streamed in `chunkBytes` pieces; 201 expected. */
async function put(t: { url: string; headers: Record<string, string>; file: string; chunkBytes: number }): Promise<number> {
  let sent = 0;
  const body = createReadStream(t.file, { highWaterMark: t.chunkBytes });
  body.on('data', (d) => { sent += d.length; });
  await putStream(t.url, t.headers, body);
  return sent;
}

process.on('message', (m: { task?: TransferTask }) => {
  if (!m.task) return;
  const done = 'get' in m.task ? getAll(m.task.get) : put(m.task.put);
  done.then((bytes) => process.send?.({ bytes }), (err: unknown) => process.send?.({ error: String(err) }));
});
childReady();
