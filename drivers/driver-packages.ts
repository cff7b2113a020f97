// What a driver may import from sgw when it is bundled, besides node's built-in modules: the
// helper API ('sgw'), the built-in drivers ('sgw/builtin/<name>', to publish one as it is) and the
// packages sgw provides (PROVIDED_PACKAGES), wherever the driver folder lies and also from the
// single executable, which has no node_modules. Each provided package is pre-bundled into one file
// at build time, so that every publisher (a checkout, an npm install, the executable) bundles the
// same bytes and a driver gets the same version hash everywhere.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { dirname, join, relative, isAbsolute } from 'node:path';
import type { Plugin } from 'esbuild';
import { packageRoot, packagedFile } from './packaged-files.js';

/** Package name → its pre-bundled file (relative to the package root; embedded in the executable). */
export const PROVIDED_PACKAGES: Readonly<Record<string, string>> = {
  '@aws-sdk/client-s3': 'dist/drivers/provided/aws-sdk-client-s3.cjs',
};

/** What drivers import as 'sgw'. */
export const HELPERS_FILE = 'dist/drivers/helpers.js';
const BUILTIN_DRIVER = /^sgw\/builtin\/([a-z0-9-]+)$/;
export const builtinDriverFile = (name: string) => `dist/drivers/builtin/${name}/driver.js`;
export const NODE_BUILTINS = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const OWN_LOOKUP = Symbol('own lookup');

function insidePackage(path: string): boolean {
  const r = relative(packageRoot(), path);
  return !r.startsWith('..') && !isAbsolute(r);
}

/**
 * The esbuild plugin that resolves 'sgw', 'sgw/builtin/<name>' and the provided packages. A driver
 * folder with its own copy of a provided package (its own node_modules) keeps it.
 */
export function driverImportsPlugin(): Plugin {
  const provided = new RegExp(`^(${Object.keys(PROVIDED_PACKAGES).map(escapeRegExp).join('|')})$`);
  return {
    name: 'sgw-driver-imports',
    setup(build) {
      build.onResolve({ filter: /^sgw(\/.*)?$/ }, (args) => {
        if (args.path === 'sgw') return { path: packagedFile(HELPERS_FILE) };
        const name = BUILTIN_DRIVER.exec(args.path)?.[1];
        const file = name === undefined ? null : packagedFile(builtinDriverFile(name));
        if (file && existsSync(file)) return { path: file };
        return { errors: [{ text: `${args.path}: a driver may import 'sgw' (the helpers) or 'sgw/builtin/<name>' of a built-in driver` }] };
      });
      build.onResolve({ filter: provided }, async (args) => {
        if (args.pluginData === OWN_LOOKUP) return undefined;
        const own = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: OWN_LOOKUP });
        if (own.errors.length === 0 && own.path && !insidePackage(own.path)) return { path: own.path };
        return { path: packagedFile(PROVIDED_PACKAGES[args.path]!) };
      });
    },
  };
}

/**
 * Build step (`npm run build`, after tsc): bundles each provided package from node_modules into its
 * file, unless that file already holds the installed version.
 */
export async function buildProvidedPackages(root: string): Promise<void> {
  const { build } = await import('esbuild');
  const require = createRequire(join(root, 'package.json'));
  for (const [name, file] of Object.entries(PROVIDED_PACKAGES)) {
    const version = (JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as { version: string }).version;
    const header = `// ${name} ${version}, bundled by sgw for its drivers\n`;
    const out = join(root, file);
    if (existsSync(out) && readFileSync(out, 'utf8').startsWith(header)) continue;
    const result = await build({
      stdin: { contents: `module.exports = require(${JSON.stringify(name)});`, resolveDir: root, sourcefile: `${name}.provided.js` },
      absWorkingDir: root, bundle: true, platform: 'node', format: 'cjs', target: 'node20',
      external: NODE_BUILTINS, write: false, logLevel: 'error', charset: 'utf8', banner: { js: header.trimEnd() },
    });
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(`${out}.tmp`, result.outputFiles[0]!.text);
    renameSync(`${out}.tmp`, out);
  }
}
