// Preloaded into the gateway's processes by SGW_BENCH_PROFILE=DIR (NODE_OPTIONS=--import ...;
// Node 20 refuses --cpu-prof there): records a V8 CPU profile and writes it to DIR when the
// process exits. Each SIGUSR2 also writes the profile so far and starts a new one, so that a
// benchmark can cut out the window it measures (`<role>-<pid>-<n>.cpuprofile`, n counting
// windows). Open the files in Chrome DevTools or speedscope.
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.SGW_BENCH_PROFILE;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  const role = / actor (\S+)/.exec(process.argv.join(' '))?.[1]?.replace(':', '-') ?? 'supervisor';
  let window = 0;
  const write = (restart: boolean) => {
    // A same-thread inspector session answers synchronously, so this works in an exit handler.
    session.post('Profiler.stop', (err, res) => {
      if (err) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${role}-${process.pid}-${window++}.cpuprofile`), JSON.stringify(res.profile));
    });
    if (restart) session.post('Profiler.start');
  };
  process.on('SIGUSR2', () => write(true));
  process.once('exit', () => write(false));
}
