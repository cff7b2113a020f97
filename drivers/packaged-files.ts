// Files of the sgw package that are needed as real files at run time: the helper API drivers
// import as 'sgw', the built-in drivers and the packages provided to drivers, esbuild's native binary. From a checkout or an npm
// install they are used where they lie. Inside the single executable (Node SEA) they are embedded
// as assets and extracted once, on first need, to a cache folder named for their content.
import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as sea from 'node:sea';

export interface EmbeddedFile {
  /** Path relative to the package root (a file, or a folder taken whole); also the asset key. */
  path: string;
  /** Extracted with the executable bit (a native program). */
  executable?: boolean;
}

/** esbuild's native binary for this platform, as npm installs it. */
export const ESBUILD_BINARY = `node_modules/@esbuild/${process.platform}-${process.arch}/bin/esbuild`;

/**
 * Every file the single executable carries besides its code. To ship more data (a driver chassis
 * in another language, a web UI's static files), add its file or folder here and reach it with
 * packagedFile(path). package.json keeps esbuild's module-type decisions, and so driver bundle
 * hashes, the same as from a checkout.
 */
export const EMBEDDED_FILES: readonly EmbeddedFile[] = [
  { path: 'package.json' },
  { path: 'dist/drivers/helpers.js' },
  { path: 'dist/drivers/errno.js' },
  // The demo's drivers (demo.ts publishes them as 'sgw/builtin/disk' and 'sgw/builtin/dataset') and
  // the sample folder its AG publishes.
  { path: 'dist/drivers/builtin/disk/driver.js' },
  { path: 'dist/drivers/builtin/dataset/driver.js' },
  { path: 'drivers/builtin/dataset/sample' },
  // The S3 drivers (publishable as 'sgw/builtin/s3' and 'sgw/builtin/s3-dataset') and the
  // pre-bundled packages drivers may import (drivers/driver-packages.ts).
  { path: 'dist/drivers/builtin/s3/driver.js' },
  { path: 'dist/drivers/builtin/s3/bucket.js' },
  { path: 'dist/drivers/builtin/s3/call-signal.js' },
  { path: 'dist/drivers/builtin/s3-dataset/driver.js' },
  { path: 'dist/drivers/provided' },
  { path: ESBUILD_BINARY, executable: true },
  // sgw's Lua scripts (queues/scripts.ts loads them by name).
  { path: 'dist/queues/lua' },
  // The Python driver chassis and its syndicate.util.gateway module.
  { path: 'dist/drivers/python' },
  // The Bull dashboard's pages and static files.
  { path: 'node_modules/@bull-board/ui' },
];

/** The asset listing every embedded file (folders expanded) under a digest of their content. */
export const EMBEDDED_MANIFEST_ASSET = 'sgw/embedded.json';

export interface EmbeddedManifest {
  /** Digest of every embedded file: names the extraction folder. */
  id: string;
  files: EmbeddedFile[];
}

/** True inside the single executable built by `npm run package`. */
export function isSingleExecutable(): boolean {
  // node:sea exists since Node 20 but isSea() only since 20.12.
  return typeof sea.isSea === 'function' && sea.isSea();
}

let extractedRoot: string | null = null;

function cacheHome(): string {
  return process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
}

/** Writes every embedded file under <cache>/sgw/<id>/ unless an earlier run already did. */
function extractEmbeddedFiles(): string {
  const { id, files } = JSON.parse(sea.getAsset(EMBEDDED_MANIFEST_ASSET, 'utf8')) as EmbeddedManifest;
  const root = join(cacheHome(), 'sgw', id);
  // No fallback to a shared folder such as /tmp: another user could plant a binary there.
  try {
    mkdirSync(root, { recursive: true });
  } catch (err) {
    throw new Error(`cannot extract sgw's embedded files to ${root} (${(err as Error).message}): set XDG_CACHE_HOME to a writable folder`);
  }
  for (const file of files) {
    const target = join(root, file.path);
    if (existsSync(target)) continue; // the folder is named for the content: present means right
    mkdirSync(dirname(target), { recursive: true });
    // Temp + rename: several processes may extract at once, none may see half a file.
    const temp = `${target}.${process.pid}.tmp`;
    writeFileSync(temp, new Uint8Array(sea.getAsset(file.path)), { mode: file.executable ? 0o755 : 0o644 });
    if (file.executable) chmodSync(temp, 0o755); // the mode above is filtered by the umask
    renameSync(temp, target);
  }
  return root;
}

/** The folder that holds the package's files (package.json, dist/, node_modules/). */
export function packageRoot(): string {
  if (!isSingleExecutable()) return fileURLToPath(new URL('../../', import.meta.url));
  extractedRoot ??= extractEmbeddedFiles();
  return extractedRoot;
}

/** Absolute path of one of the package's files; inside the executable, one of EMBEDDED_FILES. */
export function packagedFile(path: string): string {
  if (isSingleExecutable() && !EMBEDDED_FILES.some((f) => path === f.path || path.startsWith(`${f.path}/`))) {
    throw new Error(`${path} is not embedded in this executable: list it in EMBEDDED_FILES`);
  }
  return join(packageRoot(), path);
}

/** Points esbuild's JS API at the embedded binary (its own lookup needs node_modules). */
export function useEmbeddedEsbuild(): void {
  if (isSingleExecutable()) process.env.ESBUILD_BINARY_PATH ??= packagedFile(ESBUILD_BINARY);
}
