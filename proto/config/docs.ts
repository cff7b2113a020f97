// The key table of docs/configuration.md, written from the schema: `npm run docs:config` rewrites
// the section between the markers, and a test fails when the committed page differs.
import type { z } from 'zod';
import { configSchema, keyDocs, redisObjectSchema, unwrap, walkKeys, type KeyDoc } from './schema.js';

export const BEGIN_MARKER = '<!-- keys: generated from proto/config/schema.ts by `npm run docs:config` -->';
export const END_MARKER = '<!-- end of generated keys -->';

function typeName(schema: z.ZodType): string {
  const def = unwrap(schema)._zod.def as { type: string; entries?: Record<string, string>; checks?: { _zod: { def: { check: string; value?: number; minimum?: number } } }[] };
  switch (def.type) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'union':
      return 'uint64';
    case 'enum':
      return Object.values(def.entries ?? {}).map((v) => `\`${v}\``).join(' | ');
    case 'number': {
      const min = def.checks?.map((c) => c._zod.def).find((c) => c.check === 'greater_than');
      return min?.value !== undefined ? `integer ≥ ${min.value}` : 'integer';
    }
    default:
      return def.type;
  }
}

function defaultOf(schema: z.ZodType, d: KeyDoc | undefined): string {
  if (d?.default !== undefined) return d.default;
  let s = schema;
  for (;;) {
    const def = s._zod.def as { type: string; innerType?: z.ZodType; defaultValue?: unknown };
    if (def.type === 'default') {
      const v = def.defaultValue;
      if (v === null) return 'none';
      if (Array.isArray(v)) return v.length === 0 ? '[]' : JSON.stringify(v);
      return `\`${typeof v === 'bigint' || typeof v === 'string' ? String(v) : JSON.stringify(v)}\``;
    }
    const next = def.innerType ?? (def as { out?: z.ZodType }).out;
    if (!next) return def.type === 'optional' ? 'none' : 'required';
    s = next;
  }
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The generated section: a table of every key (peers of volume.gateways and the object form of redis in tables of their own). */
export function configKeysMarkdown(): string {
  const rows = (schema: z.ZodType, prefix: string[]) => {
    const out: string[] = [];
    walkKeys(schema, prefix, (path, s, d) => {
      const env = d?.env ? ` (env \`${d.env}\`)` : '';
      out.push(`| \`${path.join('.')}\` | ${cell(d?.type ?? typeName(s))} | ${cell(defaultOf(s, d))} | ${cell((d?.doc ?? '') + env)} |`);
    });
    return out;
  };
  const head = ['| key | type | default | meaning |', '|---|---|---|---|'];
  const peers = unwrap(keyDocsOwner('volume', 'gateways'))._zod.def as { element?: z.ZodType };
  return [
    BEGIN_MARKER,
    '',
    ...head,
    ...rows(configSchema, []),
    '',
    'Each entry of `volume.gateways`:',
    '',
    ...head,
    ...(peers.element ? rows(peers.element, ['volume', 'gateways[]']) : []),
    '',
    'The object form of `redis` (one of `url`, `sentinels` or `cluster`; see [redis.md](redis.md)):',
    '',
    ...head,
    ...rows(redisObjectSchema, ['redis']),
    '',
    END_MARKER,
  ].join('\n');
}

/** The schema of a documented key, by its path. */
function keyDocsOwner(...path: string[]): z.ZodType {
  let found: z.ZodType | null = null;
  walkKeys(configSchema, [], (p, s) => {
    if (p.join('.') === path.join('.') && keyDocs.has(s)) found = s;
  });
  if (!found) throw new Error(`no documented key ${path.join('.')}`);
  return found;
}

/** The page with its generated section replaced (the markers must be there). */
export function withGeneratedKeys(page: string): string {
  const start = page.indexOf(BEGIN_MARKER);
  const end = page.indexOf(END_MARKER);
  if (start < 0 || end < start) throw new Error(`docs/configuration.md lacks the markers ${BEGIN_MARKER} ... ${END_MARKER}`);
  return page.slice(0, start) + configKeysMarkdown() + page.slice(end + END_MARKER.length);
}

/** Rewrites the generated section of the page at `file` (run by `npm run docs:config`). */
export async function writeConfigDocs(file: string): Promise<void> {
  const { readFile, writeFile } = await import('node:fs/promises');
  await writeFile(file, withGeneratedKeys(await readFile(file, 'utf8')));
}
