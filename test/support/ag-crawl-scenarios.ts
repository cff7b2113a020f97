// The crawl of an acquisition gateway across hosts, for a given AG driver (the built-in dataset
// driver in TypeScript or Python): REFRESH reaches the leading crawl actor and
// publishes an out-of-band change the periodic rescan has not seen yet; when the host of the
// leading crawl actor dies, a crawl actor on another host takes the lease and the crawl goes on.
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Redis } from 'ioredis';
import { keys } from '../../queues/names.js';
import { sendControlPlane } from '../../http/rg-client.js';
import { ReplyCodec, RequestType } from '../../proto/messages.js';
import {
  asAnotherHost, cleanup, liveActors, makeGatewayFolder, startGatewayProcess, waitFor, type FolderOptions, type GatewayFolder, type RunningGateway,
} from './gateway.js';
import { stat } from './ag.js';
import { testRedis } from './redis.js';

/** Registers the REFRESH and takeover scenarios for one dataset driver. */
export function agCrawlScenarios(driver: Pick<FolderOptions, 'driverSource' | 'driverFile'>): void {
  const dataset = mkdtempSync(join(tmpdir(), 'sgw-dataset-'));
  let redis: Redis;
  let f: GatewayFolder;
  const hosts: RunningGateway[] = [];

  test.before(async () => {
    redis = new Redis((await testRedis()).url);
    writeFileSync(join(dataset, 'a.txt'), 'first');
    // A rescan an hour away: only REFRESH or a new crawl can publish changes in this test.
    f = await makeGatewayFolder({ type: 'AG', ...driver, driverConfig: { DATASET_DIR: dataset, RESCAN_MS: 3_600_000 } });
  });

  test.after.always(async () => {
    await Promise.all(hosts.map((h) => h.stop()));
    redis?.disconnect();
    cleanup([f.dir, dataset]);
  });

  /** pid -> parent pid, from /proc. */
  function parentPid(pid: number): number {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  }

  async function leader(): Promise<{ instance: string; pid: number }> {
    const instance = await waitFor('a crawl lease holder', async () => redis.get(keys.crawlLease(f.volumeId, f.gatewayKey)));
    const pid = Number(await redis.hget(keys.actor(f.gatewayKey, instance), 'pid'));
    return { instance, pid };
  }

  test.serial('REFRESH publishes an out-of-band change through the leading crawl actor', async (t) => {
    hosts.push(startGatewayProcess(f.configFile, 'http,cache,driver'));
    hosts.push(startGatewayProcess(f.configFile, 'crawl', undefined, asAnotherHost(f, `crawl-${hosts.length}`)));
    await waitFor('the initial crawl', async () => stat(f.url, '/a.txt'));
    await waitFor('refresh served', async () => (await liveActors(redis, f.gatewayKey, 'driver:refresh')).length > 0);
    // A POST waits for the whole gateway (its read actor too), which may come up after the crawl.
    await waitFor('the gateway ready', async () => (await fetch(`${f.url}/ready`)).status === 200);
    writeFileSync(join(dataset, 'a.txt'), 'changed, and longer');
    writeFileSync(join(dataset, 'b.txt'), 'new');
    await new Promise((r) => setTimeout(r, 500));
    t.is((await stat(f.url, '/a.txt'))!.size, 5, 'not rescanned yet');
    t.is(await stat(f.url, '/b.txt'), null);

    const refresh = (path: string) => sendControlPlane(f.url, {
      volume_version: 1n, cert_version: 1n, volume_id: f.volumeId, coordinator_id: f.gatewayId, file_id: 0n, file_version: 0n,
      fs_path: path, user_id: 7n, src_gateway_id: f.ugId, request_type: RequestType.REFRESH,
    }, f.ugKey, null);
    for (const path of ['/a.txt', '/b.txt']) {
      const r = await refresh(path);
      t.is(r.status, 200, r.body.toString());
      t.is(ReplyCodec.decode(r.body).error_code, 0);
    }
    t.is((await stat(f.url, '/a.txt'))!.size, 'changed, and longer'.length, 'the entry was updated by the refresh');
    t.is((await stat(f.url, '/b.txt'))!.size, 3);
    rmSync(join(dataset, 'b.txt'));
    t.is(ReplyCodec.decode((await refresh('/b.txt')).body).error_code, 0);
    t.is(await stat(f.url, '/b.txt'), null, 'a refresh of a vanished file deletes its entry');
  });

  test.serial('when the leading crawl host dies, another host takes the lease and the crawl goes on', async (t) => {
    hosts.push(startGatewayProcess(f.configFile, 'crawl', undefined, asAnotherHost(f, `crawl-${hosts.length}`)));
    await waitFor('two crawl actors', async () => (await liveActors(redis, f.gatewayKey, 'crawl')).length === 2);
    const before = await leader();
    // Kill the leader's whole host, supervisor first so nothing restarts it and the lease is not
    // released: the standby must wait for the lease to expire.
    const host = parentPid(before.pid);
    process.kill(host, 'SIGKILL');
    process.kill(before.pid, 'SIGKILL');
    writeFileSync(join(dataset, 'c.txt'), 'written while nobody crawled');
    const after = await waitFor('a new lease holder', async () => {
      const holder = await redis.get(keys.crawlLease(f.volumeId, f.gatewayKey));
      return holder && holder !== before.instance ? holder : null;
    }, 15_000);
    t.not(after, before.instance);
    // The new leader crawls from the start, so it publishes what changed while nobody crawled.
    const c = await waitFor('the file written during the takeover', async () => stat(f.url, '/c.txt'));
    t.is(c.size, 'written while nobody crawled'.length);
  });
}
