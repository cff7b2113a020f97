// The baselines of the HTTP benchmarks, each in its own process like the gateway's http actor:
//   baseline-server koa SIZE   plain Koa answering every GET with the same SIZE bytes from memory
//   baseline-server disk DIR   plain node:http taking each POST body whole and storing it the way
//                              the disk driver stores a chunk (temp file, fsync, rename)
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
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
  const store = async (req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    for await (const d of req) parts.push(d as Buffer);
    const body = Buffer.concat(parts);
    // Same names as the bench's PUTCHUNKS (64 rotating blocks), same durability as the driver.
    const path = join(dir, `block-${n++ % 64}`);
    const temp = `${path}.${process.pid}.${n}.tmp`;
    const file = await open(temp, 'w');
    try {
      await file.writeFile(body);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end('ok');
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
