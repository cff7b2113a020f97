// The application API of a user gateway, under /FILES, protected by the ug.token bearer token:
//   GET    /FILES/a/b.txt            the file (Range: bytes=... → 206)
//   GET    /FILES/a/b.txt?stat       its namespace entry as JSON
//   GET    /FILES/a?list[&after&limit]  a directory page (as /NAMESPACE answers it)
//   PUT    /FILES/a/b.txt            write the body (streamed) as the file's new version → 201
//   POST   /FILES/a  (multipart)     a browser's form upload: each file part becomes a/<filename>
//   POST   /FILES/a/b.txt?mv=/c.txt  rename
//   DELETE /FILES/a/b.txt            delete a file, or an empty directory
import { createHash, timingSafeEqual } from 'node:crypto';
import { createReadStream, mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Context } from 'koa';
import koaMulter from '@koa/multer';
import multer from 'multer';
import { entryJson } from '../queues/namespace/namespace.js';
import { HttpError, unavailable } from './errors.js';
import { answerStatOrList, pathOf } from './namespace-api.js';
import { UgReader } from './ug-read.js';
import { UgVolume, type UgDeps } from './ug-volume.js';
import { UgWriter, type UgResult } from './ug-write.js';
import { closeAfterAnswer } from './refusal.js';

export const FILES_PREFIX = '/FILES';

export function isFilesPath(path: string): boolean {
  return path === FILES_PREFIX || path.startsWith(`${FILES_PREFIX}/`);
}

/** GET /DATA on a UG: its files' chunks live on the replicas (and an AG), never here. */
export async function ugServesNoChunks(): Promise<void> {
  throw new HttpError(404, 'a user gateway serves no chunks: fetch them from the replica gateways of the volume');
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The check of a UG's application token, for /FILES and /NAMESPACE. */
export function ugTokenCheck(token: string | null): (ctx: Context) => void {
  const expected = digest(token ?? '');
  return (ctx) => checkToken(ctx, expected);
}

/** Bearer token (or ?token= for a browser form); compared in constant time. */
function checkToken(ctx: Context, expected: Buffer): void {
  const header = ctx.get('Authorization');
  const given = header.startsWith('Bearer ') ? header.slice(7) : typeof ctx.query.token === 'string' ? ctx.query.token : null;
  if (given === null) throw new HttpError(401, 'this user gateway wants its token: Authorization: Bearer <ug.token>', { 'WWW-Authenticate': 'Bearer' });
  if (!timingSafeEqual(digest(given), expected)) throw new HttpError(401, 'wrong token', { 'WWW-Authenticate': 'Bearer' });
}

/** One `bytes=` range of a file of `size` bytes as [start, end), null for none, or a 416. */
export function parseRange(header: string | undefined, size: number): [number, number] | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  const unsatisfiable = () => new HttpError(416, `cannot serve range ${header} of a ${size}-byte file (one bytes=a-b range)`, { 'Content-Range': `bytes */${size}` });
  if (!m || (m[1] === '' && m[2] === '')) throw unsatisfiable();
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) throw unsatisfiable();
    return [Math.max(0, size - n), size];
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size : Math.min(size, Number(m[2]) + 1);
  if (start >= size || end <= start) throw unsatisfiable();
  return [start, end];
}

async function* resume(first: IteratorResult<Buffer>, rest: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  if (first.done) return;
  yield first.value;
  yield* rest;
}

/**
 * A UG operation takes several steps (driver calls, POSTs to every replica, the namespace), each
 * bounded on its own; the request as a whole is answered by its deadline all the same, with 503.
 * Its outcome is then unknown: the work may still complete.
 */
