// The built-in disk drivers (TypeScript and Python) answer a write only once the chunk is on disk
// under its name: its bytes flushed, then the name linked, then its folder flushed, and the parent
// of every folder they made. A power loss cannot be staged here, so the order is read from the
// kernel's side: each write runs in a child process under strace.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request_to_storage_path } from '../drivers/helpers.js';
import { pythonChassisDir, pythonCommand } from '../drivers/python-runtime.js';
import { DriverRequestCodec, DriverRequestType, IoType, type DriverRequest } from '../proto/messages.js';
import { DISK_DRIVER_JS } from './support/gateway.js';

const DISK_DRIVER_PY = fileURLToPath(new URL('../../drivers/builtin/disk-python/driver.py', import.meta.url));

const dirs: string[] = [];
test.after.always(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function request(block: bigint): DriverRequest {
  return {
    volume_id: 3n, user_id: 7n, coordinator_id: 9n, file_id: 0xabcdefn, file_version: 1n, request_type: DriverRequestType.BLOCK,
    path: '/f', block_id: block, block_version: 2n, io_type: IoType.WRITE, offset: 0n, len: 5n, block_size: 65536n, io_context: 1n,
  };
}

/** Runs the writes in one child process under strace; the syscalls that matter, in order. */
function traced(language: 'TypeScript' | 'Python', storage: string, writes: DriverRequest[]): Promise<string[]> {
  const log = join(storage, '..', 'strace.log');
  const encoded = writes.map((r) => Buffer.from(DriverRequestCodec.encode(r)).toString('base64'));
  const config = JSON.stringify({ STORAGE_DIR: storage });
  const [cmd, args, env] = language === 'TypeScript'
    ? [process.execPath, ['--input-type=module', '-e', `
import { write_chunk } from ${JSON.stringify(DISK_DRIVER_JS)};
import { DriverRequestCodec } from ${JSON.stringify(fileURLToPath(new URL('../proto/messages.js', import.meta.url)))};
for (const r of ${JSON.stringify(encoded)}) {
  const rc = await write_chunk(DriverRequestCodec.decode(Buffer.from(r, 'base64')), Buffer.from('chunk'), ${config}, {});
  if (rc !== 0) throw new Error('rc ' + rc);
}`], process.env]
    : [pythonCommand(), ['-B', '-c', `
import base64, importlib.util
from syndicate.protobufs.sg_pb2 import DriverRequest
spec = importlib.util.spec_from_file_location("disk", ${JSON.stringify(DISK_DRIVER_PY)})
disk = importlib.util.module_from_spec(spec)
spec.loader.exec_module(disk)
for r in ${JSON.stringify(encoded)}:
    req = DriverRequest()
    req.ParseFromString(base64.b64decode(r))
    rc = disk.write_chunk(req, b"chunk", ${config}, {})
    assert rc == 0, rc
`], { ...process.env, PYTHONPATH: pythonChassisDir() }];
  return new Promise((resolve, reject) => {
    execFile('strace', ['-f', '-qq', '-y', '-e', 'trace=fsync,fdatasync,link,linkat,mkdir,mkdirat', '-o', log, cmd as string, ...(args as string[])],
      { env: env as NodeJS.ProcessEnv, timeout: 60_000 }, (err, _stdout, stderr) => {
        if (err) return reject(new Error(`${err.message}\n${stderr}`));
        resolve(readFileSync(log, 'utf8').split('\n').filter((l) => /(fsync|fdatasync|link|linkat|mkdir|mkdirat)\(/.test(l) && !l.includes('= -1')));
      });
  });
}

/** What a line does to which path: "fsync /a/b", "link /a/b.tmp /a/b", "mkdir /a". */
function step(line: string): string {
  const call = /(fsync|fdatasync|linkat|link|mkdirat|mkdir)\(/.exec(line)![1]!;
  if (call === 'fsync' || call === 'fdatasync') return `fsync ${/\(\d+<([^>]*)>/.exec(line)?.[1] ?? '?'}`;
  const paths = [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
  return call.startsWith('link') ? `link ${paths[0]} ${paths[1]}` : `mkdir ${paths[0]}`;
}

for (const language of ['TypeScript', 'Python'] as const) {
  test(`${language} disk driver: a written chunk's bytes are flushed, then its name, then the folders made for it`, async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'sgw-test-durable-'));
    dirs.push(root);
    const storage = join(root, 'storage');
    mkdirSync(storage);
    const first = request(5n);
    const second = request(5n);
    second.block_version = 3n; // the same folder, another chunk
    const steps = (await traced(language, storage, [first, second, first])).map(step);
    t.log(steps.join('\n'));
    const chunk1 = join(storage, request_to_storage_path(first));
    const chunk2 = join(storage, request_to_storage_path(second));
    const folder = dirname(chunk1);
    const linked = (chunk: string) => steps.findIndex((s) => s.startsWith('link ') && s.endsWith(` ${chunk}`));
    const flushed = (path: string, after: number) => steps.findIndex((s, i) => i > after && s === `fsync ${path}`);

    // The first chunk: three folders made (3, ABCDEF, 5) below the storage folder.
    const link1 = linked(chunk1);
    t.true(link1 > 0, 'the first chunk appears by a link');
    const temp1 = steps[link1]!.split(' ')[1]!;
    t.true(steps.slice(0, link1).includes(`fsync ${temp1}`), 'its bytes are flushed before its name is linked');
    for (const f of [folder, dirname(folder), dirname(dirname(folder)), storage]) {
      t.true(flushed(f, link1) > link1, `${f} is flushed after the link`);
    }
    // The second, in a folder that exists: only that folder is flushed again.
    const link2 = linked(chunk2);
    t.true(link2 > link1, 'the second chunk appears by a link');
    t.true(flushed(folder, link2) > link2, 'its folder is flushed after its link');
    // The first again (a retry, same bytes): nothing written, but its folder is flushed before the answer.
    const afterSecond = flushed(folder, link2);
    t.is(steps.slice(afterSecond + 1).filter((s) => s.startsWith('link ')).length, 0, 'a retry links nothing');
    t.true(flushed(folder, afterSecond) > afterSecond, 'a retry flushes the folder a lost attempt may not have');
  });
}
