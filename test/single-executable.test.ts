// The single executable as a worker host meets it: copied alone into an empty folder and run with
// no Node on the PATH and no node_modules within reach, it runs the demo gateway, whose actors are
// the executable again, and a driver actor inside it serves a chunk from the disk driver's storage.
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from '../actors/supervisor/embedded-redis.js';
import { runningStateRedisUrl } from '../actors/supervisor/state-redis.js';
import { loadConfig } from '../proto/config/config.js';
import { listActors } from '../queues/registry.js';
import { buildSingleExecutable, type SingleExecutable } from '../actors/package/single-executable.js';
import { request_to_storage_path } from '../drivers/helpers.js';
import { unsealSecrets } from '../drivers/secrets.js';
import { formatBlockUrl, parseDataUrl } from '../http/data-url.js';
import { driverRequestForGet } from '../http/get-chunk.js';
import { layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import { ChunkType } from '../proto/messages.js';
import { cleanup, fileRef, makeGatewayFolder, waitFor, waitForGateway, processAlive, stopChild } from './support/gateway.js';
import { testRedis } from './support/redis.js';
import { S3_SECRETS, startTestS3 } from './support/s3.js';
import { buildBundle, currentBundleHash } from '../drivers/bundle.js';

const run = promisify(execFile);
const dirs: string[] = [];
test.after.always(() => cleanup(dirs));

function tempDir(name: string): string {
  const d = mkdtempSync(join(tmpdir(), `sgw-sea-${name}-`));
  dirs.push(d);
  return d;
}

function findOnPath(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isAbsolute(dir) && existsSync(join(dir, name))) return join(dir, name); // not realpath: Debian's redis-server is a link that dispatches on its name
  }
  throw new Error(`${name} is not on the PATH`);
}

let built: Promise<SingleExecutable> | null = null;
/** Built once per test file, by the function `npm run package` runs. */
function executable(): Promise<SingleExecutable> {
  built ??= buildSingleExecutable(join(tempDir('build'), 'sgw'));
  return built;
}

interface Host {
  dir: string;
  exe: string;
  env: NodeJS.ProcessEnv;
  /** Written by a stand-in `node` on the PATH if anything tries to run node. */
  nodeMarker: string;
}

/** An empty folder holding only the executable, and an environment with no Node in it. */
async function workerHost(): Promise<Host> {
  const { file } = await executable();
  const dir = tempDir('host');
  const exe = join(dir, 'sgw');
  copyFileSync(file, exe);
  chmodSync(exe, 0o755);
  // The real node lives in /usr/bin beside redis-server here, so PATH holds a folder of our own:
  // the system programs sgw may use (redis-server; util-linux's flock and setpriv, for the folder
  // lock and the private Redis's parent-death signal) and a `node` that only records being called.
  const bin = tempDir('bin');
  const nodeMarker = join(bin, 'node-was-run');
  writeFileSync(join(bin, 'redis-server'), `#!/bin/sh\nexec ${findOnPath('redis-server')} "$@"\n`, { mode: 0o755 });
  for (const tool of ['flock', 'setpriv']) symlinkSync(findOnPath(tool), join(bin, tool));
  writeFileSync(join(bin, 'node'), `#!/bin/sh\necho "$@" >> ${nodeMarker}\nexit 1\n`, { mode: 0o755 });
  const home = tempDir('home');
  // A fresh environment: nothing of this test's Node (NODE_OPTIONS, NODE_PATH, npm_*) leaks in.
  const env: NodeJS.ProcessEnv = { PATH: bin, HOME: home, XDG_CACHE_HOME: join(home, 'cache'), SGW_LOG_LEVEL: 'warn' };
  return { dir, exe, env, nodeMarker };
}

