// sgw's Lua scripts, kept as one file per script in queues/lua/ (its KEYS and ARGV documented at
// its top) and loaded by name. `npm run build` copies them to dist/queues/lua/, and the single
// executable embeds that folder. Each runs as EVALSHA, falling back to EVAL on a server that has
// not seen it yet (a fresh replica promoted by a failover, say).
import { readFileSync } from 'node:fs';
import type { ChainableCommander } from 'ioredis';
import { Errno } from '../drivers/errno.js';
import { packagedFile } from '../drivers/packaged-files.js';
import type { RedisClient } from './redis.js';

/** Every script, by name: its file in queues/lua/ and how many of its arguments are keys (null: as many as each call gives). */
export const SCRIPTS = {
  namespaceWrite: { file: 'namespace-write', keys: null },
  namespaceFile: { file: 'namespace-file', keys: 3 },
  publishBundle: { file: 'publish-bundle', keys: 3 },
  leaseRenew: { file: 'lease-renew', keys: 1 },
  leaseRelease: { file: 'lease-release', keys: 1 },
  nonces: { file: 'nonces', keys: 1 },
  oldestWaiting: { file: 'oldest-waiting', keys: 1 },
} as const;

export type ScriptName = keyof typeof SCRIPTS;

/** The folder of the script files, inside the package (dist/ of a checkout, or the executable). */
export const SCRIPTS_FOLDER = 'dist/queues/lua';

// Scripts name errno values as ERRNO.ENOENT, from the one table drivers use too.
const ERRNO_TABLE = `local ERRNO = {${Object.entries(Errno).map(([k, v]) => `${k}=${v}`).join(', ')}}\n`;

const sources = new Map<ScriptName, string>();

/** The script's Lua source, with the ERRNO table it may use in front. */
export function scriptSource(name: ScriptName): string {
  let lua = sources.get(name);
  if (lua === undefined) {
    lua = ERRNO_TABLE + readFileSync(packagedFile(`${SCRIPTS_FOLDER}/${SCRIPTS[name].file}.lua`), 'utf8');
    sources.set(name, lua);
  }
  return lua;
}

type ScriptCall = (...args: (string | Buffer)[]) => Promise<unknown>;

const defined = new WeakMap<RedisClient, Set<ScriptName>>();

/** The command's name on a connection once defined there (a pipeline made after this has it too). */
export function defineScript(redis: RedisClient, name: ScriptName): string {
  let set = defined.get(redis);
  if (!set) defined.set(redis, (set = new Set()));
  const command = `sgw_${name}`;
  if (!set.has(name)) {
    const keys = SCRIPTS[name].keys;
    redis.defineCommand(command, { ...(keys === null ? {} : { numberOfKeys: keys }), lua: scriptSource(name) });
    set.add(name);
  }
  return command;
}

/** The keys as the script's command takes them: a script of any number of keys is told how many first. */
function checkedKeys(name: ScriptName, keys: readonly string[]): readonly string[] {
  const n = SCRIPTS[name].keys;
  if (n === null) return [String(keys.length), ...keys];
  if (keys.length !== n) throw new Error(`script ${name} takes ${n} keys, not ${keys.length}`);
  return keys;
}

/** Runs a script on a connection; resolves with its reply. */
export function runScript(redis: RedisClient, name: ScriptName, keys: readonly string[], args: readonly (string | Buffer)[]): Promise<unknown> {
  const k = checkedKeys(name, keys);
  const command = defineScript(redis, name);
  return (redis as unknown as Record<string, ScriptCall>)[command]!.call(redis, ...k, ...args);
}

/** Adds a script call to a pipeline made from a connection the script was defined on (defineScript). */
export function pipeScript(pipeline: ChainableCommander, name: ScriptName, keys: readonly string[], args: readonly (string | Buffer)[]): ChainableCommander {
  const k = checkedKeys(name, keys);
  const call = (pipeline as unknown as Record<string, ((...a: (string | Buffer)[]) => ChainableCommander) | undefined>)[`sgw_${name}`];
  if (!call) throw new Error(`script ${name} is not defined on the pipeline's connection: call defineScript first`);
  return call.call(pipeline, ...k, ...args);
}
