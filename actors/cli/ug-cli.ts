// `sgw ug put|get|cat|ls|rm|mv --config FILE`: a client of a user gateway's application API.
// It talks HTTP to the UG's http actor (at gateway.host:port of the config, with ug.token), so
// the CLI needs no Redis (it reads the config file, and so the key files it names), and the
// gateway does all checking and signing.
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import type { Command } from 'commander';
import { loadConfig } from '../../proto/config/config.js';
import { checkPath } from '../../queues/namespace/namespace.js';
import { TransferProgress } from './progress.js';

interface UgTarget {
  base: string;
  token: string;
}

interface EntryJson {
  path: string;
  type: 'file' | 'directory';
  size: number;
  mode: string;
  mtime: { sec: string };
}

function targetOf(o: { config: string; url?: string }): UgTarget {
  const config = loadConfig(o.config);
  if (config.gateway.type !== 'UG') throw new Error(`${o.config} is the config of a ${config.gateway.type}, not a user gateway`);
  const host = config.gateway.host === '0.0.0.0' || config.gateway.host === '::' ? '127.0.0.1' : config.gateway.host;
  return { base: o.url ?? `http://${host.includes(':') ? `[${host}]` : host}:${config.gateway.port}`, token: config.ug.token ?? '' };
}

/** An absolute namespace path, checked here: a URL cannot carry ".." to the gateway (it is resolved before sending). */
function remotePath(path: string): string {
  const abs = path.startsWith('/') ? path : `/${path}`;
  const trimmed = abs.length > 1 && abs.endsWith('/') ? abs.slice(0, -1) : abs;
  const problem = checkPath(trimmed);
  if (problem) throw new Error(`${JSON.stringify(path)}: ${problem}`);
  return trimmed;
}

/** /a b/c → /FILES/a%20b/c */
function filesUrl(t: UgTarget, path: string, query = ''): string {
  path = remotePath(path);
  return `${t.base}/FILES${path.split('/').map(encodeURIComponent).join('/')}${query ? `?${query}` : ''}`;
}

async function call(t: UgTarget, method: string, url: string, init: RequestInit = {}): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, method, headers: { Authorization: `Bearer ${t.token}`, ...(init.headers as Record<string, string>) } });
  } catch (err) {
    // fetch says only "fetch failed"; its cause names what went wrong (ECONNREFUSED, a reset, ...).
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`cannot reach the user gateway at ${t.base}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  if (res.status >= 300) throw new Error(`${method} ${new URL(url).pathname}: ${res.status} ${(await res.text()).trim()}`);
  return res;
}

/** The response body into `sink`, counted on a progress line. */
async function download(res: Response, sink: Writable, label: string): Promise<void> {
  const length = res.headers.get('content-length');
  const progress = new TransferProgress(label, length === null ? null : Number(length));
  const body = Readable.fromWeb(res.body! as import('node:stream/web').ReadableStream<Uint8Array>);
  body.on('data', (d: Buffer) => progress.add(d.length));
  await pipeline(body, sink);
  progress.finish();
}

async function* counted(source: AsyncIterable<Buffer>, progress: TransferProgress): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    progress.add(chunk.length);
    yield chunk;
  }
}

type Opts = { config: string; url?: string };

export function registerUgCommands(program: Command): void {
  const ug = program.command('ug').description("a user gateway's files (through its http actor's application API)");
  const withTarget = (c: Command) => c.requiredOption('-c, --config <file>', 'the user gateway\'s configuration file')
    .option('--url <url>', 'the UG\'s URL (default: gateway.host:port of the config)');

  withTarget(ug.command('put <local> <remote>').description('write a local file (- for stdin) as <remote>'))
    .action(async (local: string, remote: string, o: Opts) => {
      const t = targetOf(o);
      const source = local === '-' ? process.stdin : createReadStream(local);
      const progress = new TransferProgress(`put ${remote}`, local === '-' ? null : statSync(local).size);
      const started = performance.now();
      const res = await call(t, 'PUT', filesUrl(t, remote), { body: counted(source as AsyncIterable<Buffer>, progress) as unknown as BodyInit, duplex: 'half' } as RequestInit);
      progress.finish();
      const { entry, warnings } = (await res.json()) as { entry: EntryJson; warnings: string[] };
      for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
      const seconds = (performance.now() - started) / 1000;
      process.stdout.write(`${local === '-' ? 'stdin' : local} -> ${entry.path}: ${entry.size} bytes in ${seconds.toFixed(2)} s\n`);
    });

  withTarget(ug.command('get <remote> [local]').description('read <remote> into a local file (default: its name here)'))
    .action(async (remote: string, local: string | undefined, o: Opts) => {
      const t = targetOf(o);
      const res = await call(t, 'GET', filesUrl(t, remote));
      const out = local ?? basename(remote);
      const temp = `${out}.sgw-partial`;
      try {
        await download(res, createWriteStream(temp), `get ${remote}`);
        await rename(temp, out);
      } catch (err) {
        await rm(temp, { force: true });
        throw err;
      }
    });

  withTarget(ug.command('cat <remote>').description('write <remote> to stdout'))
    .action(async (remote: string, o: Opts) => {
      const t = targetOf(o);
      const res = await call(t, 'GET', filesUrl(t, remote));
      await pipeline(Readable.fromWeb(res.body! as import('node:stream/web').ReadableStream<Uint8Array>), process.stdout);
    });

  withTarget(ug.command('ls [path]').description('list a directory (or show one file): type, mode, size, mtime, name'))
    .action(async (path: string | undefined, o: Opts) => {
      const t = targetOf(o);
      const line = (e: EntryJson) => `${e.type === 'directory' ? 'd' : '-'} ${e.mode.padStart(5)} ${String(e.size).padStart(12)} `
        + `${new Date(Number(e.mtime.sec) * 1000).toISOString().slice(0, 19)} ${e.path}\n`;
      const first = (await (await call(t, 'GET', filesUrl(t, path ?? '/', 'stat'))).json()) as { entry: EntryJson };
      if (first.entry.type !== 'directory') return void process.stdout.write(line(first.entry));
      let after: string | null = null;
      do {
        const q: string = `list&limit=1000${after === null ? '' : `&after=${encodeURIComponent(after)}`}`;
        const page = (await (await call(t, 'GET', filesUrl(t, path ?? '/', q))).json()) as { entries: EntryJson[]; next: string | null };
        for (const e of page.entries) process.stdout.write(line(e));
        after = page.next;
      } while (after !== null);
    });

  withTarget(ug.command('rm <remote>').description('delete a file (and its chunks on the replicas) or an empty directory'))
    .action(async (remote: string, o: Opts) => {
      const t = targetOf(o);
      await call(t, 'DELETE', filesUrl(t, remote));
    });

  withTarget(ug.command('mv <from> <to>').description('rename a file'))
    .action(async (from: string, to: string, o: Opts) => {
      const t = targetOf(o);
      await call(t, 'POST', filesUrl(t, from, `mv=${encodeURIComponent(remotePath(to))}`));
    });
}
