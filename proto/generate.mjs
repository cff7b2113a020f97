// Generates static protobufjs code for sg.proto (static code decodes ~20-40% faster than
// reflection) into proto/generated/, and copies it beside the compiled output in dist/.
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync, copyFileSync, existsSync } from 'node:fs';
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
const distDir = join(root, 'dist', 'proto', 'generated');
mkdirSync(distDir, { recursive: true });
copyFileSync(js, join(distDir, 'sg.js'));
copyFileSync(dts, join(distDir, 'sg.d.ts'));
copyFileSync(src, join(dirname(distDir), 'sg.proto'));
