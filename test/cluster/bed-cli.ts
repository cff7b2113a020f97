// The multi-host bed by hand (root): `node dist/test/cluster/bed-cli.js up [host ...]` makes the
// hosts and prints how to enter each one, then waits; Ctrl-C removes it all. `down` removes every
// bed on this machine (a running test's too), `reap` only those whose owner process is gone.
import { Bed, bedOwners, reapLeftovers, removeBed } from './bed.js';

const [command, ...rest] = process.argv.slice(2);

async function up(names: string[]): Promise<void> {
  const bed = await Bed.create(names.length > 0 ? names : ['redis', 'front1', 'front2', 'worker1', 'worker2', 'ug', 'ag', 'lb']);
  process.stdout.write(`bed ${bed.owner}: bridge ${bed.bridge}, this machine is ${bed.gateway}\n`);
  for (const h of bed.hosts.values()) {
    process.stdout.write(`  ${h.name.padEnd(8)} ${h.address.padEnd(14)} nsenter -t ${h.initPid} -n -m -- sh   (TMPDIR=${h.tmp})\n`);
  }
  process.stdout.write('Ctrl-C removes the bed.\n');
  const stop = (): void => process.exit(0); // the exit hook removes it
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  setInterval(() => {}, 1 << 30);
}

switch (command) {
  case 'up':
    await up(rest);
    break;
  case 'down':
    for (const owner of bedOwners()) removeBed(owner);
    break;
  case 'reap':
    reapLeftovers();
    break;
  default:
    process.stderr.write('usage: bed-cli up [host ...] | down | reap\n');
    process.exit(2);
}
