#!/usr/bin/env node
// Run by `npm test` before anything else: the programs the tests need beyond npm packages. What is
// missing is installed from Debian's packages when this runs as root on a machine with apt-get;
// otherwise it stops at once and names the command that installs it. Every test relies on this
// list alone, never on a program another test happened to install.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

/** Each program the tests run, and the Debian package that provides it. */
const NEEDED = [
  { program: 'redis-server', package: 'redis-server', why: 'every integration test starts its own' },
  { program: 'redis-cli', package: 'redis-tools', why: 'forming test Redis clusters' },
  { program: 'python3', package: 'python3', why: 'the Python driver chassis' },
  { program: '/usr/bin/chromium', package: 'chromium', why: 'the dashboard is checked in a real browser' },
  { program: 'openssl', package: 'openssl', why: 'certificates of the TLS tests' },
  { program: 'setpriv', package: 'util-linux', why: 'the embedded Redis dies with its gateway' },
  { program: 'nsenter', package: 'util-linux', why: 'the multi-host bed runs each host\'s processes in its namespaces' },
  { program: 'ip', package: 'iproute2', why: 'the multi-host bed: network namespaces, veth pairs, a bridge' },
  { program: 'haproxy', package: 'haproxy', why: 'the load balancer in front of the cluster bed\'s front hosts' },
  { program: 'faketime', package: 'faketime', why: 'a cluster bed host whose clock runs ahead (libfaketime)' },
  { program: 'strace', package: 'strace', why: 'the disk drivers\' flushes are checked in the order the kernel saw them' },
];

function present(program) {
  if (program.startsWith('/')) {
    try {
      accessSync(program, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

const missing = NEEDED.filter((n) => !present(n.program));
if (missing.length > 0) {
  const packages = [...new Set(missing.map((m) => m.package))];
  const command = `apt-get install -y --no-install-recommends ${packages.join(' ')}`;
  for (const m of missing) process.stderr.write(`tests need ${m.program} (${m.why}): Debian package ${m.package}\n`);
  const root = process.getuid?.() === 0;
  if (!root || !present('apt-get')) {
    process.stderr.write(`install it first:\n  sudo apt-get update && sudo ${command}\n`);
    process.exit(1);
  }
  process.stderr.write(`installing: ${packages.join(' ')}\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update', '-qq'], command.split(' ').slice(1)]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (r.status !== 0) {
      process.stderr.write(`apt-get ${args.join(' ')} failed (exit ${r.status}); run it by hand:\n  apt-get update && ${command}\n`);
      process.exit(1);
    }
  }
  const still = missing.filter((m) => !present(m.program));
  if (still.length > 0) {
    process.stderr.write(`still missing after apt-get: ${still.map((m) => m.program).join(', ')}\n`);
    process.exit(1);
  }
}