test('the executable, alone in an empty folder with no Node, runs the demo gateway and its driver actors serve chunks', async (t) => {
  const { bytes, buildMs } = await executable();
  t.log(`executable: ${(bytes / 2 ** 20).toFixed(1)} MiB, built in ${(buildMs / 1000).toFixed(1)} s`);
  const host = await workerHost();
  t.deepEqual(readdirSync(host.dir), ['sgw'], 'the folder holds the executable and nothing else');
  t.false(existsSync(join(dirname(host.dir), 'node_modules')), 'no node_modules above the folder either');

  const port = await freePort();
  const proc = spawn(host.exe, ['start'], { cwd: host.dir, env: { ...host.env, SGW_PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
  const base = `http://127.0.0.1:${port}`;
  let redis: Redis | null = null;
  try {
    await Promise.race([
      waitFor('the demo gateway to answer /PING', async () => (await fetch(`${base}/PING`)).status === 200, 60_000),
      exited.then((code) => { throw new Error(`exited with code ${code}`); }),
    ]).catch((err: Error) => { throw new Error(`${err.message}; its output:\n${out}`); });
    const ping = await fetch(`${base}/PING`);
    t.is(ping.status, 200, `GET /PING answers 200 (output: ${out})`);
    await ping.arrayBuffer();

    // The summary is printed once the actors are ready, which may be after /PING first answers.
    await waitFor('the summary naming its Redis', async () => /redis\s+redis:\/\/:\*\*\*@127\.0\.0\.1:\d+/.test(out));
    redis = new Redis(runningStateRedisUrl(loadConfig(join(host.dir, '.sgw', 'config.json'))), { maxRetriesPerRequest: 1 });
    const readers = await waitFor('a live driver:read actor', async () => {
      const found = await listActors(redis!, 'rg.20', ['driver:read']);
      return found.length > 0 ? found : null;
    }, 30_000);
    for (const a of readers) t.is(readlinkSync(`/proc/${a.pid}/exe`), realpathSync(host.exe), 'the driver actor is the executable itself');

    // A chunk put where the demo's disk driver looks (./.sgw/storage + request_to_storage_path).
    const url = formatBlockUrl(base, { volume_id: 1n, fs_path: '/sea/file', file_id: 0x5ea1n, file_version: 2n, block_id: 3n, block_version: 9n });
    const request = driverRequestForGet(parseDataUrl(new URL(url).pathname), 1n, 65536);
    const stored = join(host.dir, '.sgw', 'storage', request_to_storage_path(request));
    const chunk = Buffer.from(`chunk served by a driver actor inside the executable ${port}`);
    mkdirSync(dirname(stored), { recursive: true });
    writeFileSync(stored, chunk);
    const res = await fetch(url);
    t.is(res.status, 200, `GET of the stored chunk answers 200 (output: ${out})`);
    t.deepEqual(Buffer.from(await res.arrayBuffer()), chunk, 'with the bytes the disk driver read');
    const missing = await fetch(formatBlockUrl(base, { volume_id: 1n, fs_path: '/sea/none', file_id: 0x5ea2n, file_version: 1n, block_id: 0n, block_version: 0n }));
    await missing.arrayBuffer();
    t.is(missing.status, 404, 'a chunk the driver lacks is a 404');

    // Another subcommand of the same executable: publishing bundles the driver with the embedded
    // esbuild; the content is what `start` published, so the version stays. It finds the private
    // Redis through the demo's state folder.
    const published = await run(host.exe, ['driver', 'publish', '--config', join(host.dir, '.sgw', 'config.json')], {
      cwd: host.dir, env: host.env, timeout: 60_000,
    });
    t.regex(published.stdout, /^[0-9a-f]{64} unchanged \(.*read_chunk.*\)$/m, 'driver publish finds the version start published');

    const pids = [...readers.map((a) => a.pid), Number(/process_id:(\d+)/.exec(await redis.info('server'))![1])];
    redis.disconnect();
    redis = null;
    proc.kill('SIGTERM');
    t.is(await exited, 0, 'SIGTERM stops it cleanly');
    await waitFor('its actors and private Redis to stop', async () => pids.every((p) => !processAlive(p)));
    t.false(existsSync(host.nodeMarker), 'nothing tried to run node');
  } finally {
    redis?.disconnect();
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
  }
});

test('the executable runs the key and secrets subcommands with no Node around', async (t) => {
  const host = await workerHost();
  await run(host.exe, ['keys', 'new', 'gw', '--bits', '2048', '--dir', host.dir], { cwd: host.dir, env: host.env, timeout: 30_000 });
  writeFileSync(join(host.dir, 'secrets.json'), JSON.stringify({ token: 'not for logs' }));
  const sealed = await run(host.exe, ['secrets', 'seal', '--key', join(host.dir, 'gw.pub.pem'), '--in', join(host.dir, 'secrets.json'), '--out', join(host.dir, 'sealed.json')], {
    cwd: host.dir, env: host.env, timeout: 30_000,
  });
  t.is(sealed.stdout.trim(), join(host.dir, 'sealed.json'));
  const opened = unsealSecrets(readFileSync(join(host.dir, 'sealed.json')), createPrivateKey(readFileSync(join(host.dir, 'gw.pem'))));
  t.deepEqual(JSON.parse(opened.toString()), { token: 'not for logs' }, 'the sealed secrets open with the new private key');
  t.deepEqual(readdirSync(host.dir).sort(), ['gw.pem', 'gw.pub.pem', 'sealed.json', 'secrets.json', 'sgw']);
  const bad = await run(host.exe, ['actor', 'nonsense', '--config', join(host.dir, 'missing.json')], { cwd: host.dir, env: host.env, timeout: 30_000 })
    .then(() => null, (e: { code: number; stderr: string }) => e);
  t.is(bad?.code, 1, 'a bad command fails with exit code 1');
  t.regex(bad?.stderr ?? '', /^sgw: /m, 'and says why');
  t.false(existsSync(host.nodeMarker), 'nothing tried to run node');
});

test('the executable says where to extract its embedded files when the cache folder cannot be written', async (t) => {
  const host = await workerHost();
  const notAFolder = join(host.dir, 'plain-file');
  writeFileSync(notAFolder, 'not a folder');
  const err = await run(host.exe, ['start'], { cwd: host.dir, env: { ...host.env, XDG_CACHE_HOME: join(notAFolder, 'cache') }, timeout: 60_000 })
    .then(() => null, (e: { code: number; stderr: string }) => e);
  t.is(err?.code, 1, 'it stops with exit code 1');
  t.regex(err?.stderr ?? '', /cannot extract sgw's embedded files .*set XDG_CACHE_HOME to a writable folder/);
});

test('the executable publishes the built-in S3 driver as \'sgw/builtin/s3\' (its SDK inside) and its actors keep chunks in S3', async (t) => {
  const host = await workerHost();
  const s3 = await startTestS3();
  t.teardown(() => s3.close());
  await s3.createBucket('sea');
  const f = await makeGatewayFolder({
    driverSource: "export * from 'sgw/builtin/s3';\n",
    driverConfig: { ENDPOINT: s3.endpoint, REGION: 'us-east-1', FORCE_PATH_STYLE: true, BUCKET: 'sea', PREFIX: 'exe/' },
    driverSecrets: S3_SECRETS,
  });
  dirs.push(f.dir);
  const proc = spawn(host.exe, ['start', '--config', f.configFile], { cwd: host.dir, env: host.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const redis = new Redis((await testRedis()).url);
  try {
    await waitForGateway(f, redis).catch((err: Error) => { throw new Error(`${err.message}; its output:\n${out}`); });
    const fromCheckout = await buildBundle(join(f.dir, 'driver'));
    t.is(await currentBundleHash(redis, f.gatewayKey), fromCheckout.hash, 'the executable published the very bundle a checkout builds');
    const chunk = Buffer.from(`a chunk kept in S3 by the executable's driver actors ${f.port}`);
    const { blocks, data } = layOutChunks([{ block: { block_id: 1n, block_version: 2n, chunk_type: ChunkType.BLOCK }, bytes: chunk }]);
    const put = await sendControlPlane(f.url, putChunksFields(fileRef(f), blocks), f.ugKey, data, f.rgKey);
    t.deepEqual([put.status, put.reply?.error_code], [200, 0], out);
    t.deepEqual(await s3.object('sea', 'exe/3/FEDCBA9876543210/1/2'), chunk, 'the object holds the chunk');
    const file = fileRef(f);
    const at = (block_id: bigint, block_version: bigint) => formatBlockUrl(f.url, { volume_id: 3n, fs_path: file.fs_path, file_id: file.file_id, file_version: file.file_version, block_id, block_version });
    const got = await fetch(at(1n, 2n));
    t.is(got.status, 200);
    t.deepEqual(Buffer.from(await got.arrayBuffer()), chunk);
    const missing = await fetch(at(9n, 9n));
    await missing.arrayBuffer();
    t.is(missing.status, 404, 'a chunk S3 lacks is a 404');
    t.false(existsSync(host.nodeMarker), 'nothing tried to run node');
  } finally {
    redis.disconnect();
    await stopChild(proc);
  }
});
