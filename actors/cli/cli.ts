#!/usr/bin/env node
// The sgw command line. What only some commands need is imported by them (every actor process
// starts here: what this file loads, each of them carries).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../../proto/config/config.js';
import { withProgress } from './progress.js';
import { generateKeyPair, sealSecrets } from '../../drivers/secrets.js';
import { readPublicKey } from '../../proto/signature.js';
import { registerUgCommands } from './ug-cli.js';
import { redisTargetOf } from '../supervisor/state-redis.js';
import { configOrDemo, demoRgConfig } from '../supervisor/demo.js';

const program = new Command('sgw')
  .description('Syndicate-style storage gateways as actors over Redis queues')
  .showHelpAfterError();

program.command('start')
  .description('run a gateway: its actors as a supervised process tree (without --config: the demo, four gateways of two volumes)')
  .option('-c, --config <file>', 'gateway configuration file')
  .option('-r, --roles <list>', 'actors to run on this host: http, cache, driver, driver:<mode>, crawl (AG) (default: all)')
  .option('--demo <gateway>', 'without --config: only this gateway of the demo (rg, ug, ag, ug-sample), e.g. the demo RG alone')
  .option('--wait <seconds>', 'how long to wait for the actors to be ready before printing the summary', '30')
  .action(async (o: { config?: string; roles?: string; demo?: string; wait?: string }) => (await import('../supervisor/start.js')).startGateway(o));

program.command('actor <role>')
  .description('run one actor in the foreground (http, cache, driver:<mode>[+<mode>...], crawl); for supervisors and external managers')
  .requiredOption('-c, --config <file>', 'gateway configuration file')
  .option('--version <hash>', 'driver bundle version to run (default: the current one)')
  .option('--with-cache', 'open the chunk store in the http actor')
  .action(async (role: string, o: { config: string; version?: string; withCache?: boolean }) => (await import('../run-actor.js')).runActor(role, o));

program.command('dashboard')
  .description("serve the Bull dashboard of the config's Redis alone (no data plane), e.g. on an operator's laptop")
  .requiredOption('-c, --config <file>', 'gateway configuration file (its redis and admin sections)')
  .option('-p, --port <n>', 'port to listen on', '8090')
  .option('--host <address>', 'address to listen on', '127.0.0.1')
  .option('--insecure-local', 'serve on 127.0.0.1 without asking for the admin credential')
  .action(async (o: { config: string; port: string; host: string; insecureLocal?: boolean }) => {
    // Imported on demand: actors need not load bull-board's UI code.
    const { serveDashboard } = await import('./dashboard-server.js');
    await serveDashboard(o);
  });

program.command('status')
  .description("actors, queue depths, cache usage and Redis memory of the config's gateway, from the shared Redis")
  .option('-c, --config <file>', 'gateway configuration file (default: the demo\'s RG, $SGW_HOME/rg.json)')
  .option('--json', 'one JSON document instead of tables (for scripts)')
  .action(async (o: { config?: string; json?: boolean }) => {
    const { printStatus } = await import('./status.js');
    await printStatus(loadConfig(resolve(configOrDemo(o.config, demoRgConfig(), 'replica gateway'))), o.json ?? false);
  });

const keys = program.command('keys').description('RSA key pairs');
keys.command('new <name>')
  .description('write NAME.pem (private, PKCS#8) and NAME.pub.pem (public, SPKI)')
  .option('--bits <n>', 'modulus length', '4096')
  .option('--dir <dir>', 'folder to write to', '.')
  .option('--force', 'overwrite existing files')
  .action((name: string, o: { bits: string; dir: string; force?: boolean }) => {
    mkdirSync(resolve(o.dir), { recursive: true });
    const priv = join(resolve(o.dir), `${name}.pem`);
    const pub = join(resolve(o.dir), `${name}.pub.pem`);
    if (!o.force && (existsSync(priv) || existsSync(pub))) throw new Error(`${priv} or ${pub} exists; pass --force to overwrite`);
    const bits = Number(o.bits);
    if (!Number.isInteger(bits) || bits < 2048) throw new Error('--bits must be an integer of at least 2048');
    const { privatePem, publicPem } = generateKeyPair(bits);
    writeFileSync(priv, privatePem, { mode: 0o600 });
    writeFileSync(pub, publicPem);
    process.stdout.write(`${priv}\n${pub}\n`);
  });

program.command('secrets')
  .description('driver secrets')
  .command('seal')
  .description("encrypt a driver's secrets.json so only the gateway's private key opens it")
  .option('-c, --config <file>', "gateway config: seal for this gateway's key, in its driver folder")
  .option('--key <pem>', 'gateway public key (instead of --config)')
  .option('--in <file>', 'plain secrets (default: <driver folder>/secrets.json)')
  .option('--out <file>', 'sealed output (default: <driver folder>/secrets.sealed.json)')
  .action((o: { config?: string; key?: string; in?: string; out?: string }) => {
    const config = o.config ? loadConfig(o.config) : null;
    const key = o.key ? readPublicKey(o.key) : config?.gateway.public_key;
    if (!key) throw new Error('pass --config or --key');
    const folder = config?.driver ?? '.';
    const input = o.in ?? join(folder, 'secrets.json');
    const output = o.out ?? join(folder, 'secrets.sealed.json');
    const plain = readFileSync(input);
    JSON.parse(plain.toString()); // refuse to seal something drivers could not parse
    writeFileSync(output, sealSecrets(plain, key));
    process.stdout.write(`${output}\n`);
  });

program.command('driver')
  .description('driver bundles')
  .command('publish')
  .description("bundle the driver folder and make it the gateway's current version on every host")
  .requiredOption('-c, --config <file>', 'gateway configuration file')
  .option('--dir <folder>', 'driver folder (default: "driver" of the config)')
  .action(async (o: { config: string; dir?: string }) => {
    const config = loadConfig(o.config);
    const target = redisTargetOf(config);
    const { publishDriver } = await import('../supervisor/driver-publishing.js');
    const r = await withProgress('publishing the driver', (line) => publishDriver(config, target, o.dir ? resolve(o.dir) : config.driver, (step) => line.update(step)));
    process.stdout.write(`${r.hash} ${r.changed ? 'published' : 'unchanged'} (${r.methods.join(', ')})\n`);
  });

registerUgCommands(program);

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`sgw: ${err.message}\n`);
  process.exit(1);
});
