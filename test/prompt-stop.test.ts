// A gateway started again after a kill -9 stops on SIGTERM as promptly as any other, even while
// clients keep their keep-alive connections busy: the http actor drains first (its in-flight
// requests still have driver actors to answer them) and closes every connection as it answers,
// then the driver actors stop. Before, a busy keep-alive client held the http actor until the
// request deadline, and requests in flight waited for driver actors that had already gone.
import test from 'ava';
import { ChunkType } from '../proto/messages.js';
import { layOutChunks, putChunksFields, sendControlPlane } from '../http/rg-client.js';
import { formatBlockUrl } from '../http/data-url.js';
import {
  cleanup, fileRef, killGroup, makeGatewayFolder, processGroup, startGatewayProcess, waitFor, waitForEmbeddedGateway,
  type GatewayFolder, type RunningGateway,
} from './support/gateway.js';

const CALL_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 20_000;
/** Generous for a busy machine, and well below the request deadline a keep-alive client used to stretch a stop to. */
const STOP_WITHIN_MS = CALL_TIMEOUT_MS + 3_000;

/** Clients writing and reading 256 KiB blocks over keep-alive connections until stopped. */
function load(f: GatewayFolder): { answered(): number; stop(): Promise<number> } {
  let running = true;
  let answered = 0;
  let n = 0;
  const clients = Array.from({ length: 6 }, async (_, w) => {
    const file = fileRef(f, { file_id: 0x5709n + BigInt(w) });
    while (running) {
      const id = BigInt(n++);
      const { blocks, data } = layOutChunks([{ block: { block_id: id, block_version: 1n, chunk_type: ChunkType.BLOCK }, bytes: Buffer.alloc(256 << 10, w) }]);
      const put = await sendControlPlane(f.url, putChunksFields(file, blocks), f.ugKey, data).catch(() => null);
      if (put?.status === 200) answered++;
      const url = formatBlockUrl(f.url, { volume_id: 3n, fs_path: file.fs_path, file_id: file.file_id, file_version: file.file_version, block_id: id, block_version: 1n });
      await fetch(url).then((r) => r.arrayBuffer()).catch(() => undefined);
      if (!put) await new Promise((r) => setTimeout(r, 50)); // nobody listens: don't spin
    }
  });
  return {
    answered: () => answered,
    async stop() {
      running = false;
      await Promise.all(clients);
      return answered;
    },
  };
}

test('SIGTERM after a kill -9 and a restart, with clients busy: everything stops promptly and no process is left (3 rounds)', async (t) => {
  const f = await makeGatewayFolder({
    embeddedRedis: true,
    config: { limits: { call_timeout_ms: CALL_TIMEOUT_MS, request_timeout_ms: REQUEST_TIMEOUT_MS, max_upload_bytes: 8 << 20 } },
  });
  t.timeout(5 * 60_000); // three kill-and-restart rounds of a whole gateway on a busy machine
  let gw: RunningGateway = startGatewayProcess(f.configFile, undefined, undefined, { detached: true });
  t.teardown(async () => {
    await gw.stop();
    cleanup([f.dir]);
  });
  await waitForEmbeddedGateway(f);
  for (let round = 1; round <= 3; round++) {
    const clients = load(f);
    const before = clients.answered();
    await waitFor('writes under way', async () => clients.answered() > before + 3);
    await killGroup(gw);
    gw = startGatewayProcess(f.configFile, undefined, undefined, { detached: true });
    await waitForEmbeddedGateway(f);
    const restarted = clients.answered();
    await waitFor('the clients writing to the restarted gateway', async () => clients.answered() > restarted + 3);
    const pgid = gw.proc.pid!;
    const started = Date.now();
    gw.proc.kill('SIGTERM');
    await waitFor('every process of the gateway to stop', async () => processGroup(pgid).length === 0);
    const ms = Date.now() - started;
    const answered = await clients.stop();
    t.log(`round ${round}: stopped in ${ms} ms; ${answered} writes answered 200`);
    t.true(ms < STOP_WITHIN_MS, `round ${round}: stopped in ${ms} ms`);
    gw = startGatewayProcess(f.configFile, undefined, undefined, { detached: true });
    await waitForEmbeddedGateway(f);
  }
});
