// HAProxy (Debian's) on a host of the bed in front of the RG's front hosts, health-checking
// /ready every 500 ms; its stats page (CSV) tells which servers it sends requests to.
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '../support/gateway.js';
import type { Host } from './bed.js';

export const CHECK_INTERVAL_MS = 500;
const STATS_PORT = 8404;

export interface Haproxy {
  url: string;
  child: ChildProcess;
  /** Server name → HAProxy's status of it ("UP", "DOWN", "UP 1/2", ...). */
  status(): Promise<Map<string, string>>;
  waitUp(servers: string[]): Promise<void>;
  waitDown(server: string): Promise<void>;
  output(): string;
}

export async function startHaproxy(host: Host, port: number, fronts: Host[], frontPort: number): Promise<Haproxy> {
  const cfg = join(host.dir, 'haproxy.cfg');
  writeFileSync(cfg, [
    'global', '  maxconn 2000', '',
    'defaults', '  mode http', '  timeout connect 2s', '  timeout client 60s', '  timeout server 60s',
    // Only a request that never reached a server is sent to another one: never a POST twice.
    '  retries 2', '  option redispatch', '',
    'frontend rg', `  bind ${host.address}:${port}`, '  default_backend fronts', '',
    'frontend stats', `  bind ${host.address}:${STATS_PORT}`, '  stats enable', '  stats uri /stats', '',
    'backend fronts', '  option httpchk GET /ready', '  http-check expect status 200',
    `  default-server inter ${CHECK_INTERVAL_MS} fall 2 rise 2`,
    ...fronts.map((f) => `  server ${f.name} ${f.address}:${frontPort} check`), '',
  ].join('\n'));
  const child = host.spawn('haproxy', ['-db', '-f', cfg]);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  const statsUrl = `http://${host.address}:${STATS_PORT}/stats;csv`;
  const lb: Haproxy = {
    url: `http://${host.address}:${port}`,
    child,
    output: () => out,
    async status() {
      const text = await (await fetch(statsUrl, { signal: AbortSignal.timeout(5000) })).text();
      const [header, ...rows] = text.split('\n');
      const cols = header!.replace(/^# /, '').split(',');
      const sv = cols.indexOf('svname');
      const st = cols.indexOf('status');
      const px = cols.indexOf('pxname');
      const m = new Map<string, string>();
      for (const r of rows) {
        const f = r.split(',');
        if (f[px] === 'fronts' && f[sv] !== 'BACKEND' && f[sv]) m.set(f[sv]!, f[st]!);
      }
      return m;
    },
    async waitUp(servers) {
      await waitFor(`HAProxy to see ${servers.join(', ')} up`, async () => {
        const s = await lb.status();
        return servers.every((n) => s.get(n) === 'UP');
      });
    },
    async waitDown(server) {
      await waitFor(`HAProxy to take ${server} out`, async () => (await lb.status()).get(server)?.startsWith('DOWN'));
    },
  };
  await waitFor(`haproxy on ${host.name}`, async () => {
    if (child.exitCode !== null) throw new Error(`haproxy exited: ${out}`);
    return (await lb.status()).size === fronts.length;
  });
  return lb;
}
