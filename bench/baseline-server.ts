// The baselines of the HTTP benchmarks, each in its own process like the gateway's http actor:
//   baseline-server koa SIZE   plain Koa answering every GET with the same SIZE bytes from memory
//   baseline-server disk DIR   plain node:http taking each POST body whole and storing it the way
//                              the disk driver stores a chunk (temp file, fsync, link)
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { write_chunk } from '../drivers/builtin/disk/driver.js';
import { DriverRequestType, type DriverRequest } from '../proto/messages.js';
import Koa from 'koa';
import { childReady } from './support.js';

const [kind, arg] = process.argv.slice(2);

function koa(size: number): void {
  const bytes = Buffer.alloc(size, 0x5a);
  const app = new Koa();
  app.use(async (ctx) => {
    ctx.status = 200;
    ctx.type = 'application/octet-stream';
    ctx.set('Cache-Control', 'public, max-age=31536000, immutable');
    ctx.body = bytes;
  });
  const server = app.listen(0, '127.0.0.1', () => {
    childReady({ port: (server.address() as AddressInfo).port }, () => { server.closeAllConnections(); server.close(); });
  });
}

function disk(dir: string): void {
  let n = 0;
  const config = { STORAGE_DIR: dir };
  const store = async (req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    for await (const d of req) parts.push(d as Buffer);
    const body = Buffer.concat(parts);
    // Stored by the disk driver's own write_chunk (temp file, fsync, link), under the bench's
    // PUTCHUNKS names (request i: version i + 1 of block i % 64; see post-chunks.ts): the baseline
    // pays for exactly the same storage.
    const i = n++;
    const request: DriverRequest = {
      volume_id: 1n, user_id: 1n, coordinator_id: 1n, file_id: 1n, file_version: 1n,
      request_type: DriverRequestType.BLOCK, path: '/bench', block_id: BigInt(i % 64), block_version: BigInt(i + 1),
    };
    const rc = await write_chunk(request, body, config, {});
    res.writeHead(rc === 0 ? 200 : 500, { 'Content-Type': 'application/octet-stream' }).end(String(rc));
  };
  const server = createServer((req, res) => {
    store(req, res).catch((err: Error) => res.writeHead(500).end(err.message));
  });
  server.keepAliveTimeout = 5000;
  server.listen(0, '127.0.0.1', () => {
    childReady({ port: (server.address() as AddressInfo).port }, () => { server.closeAllConnections(); server.close(); });
  });
}

if (kind === 'koa') koa(Number(arg));
else if (kind === 'disk') disk(arg!);
else throw new Error('usage: baseline-server koa SIZE | disk DIR');
