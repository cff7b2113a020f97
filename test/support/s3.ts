// An S3-compatible server for tests and benchmarks: s3rver (npm) in a child process on a free
// loopback port, its objects in a temporary folder. It can be stopped and started again on the
// same port and folder (an outage), or frozen (SIGSTOP: a server that accepts and never answers).
// s3rver checks the access key id (only "S3RVER" exists) but not SigV4 signatures, so a wrong
// secret key goes unnoticed: tests of wrong credentials use a wrong access key id.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort, tiedToParent } from '../../actors/supervisor/embedded-redis.js';
import type { FolderOptions } from './gateway.js';

// The SDK's warning about its releases after 2026 needing Node 22 is noise in test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const SERVER = fileURLToPath(new URL('./s3-server.js', import.meta.url));
/** The built-in S3 drivers, compiled. */
export const S3_DRIVER_JS = fileURLToPath(new URL('../../drivers/builtin/s3/driver.js', import.meta.url));
export const S3_DATASET_DRIVER_JS = fileURLToPath(new URL('../../drivers/builtin/s3-dataset/driver.js', import.meta.url));
/** The credentials s3rver knows, as the drivers' sealed secrets hold them. */
export const S3_SECRETS = { ACCESS_KEY_ID: 'S3RVER', SECRET_ACCESS_KEY: 'S3RVER' } as const;

export class TestS3 {
  readonly endpoint: string;
  readonly client: S3Client;
  #proc: ChildProcess | null = null;

  constructor(readonly port: number, readonly dir: string) {
    this.endpoint = `http://127.0.0.1:${port}`;
    this.client = new S3Client({
      endpoint: this.endpoint, region: 'us-east-1', forcePathStyle: true,
      credentials: { accessKeyId: S3_SECRETS.ACCESS_KEY_ID, secretAccessKey: S3_SECRETS.SECRET_ACCESS_KEY },
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  /** Starts the server (again) on its port and folder; resolves once it listens. */
  async start(): Promise<void> {
    const proc = spawn(...tiedToParent(process.execPath, [SERVER, String(this.port), this.dir], 'KILL'), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#proc = proc;
    let out = '';
    proc.stderr!.on('data', (d) => { out += d; });
    await new Promise<void>((resolve, reject) => {
      proc.stdout!.on('data', (d) => { out += d; if (out.includes('ready')) resolve(); });
      proc.once('exit', (code) => reject(new Error(`the S3 server exited with code ${code}: ${out}`)));
    });
  }

  /** The server process's pid (for CPU readings), NaN while it is stopped. */
  get pid(): number {
    return this.#proc?.pid ?? NaN;
  }

  /** Kills the server (SIGKILL: connections drop, nothing listens on the port until start()). */
  async stop(): Promise<void> {
    const proc = this.#proc;
    this.#proc = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGCONT');
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  }

  /** SIGSTOP / SIGCONT: the port still accepts connections, nothing answers. */
  freeze(): void {
    this.#proc?.kill('SIGSTOP');
  }

  thaw(): void {
    this.#proc?.kill('SIGCONT');
  }

  async createBucket(name: string): Promise<void> {
    await this.client.send(new CreateBucketCommand({ Bucket: name }));
  }

  /** An object's bytes, or null when there is none. */
  async object(bucket: string, key: string): Promise<Buffer | null> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await r.Body!.transformToByteArray());
    } catch (err) {
      if ((err as Error).name === 'NoSuchKey') return null;
      throw err;
    }
  }

  /** The driver folder options of a gateway on this server: driver source, config.json, sealed secrets. */
  driverOptions(driverJs: string, config: Record<string, unknown>, secrets: Record<string, unknown> = S3_SECRETS): Pick<FolderOptions, 'driverSource' | 'driverConfig' | 'driverSecrets'> {
    return {
      driverSource: `export * from ${JSON.stringify(driverJs)};\n`,
      driverConfig: { ENDPOINT: this.endpoint, REGION: 'us-east-1', FORCE_PATH_STYLE: true, ...config },
      driverSecrets: secrets,
    };
  }

  async close(): Promise<void> {
    await this.stop();
    this.client.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A fresh server on a free port; the caller closes it. */
export async function startTestS3(): Promise<TestS3> {
  // A port free when asked may be taken by another test's process before the server binds it:
  // then try another.
  for (let attempt = 1; ; attempt++) {
    const s3 = new TestS3(await freePort(), mkdtempSync(join(tmpdir(), 'sgw-s3-')));
    try {
      await s3.start();
    } catch (err) {
      await s3.close();
      if (attempt < 5 && /EADDRINUSE/.test((err as Error).message)) continue;
      throw err;
    }
    process.once('exit', () => { void s3.stop(); });
    return s3;
  }
}
