// The README's first minute, as a newcomer lives it: `npm start` in a fresh folder makes and runs the
// demo (four gateways of two volumes on one private redis-server), its banner says what to run next,
// the README's quickstart lines (taken from README.md between its quickstart markers) all work as
// written, and Ctrl-C stops every process and says so.
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cleanup, processGroup, waitFor } from './support/gateway.js';
import { freePorts } from './support/ports.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The shell lines of README.md's quickstart block, as written. */
function quickstartLines(readme: string): string[] {
  const start = readme.indexOf('<!-- quickstart');
  const end = readme.indexOf('<!-- /quickstart -->');
  if (start < 0 || end < start) throw new Error('README.md has no <!-- quickstart --> ... <!-- /quickstart --> block');
  const block = readme.slice(start, end);
  const fence = /```sh\n([\s\S]*?)```/.exec(block);
  if (!fence) throw new Error('the quickstart block holds no ```sh fence');
  return fence[1]!.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

/** A command without its trailing comment and with single spaces, to compare README and banner. */
const commandOf = (line: string) => line.replace(/\s+#.*$/, '').replace(/\s+/g, ' ').trim();

/** A fresh folder holding what a clone of the repository has after `npm install`: the files, node_modules and the build. */
function freshCheckout(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-quickstart-'));
  for (const file of ['README.md', 'package.json']) copyFileSync(join(ROOT, file), join(dir, file));
  for (const folder of ['node_modules', 'dist']) symlinkSync(join(ROOT, folder), join(dir, folder));
  return dir;
}

test('npm start runs the demo, the README quickstart works line by line, and Ctrl-C stops it all saying so', async (t) => {
  t.timeout(600_000); // ten actor processes start on a shared 2-core machine
  const dir = freshCheckout();
  t.teardown(() => cleanup([dir]));
  const readme = readFileSync(join(dir, 'README.md'), 'utf8');
  const lines = quickstartLines(readme);
  t.true(lines.length >= 5, 'the quickstart block has its commands');

  const [basePort] = await freePorts(4);
  // npm's cache in the folder too: `npx sgw` links this package into it, and nothing is left behind.
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_cache: join(dir, '.npm-cache') };
  delete env.SGW_HOME;
  delete env.SGW_PORT;
  // Its own process group, as a terminal runs a foreground job: Ctrl-C signals the whole group.
  const npm = spawn('npm', ['start'], { cwd: dir, env: { ...env, SGW_PORT: String(basePort) }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  npm.stdout.on('data', (d) => { out += d; });
  npm.stderr.on('data', (d) => { out += d; });
  const exited = new Promise<void>((resolve) => npm.once('exit', () => resolve()));
  t.teardown(() => { if (processGroup(npm.pid!).length > 0) process.kill(-npm.pid!, 'SIGKILL'); });

  await Promise.race([
    waitFor('the demo banner', async () => out.includes('Try, in another terminal'), 300_000),
    exited.then(() => { throw new Error(`npm start exited:\n${out}`); }),
  ]);
  t.log(out.slice(out.indexOf('sgw demo')));
  // The banner: where each gateway is, the token, the dashboard with its credential.
  for (const port of [basePort!, basePort! + 1, basePort! + 2, basePort! + 3]) t.true(out.includes(`http://127.0.0.1:${port}/`), `names port ${port}`);
  const token = /token ([0-9a-f]{24})/.exec(out)?.[1];
  t.truthy(token, 'prints the UGs\' token');
  t.regex(out, /redis {6}redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ {2}\(private redis-server, data in .*\.sgw[/\\]state[/\\]redis/, 'names the private Redis, not its password');
  const dash = /(http:\/\/127\.0\.0\.1:\d+\/admin\/queues) {2}user (\S+), password ([0-9a-f]+)/.exec(out);
  t.truthy(dash, 'prints the dashboard URL and its credential');
  // The banner comes once every actor said it is ready, or after 30 s of waiting for them: on a
  // machine busy with other tests, the four front actors may still be starting.
  for (const port of [basePort!, basePort! + 1, basePort! + 2, basePort! + 3]) {
    await waitFor(`the gateway on port ${port} to answer`, async () => (await fetch(`http://127.0.0.1:${port}/PING`).catch(() => null))?.ok, 120_000);
  }
  t.is((await fetch(dash![1]!)).status, 401, 'the dashboard asks for the credential');
  const basic = `Basic ${Buffer.from(`${dash![2]}:${dash![3]}`).toString('base64')}`;
  t.is((await fetch(dash![1]!, { headers: { Authorization: basic } })).status, 200, 'and opens with the printed one');
  const stat = await fetch(`http://127.0.0.1:${basePort! + 1}/FILES/?stat`, { headers: { Authorization: `Bearer ${token}` } });
  t.is(stat.status, 200, 'the printed token opens UG 10\'s API');
  // The README shows the commands the banner prints.
  const banner = out.slice(out.indexOf('Try, in another terminal')).split('\n').map(commandOf).filter((l) => l.startsWith('npx sgw'));
  for (const line of lines.map(commandOf).filter((l) => l.startsWith('npx sgw ug'))) t.true(banner.includes(line), `the banner prints "${line}"`);

  // Every quickstart line, literally, in the fresh folder (as from a second terminal there).
  const sampleDir = join(dir, '.sgw', 'sample');
  const results: { line: string; stdout: string }[] = [];
  for (const line of lines) {
    const r = await run('bash', ['-c', line], { cwd: dir, env, timeout: 120_000 })
      .catch((err: { code: number; stdout: string; stderr: string }) => { throw new Error(`"${line}" failed (${err.code}): ${err.stderr}${err.stdout}`); });
    results.push({ line, stdout: r.stdout });
  }
  const outputOf = (fragment: string) => {
    const found = results.find((r) => commandOf(r.line).includes(fragment));
    if (!found) throw new Error(`no quickstart line has "${fragment}"`);
    return found.stdout;
  };
  const readmeBytes = statSync(join(dir, 'README.md')).size;
  t.regex(outputOf('ug put README.md /hello.md'), new RegExp(`README\\.md -> /hello\\.md: ${readmeBytes} bytes in`), 'put says what it stored');
  t.regex(outputOf('ug ls /'), new RegExp(`^- +0644 +${readmeBytes} \\S+ /hello\\.md$`, 'm'), 'ls lists the file');
  t.is(outputOf('ug cat /hello.md'), readme, 'cat gives the README back byte for byte');
  // The AG publishes each file with its own mtime (not the time of the crawl).
  const csv = statSync(join(sampleDir, 'data', 'powers.csv'));
  const mtime = new Date(Math.floor(csv.mtimeMs / 1000) * 1000).toISOString().slice(0, 19);
  t.regex(outputOf('ug ls /data'), new RegExp(`^- +0644 +${csv.size} ${mtime} /data/powers\\.csv$`, 'm'), 'ls of volume 2 shows the sample with its own mtime');
  t.is(outputOf('ug cat /hello.txt'), readFileSync(join(sampleDir, 'hello.txt'), 'utf8'), 'the AG\'s file reads through UG 11');
  t.regex(outputOf('sgw status'), /gateway rg\.20[\s\S]*driver:read/, 'status shows the demo RG\'s actors');

  // Ctrl-C: SIGINT to the foreground group, as the terminal sends it.
  process.kill(-npm.pid!, 'SIGINT');
  await exited;
  await waitFor('every process of the demo to exit', async () => processGroup(npm.pid!).length === 0);
  t.regex(out, /sgw: stopping: .*\n[\s\S]*sgw: stopped: 4 gateways and the private redis-server, every process of it has exited\n/);
  const again = await run(process.execPath, [join(dir, 'dist', 'actors', 'cli', 'cli.js'), 'ug', 'ls', '/'], { cwd: dir }).then(() => null, (e: { stderr: string }) => e);
  t.regex(again?.stderr ?? '', /cannot reach the user gateway at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/, 'nothing answers any more');
});