async function byDeadline(ctx: Context, work: Promise<void>): Promise<void> {
  const deadline = ctx.state.deadline as number | undefined;
  if (deadline === undefined) return work;
  work.catch(() => undefined); // a failure after the deadline has nobody left to tell
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(unavailable(`${ctx.method} ${ctx.path} did not finish within limits.request_timeout_ms; it may still complete: stat the path before sending it again`)),
      Math.max(0, deadline - Date.now()));
  });
  try {
    await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

function answer(ctx: Context, status: number, r: UgResult): void {
  ctx.status = status;
  ctx.body = { entry: entryJson(r.entry), warnings: r.warnings };
}

export function ugFilesApi(deps: UgDeps) {
  const volume = new UgVolume(deps);
  const reader = new UgReader(volume);
  const writer = new UgWriter(volume);
  const checkToken = ugTokenCheck(deps.config.ug.token);
  // Browser uploads land on disk first (bounded by max_upload_bytes each), then stream into the volume.
  const uploadDir = join(deps.config.actors.work_dir, 'uploads');
  mkdirSync(uploadDir, { recursive: true });
  const upload = koaMulter({ storage: multer.diskStorage({ destination: uploadDir }), limits: { fileSize: deps.config.limits.max_upload_bytes } }).any();

  async function read(ctx: Context, path: string): Promise<void> {
    const entry = await deps.namespace.stat(path);
    if (ctx.query.stat !== undefined || ctx.query.list !== undefined) return answerStatOrList(ctx, deps.namespace, path);
    if (entry?.type === 'directory') throw new HttpError(409, `${path} is a directory: read it with ?list (or ?stat)`);
    const file = await reader.open(path);
    const size = file.entry.size;
    const range = parseRange(ctx.get('Range') || undefined, size);
    const [start, end] = range ?? [0, size];
    ctx.set('Accept-Ranges', 'bytes');
    ctx.set('ETag', `"${file.entry.file_id.toString(16).toUpperCase()}.${file.entry.file_version}"`);
    if (range) ctx.set('Content-Range', `bytes ${start}-${end - 1}/${size}`);
    ctx.status = range ? 206 : 200;
    ctx.type = 'application/octet-stream';
    ctx.length = end - start;
    if (ctx.method === 'HEAD') return;
    // The first block before the status line goes out, so a file nobody can serve gets its 502;
    // a later failure can only cut the body short (the client sees it fall short of Content-Length).
    const blocks = reader.range(file, start, end);
    const first = await blocks.next();
    // One block buffered in the stream: ug.parallel_blocks already fetch ahead, and the default of
    // 16 objects would hold 16 more blocks (16 MiB of 1 MiB blocks) per reader.
    ctx.body = Readable.from(resume(first, blocks), { highWaterMark: 1 });
  }

  async function formUpload(ctx: Context, dir: string): Promise<void> {
    try {
      await upload(ctx, async () => undefined);
    } catch (err) {
      if (err instanceof multer.MulterError) throw new HttpError(err.code === 'LIMIT_FILE_SIZE' ? 413 : 400, `upload refused: ${err.message}`);
      throw err;
    }
    const files = (ctx.files ?? []) as Express.Multer.File[];
    try {
      if (files.length === 0) throw new HttpError(400, 'the form holds no file part (a part needs a filename)');
      const results: UgResult[] = [];
      for (const f of files) {
        if (f.originalname.includes('/')) throw new HttpError(400, `file name ${JSON.stringify(f.originalname)} holds a /`);
        results.push(await writer.write(`${dir === '/' ? '' : dir}/${f.originalname}`, createReadStream(f.path)));
      }
      ctx.status = 201;
      ctx.body = { entries: results.map((r) => entryJson(r.entry)), warnings: results.flatMap((r) => r.warnings) };
    } finally {
      await Promise.all(files.map((f) => rm(f.path, { force: true })));
    }
  }

  const route = async (ctx: Context): Promise<void> => {
    const path = pathOf(ctx.path, FILES_PREFIX);
    switch (ctx.method) {
      case 'GET':
      case 'HEAD':
        return read(ctx, path);
      case 'PUT':
        return answer(ctx, 201, await writer.write(path, ctx.req).catch((err: unknown) => {
          // Refused before the whole body arrived (say, Redis failing over mid-upload): the rest
          // stays unread, so the connection closes after the answer, lingering so that the
          // answer is not lost to a reset while the client still sends.
          closeAfterAnswer(ctx);
          throw err;
        }));
      case 'POST':
        if (typeof ctx.query.mv === 'string') return answer(ctx, 200, await writer.rename(path, ctx.query.mv));
        if (ctx.is('multipart/form-data')) return formUpload(ctx, path);
        throw new HttpError(400, 'POST wants ?mv=<new path> or a multipart/form-data upload');
      case 'DELETE':
        return answer(ctx, 200, await writer.remove(path));
      default:
        throw new HttpError(405, `no ${ctx.method} on ${FILES_PREFIX}`);
    }
  };

  return async (ctx: Context): Promise<void> => {
    checkToken(ctx);
    return byDeadline(ctx, route(ctx));
  };
}
