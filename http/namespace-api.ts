// GET /NAMESPACE{path}: the volume namespace, read-only, as JSON, for user gateways and people.
//   /NAMESPACE/a/b            stat:  {"entry": {...}}
//   /NAMESPACE/a?list         list:  {"entry": {...}, "entries": [...], "next": "name" | null}
//                             paged with &limit=N (1..1000, default 100) and &after=<next>
import type { Context } from 'koa';
import { checkPath, entryJson, type Namespace } from '../queues/namespace/namespace.js';
import { HttpError } from './errors.js';

export const NAMESPACE_PREFIX = '/NAMESPACE';
const MAX_LIMIT = 1000;

/** The namespace path of a request path under `prefix`, decoded, or a 400. */
export function pathOf(requestPath: string, prefix = NAMESPACE_PREFIX): string {
  const rest = requestPath.slice(prefix.length);
  let path: string;
  try {
    path = decodeURIComponent(rest === '' ? '/' : rest);
  } catch {
    throw new HttpError(400, 'the path is not valid percent-encoded UTF-8');
  }
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  const problem = checkPath(path);
  if (problem) throw new HttpError(400, problem);
  return path;
}

function limitOf(v: string | undefined): number {
  if (v === undefined) return 100;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) throw new HttpError(400, `limit must be an integer in [1, ${MAX_LIMIT}]`);
  return n;
}

export function getNamespace(namespace: Namespace) {
  return (ctx: Context): Promise<void> => answerStatOrList(ctx, namespace, pathOf(ctx.path));
}

/** Answers the entry at path as JSON, with a page of its children when the query says `list`. */
export async function answerStatOrList(ctx: Context, namespace: Namespace, path: string): Promise<void> {
  const entry = await namespace.stat(path);
  if (!entry) throw new HttpError(404, `no entry at ${path}`);
  ctx.type = 'application/json';
  ctx.set('Cache-Control', `max-age=${Math.floor(entry.read_ttl / 1000)}`);
  if (ctx.query.list === undefined) {
    ctx.body = { entry: entryJson(entry) };
    return;
  }
  if (entry.type !== 'directory') throw new HttpError(400, `${path} is not a directory`);
  const after = typeof ctx.query.after === 'string' && ctx.query.after !== '' ? ctx.query.after : null;
  const page = await namespace.list(path, after, limitOf(typeof ctx.query.limit === 'string' ? ctx.query.limit : undefined));
  ctx.body = { entry: entryJson(entry), entries: page.entries.map(entryJson), next: page.next };
}
