// Generates static protobufjs code for sg.proto (static code decodes ~20-40% faster than
// reflection) into proto/generated/, and copies it beside the compiled output in dist/.
// The schema text itself becomes a module too, so that reading it needs no file beside the code
// (the single executable has none).
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync, copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);
const src = join(here, 'sg.proto');
const outDir = join(here, 'generated');
const js = join(outDir, 'sg.js');
const dts = join(outDir, 'sg.d.ts');
const bin = (name) => join(root, 'node_modules', '.bin', name);

const stale = !existsSync(dts) || statSync(dts).mtimeMs < statSync(src).mtimeMs;
if (stale) {
  mkdirSync(outDir, { recursive: true });
  execFileSync(bin('pbjs'), ['-t', 'static-module', '-w', 'es6', '--keep-case', '--force-long',
    '--no-create', '--no-verify', '--no-convert', '--no-delimited', '-o', js, src], { stdio: 'inherit' });
  execFileSync(bin('pbts'), ['-o', dts, js], { stdio: 'inherit' });
}
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'sg-schema.js'), `// Generated from sg.proto by generate.mjs.\nexport const SG_PROTO = ${JSON.stringify(readFileSync(src, 'utf8'))};\n`);
writeFileSync(join(outDir, 'sg-schema.d.ts'), '/** The text of sg.proto. */\nexport declare const SG_PROTO: string;\n');
const distDir = join(root, 'dist', 'proto', 'generated');
mkdirSync(distDir, { recursive: true });
for (const name of ['sg.js', 'sg.d.ts', 'sg-schema.js', 'sg-schema.d.ts']) copyFileSync(join(outDir, name), join(distDir, name));
copyFileSync(src, join(dirname(distDir), 'sg.proto'));
