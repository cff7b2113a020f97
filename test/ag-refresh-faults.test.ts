// A refresh() that hangs or throws costs that REFRESH only: the signed reply carries -ETIMEDOUT
// or -EIO within the request's deadline, and the crawl actor goes on serving refreshes.
import test from 'ava';
import { Errno } from '../drivers/errno.js';
import { sendControlPlane } from '../http/rg-client.js';
import { ReplyCodec, RequestType } from '../proto/messages.js';
import { gatewayPerFile } from './support/gateway-per-file.js';

const DRIVER = `
export async function next_dataset() { return false; }
export function read(request, chunk_fd) { return 0; }
export async function refresh(request) {
  if (request.path === '/hang') await new Promise(() => {});
  if (request.path === '/throw') throw new Error('the back-end is gone');
  return 0;
}
`;

const g = gatewayPerFile({ type: 'AG', driverSource: DRIVER, driverConfig: {} }, ['driver:read', 'crawl', 'driver:refresh']);

const refresh = (path: string) => sendControlPlane(g.f.url, {
  volume_version: 1n, cert_version: 1n, volume_id: g.f.volumeId, coordinator_id: g.f.gatewayId, file_id: 0n, file_version: 0n,
  fs_path: path, user_id: 7n, src_gateway_id: g.f.ugId, request_type: RequestType.REFRESH,
}, g.f.ugKey, null);

test.serial('a refresh that never settles is answered -ETIMEDOUT within the deadline', async (t) => {
  const started = Date.now();
  const r = await refresh('/hang');
  t.is(r.status, 200, r.body.toString());
  t.is(ReplyCodec.decode(r.body).error_code, -Errno.ETIMEDOUT);
  t.true(Date.now() - started < 5000 + 1000, 'within limits.request_timeout_ms');
});

test.serial('a refresh that throws is answered -EIO', async (t) => {
  const r = await refresh('/throw');
  t.is(r.status, 200);
  t.is(ReplyCodec.decode(r.body).error_code, -Errno.EIO);
});

test.serial('the crawl actor still serves refreshes afterwards', async (t) => {
  const r = await refresh('/fine');
  t.is(r.status, 200);
  t.is(ReplyCodec.decode(r.body).error_code, 0);
});
