// `npm run package`: sgw as ONE executable file (Node's single executable application support)
// that runs every role and subcommand on a host with no Node and no node_modules. The compiled
// command line is bundled by esbuild into one CommonJS file (a SEA's main script may require only
// built-in modules), the files of EMBEDDED_FILES ride along as assets, and the blob is injected
// into a copy of this Node binary with postject.
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { EMBEDDED_FILES, EMBEDDED_MANIFEST_ASSET, packageRoot, type EmbeddedFile, type EmbeddedManifest } from '../../drivers/packaged-files.js';
import { driverImportsPlugin } from '../../drivers/driver-packages.js';

// Node's documented names for the SEA blob (see the single-executable-applications docs).
const SEA_RESOURCE = 'NODE_SEA_BLOB';
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

export interface SingleExecutable {
  file: string;
  bytes: number;
  buildMs: number;
}

/** One CommonJS file holding dist/actors/cli/cli.js and every package it imports. */
async function bundleCommandLine(root: string, outFile: string): Promise<void> {
  const result = await build({
    entryPoints: [join(root, 'dist', 'actors', 'cli', 'cli.js')],
    bundle: true, platform: 'node', format: 'cjs', target: 'node20',
    // msgpackr's optional native accelerator cannot load in a SEA: keep it out and tell msgpackr
    // not to try (the attempt prints a warning), so it uses its plain JS code.
    external: ['msgpackr-extract'],
    define: { 'process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED': '"true"' },
    // esbuild's own lookups of its package are replaced by ESBUILD_BINARY_PATH.
    logOverride: { 'require-resolve-not-external': 'silent' },
    write: false, logLevel: 'silent', charset: 'utf8',
  });
  // import.meta is empty in the bundle: a file path made from it would crash the executable at
  // start or point nowhere. Only packaged-files.ts may use it (off the SEA path).
  const misuses = result.warnings
    .filter((w) => w.id === 'empty-import-meta' && w.location && !w.location.file.endsWith('drivers/packaged-files.js'))
    .map((w) => `${w.location!.file}:${w.location!.line}`);
  if (misuses.length > 0) {
    throw new Error(`import.meta is used in ${misuses.join(', ')}: reach package files through packagedFile() of drivers/packaged-files.ts`);
  }
  // A SEA main script is wrapped like a CommonJS module, where a hashbang line is a syntax error.
  writeFileSync(outFile, result.outputFiles[0]!.text.replace(/^#![^\n]*\n/, ''));
}

/** Fails when an embedded JS file imports a package file that is not embedded with it. */
async function checkEmbeddedImports(root: string): Promise<void> {
  const listed = (path: string) => EMBEDDED_FILES.some((f) => path === f.path || path.startsWith(`${f.path}/`));
  const entries = expandFolders(root).filter((f) => f.path.startsWith('dist/') && f.path.endsWith('.js')).map((f) => join(root, f.path));
  const result = await build({
    entryPoints: entries, bundle: true, platform: 'node', format: 'cjs', write: false, metafile: true, outdir: 'unused', logLevel: 'error',
    plugins: [driverImportsPlugin()], // as drivers are bundled: provided packages come from their embedded files
  });
  for (const input of Object.keys(result.metafile.inputs)) {
    const path = relative(root, resolve(input)).split(sep).join('/');
    if (!listed(path)) throw new Error(`${path} is imported by an embedded file but missing from EMBEDDED_FILES (drivers/packaged-files.ts)`);
  }
}

/** EMBEDDED_FILES with each folder replaced by the files under it. */
function expandFolders(root: string): EmbeddedFile[] {
  return EMBEDDED_FILES.flatMap((f) => {
    const source = join(root, f.path);
    if (!existsSync(source)) throw new Error(`${source} is missing: run "npm install" and "npm run build" first`);
    if (!statSync(source).isDirectory()) return [f];
    return readdirSync(source, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())
      .map((e) => ({ ...f, path: relative(root, join(e.parentPath, e.name)).split(sep).join('/') }));
  });
}

/** Asset map for the SEA config, with the manifest that lists the files under their digest. */
function embeddedAssets(root: string, manifestFile: string): Record<string, string> {
  const files = expandFolders(root);
  const digest = createHash('sha256');
  const assets: Record<string, string> = {};
  for (const f of files) {
    const source = join(root, f.path);
    digest.update(`${f.path}\0${f.executable ? 'x' : '-'}\0`).update(readFileSync(source));
    assets[f.path] = source;
  }
  const manifest: EmbeddedManifest = { id: digest.digest('hex').slice(0, 32), files };
  writeFileSync(manifestFile, JSON.stringify(manifest));
  assets[EMBEDDED_MANIFEST_ASSET] = manifestFile;
  return assets;
}

/** Builds the executable at outFile from the compiled dist/ of this package. */
export async function buildSingleExecutable(outFile: string): Promise<SingleExecutable> {
  const started = Date.now();
  const root = packageRoot();
  if (!existsSync(join(root, 'dist', 'actors', 'cli', 'cli.js'))) throw new Error('dist/ is missing: run "npm run build" first');
  const work = mkdtempSync(join(tmpdir(), 'sgw-package-'));
  try {
    const main = join(work, 'sgw.cjs');
    const blob = join(work, 'sgw.blob');
    const seaConfig = join(work, 'sea-config.json');
    await checkEmbeddedImports(root);
    await bundleCommandLine(root, main);
    const config = {
      main, output: blob, disableExperimentalSEAWarning: true,
      useCodeCache: true, // compiled once here instead of at every actor's start
      assets: embeddedAssets(root, join(work, 'embedded.json')),
    };
    writeFileSync(seaConfig, JSON.stringify(config, null, 2));
    execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: 'pipe' }); // its errors are in the thrown error
    const temp = join(work, 'sgw');
    copyFileSync(process.execPath, temp);
    chmodSync(temp, 0o755);
    // postject's command line in a child: its ELF parser prints harmless warnings, shown only
    // (inside the thrown error) when injecting fails.
    const postject = createRequire(import.meta.url).resolve('postject/dist/cli.js');
    execFileSync(process.execPath, [postject, temp, SEA_RESOURCE, blob, '--sentinel-fuse', SEA_FUSE,
      ...(process.platform === 'darwin' ? ['--macho-segment-name', 'NODE_SEA'] : [])], { stdio: 'pipe' });
    const file = resolve(outFile);
    copyFileSync(temp, `${file}.tmp`); // the work folder may be on another file system
    chmodSync(`${file}.tmp`, 0o755);
    renameSync(`${file}.tmp`, file);
    return { file, bytes: statSync(file).size, buildMs: Date.now() - started };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const out = process.argv[2] ?? join(packageRoot(), 'dist', 'sgw');
  buildSingleExecutable(out).then((r) => {
    process.stdout.write(`${r.file}  ${(r.bytes / 2 ** 20).toFixed(1)} MiB, built in ${(r.buildMs / 1000).toFixed(1)} s\n`);
  }, (err: Error) => {
    process.stderr.write(`sgw package: ${err.message}\n`);
    process.exit(1);
  });
}
