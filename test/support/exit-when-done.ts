// AVA waits for a test file's process to exit by itself once its tests are done, with no time limit:
// one handle left open (a Redis client retrying a host that is gone) keeps the whole run waiting
// forever, as one CI run did after its last test passed. Once the tests are done the process gets a
// grace period to drain; then it names what kept it alive and exits.
import { registerCompletionHandler } from 'ava';

const GRACE_MS = 20_000;

registerCompletionHandler(() => {
  setTimeout(() => {
    const open = process.getActiveResourcesInfo(); // this grace timer is one of the Timeouts
    process.stderr.write(`# a test file's process was still busy ${GRACE_MS / 1000} s after its tests ended (${open.join(', ')}): exiting it\n`);
    process.exit(0);
  }, GRACE_MS).unref();
});
