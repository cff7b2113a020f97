// `sgw ug put|get|cat|ls|rm|mv` as a user runs it: the real CLI in a child process against a
// running UG and replica.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './support/gateway.js';
import { freePort } from '../actors/supervisor/embedded-redis.js';
import { patternBytes } from './support/ug.js';
import { ugVolumePerFile } from './support/ug-per-file.js';

const vol = ugVolumePerFile({ rgs: 1, blockSize: 32768 });
const work = mkdtempSync(join(tmpdir(), 'sgw-ug-cli-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

function sgw(args: string[], input?: Buffer): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { cwd: work, encoding: 'buffer', timeout: 60_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr: stderr.toString() });
    });
    if (input) child.stdin!.end(input);
  });
}

test('put, ls, get, cat, mv and rm through the CLI', async (t) => {
  const cfg = ['--config', vol.v.ug.configFile];
  const data = patternBytes(5 * 32768 + 7, 61);
  writeFileSync(join(work, 'local.bin'), data);
  const put = await sgw(['ug', 'put', 'local.bin', '/cli/remote.bin', ...cfg]);
  t.is(put.code, 0, put.stderr);
  t.regex(put.stdout.toString(), new RegExp(`^local\\.bin -> /cli/remote\\.bin: ${data.length} bytes in \\d+\\.\\d\\d s\\n$`), 'one summary line');
  const ls = await sgw(['ug', 'ls', '/cli', ...cfg]);
  t.is(ls.code, 0, ls.stderr);
  t.regex(ls.stdout.toString(), new RegExp(`^-\\s+0644\\s+${data.length} \\S+ /cli/remote.bin\\n$`));
  t.regex((await sgw(["ug", "ls", "/", ...cfg])).stdout.toString(), /^d\s+0755\s+4096 \S+ \/cli$/m);
  const get = await sgw(['ug', 'get', '/cli/remote.bin', 'back.bin', ...cfg]);
  t.is(get.code, 0, get.stderr);
  t.true(readFileSync(join(work, 'back.bin')).equals(data));
  const cat = await sgw(['ug', 'cat', '/cli/remote.bin', ...cfg]);
  t.true(cat.stdout.equals(data));
  const stdin = await sgw(['ug', 'put', '-', '/cli/stdin.txt', ...cfg], Buffer.from('from stdin\n'));
  t.is(stdin.code, 0, stdin.stderr);
  t.is((await sgw(['ug', 'cat', '/cli/stdin.txt', ...cfg])).stdout.toString(), 'from stdin\n');
  t.is((await sgw(['ug', 'mv', '/cli/remote.bin', '/cli/moved.bin', ...cfg])).code, 0);
  t.true((await sgw(['ug', 'cat', '/cli/moved.bin', ...cfg])).stdout.equals(data));
  t.is((await sgw(['ug', 'rm', '/cli/moved.bin', ...cfg])).code, 0);
  const gone = await sgw(['ug', 'cat', '/cli/moved.bin', ...cfg]);
  t.is(gone.code, 1);
  t.regex(gone.stderr, /^sgw: GET \/FILES\/cli\/moved.bin: 404 no file at \/cli\/moved.bin/);
});

test('the CLI refuses a config that is not a user gateway\'s, and reports refusals', async (t) => {
  const rg = await sgw(['ug', 'ls', '/', '--config', vol.v.rgs[0]!.configFile]);
  t.is(rg.code, 1);
  t.regex(rg.stderr, /not a user gateway/);
  const bad = await sgw(['ug', 'put', '-', '/a/../b', '--config', vol.v.ug.configFile], Buffer.from('x'));
  t.is(bad.code, 1);
  t.regex(bad.stderr, /"\/a\/..\/b": the path has a bad segment/);
  t.is((await sgw(['ug', 'cat', '/b', '--config', vol.v.ug.configFile])).code, 1, 'nothing was written');
});

test('reading a directory as a file fails with the API\'s 409, and an unreachable gateway is named', async (t) => {
  const cfg = ['--config', vol.v.ug.configFile];
  t.is((await sgw(['ug', 'put', '-', '/dirs/inside.txt', ...cfg], Buffer.from('x'))).code, 0);
  for (const verb of ['get', 'cat']) {
    const r = await sgw(['ug', verb, '/dirs', ...cfg]);
    t.is(r.code, 1, verb);
    t.regex(r.stderr, /^sgw: GET \/FILES\/dirs: 409 \/dirs is a directory/, verb);
    t.is(r.stdout.length, 0, `${verb} writes nothing to stdout`);
  }
  const closed = await freePort();
  const down = await sgw(['ug', 'ls', '/', ...cfg, '--url', `http://127.0.0.1:${closed}`]);
  t.is(down.code, 1);
  t.regex(down.stderr, new RegExp(`^sgw: cannot reach the user gateway at http://127\\.0\\.0\\.1:${closed}: ECONNREFUSED`));
});
