// An S3-compatible server (s3rver) as a process of its own, for test/support/s3.ts:
// `node s3-server.js PORT DIR` serves the objects under DIR on 127.0.0.1:PORT, prints "ready",
// and exits when its parent closes its stdin (so it never outlives the test).
import S3rver from 's3rver';

const [port, directory] = process.argv.slice(2);
const server = new S3rver({ address: '127.0.0.1', port: Number(port), directory, silent: true });
await server.run();
process.stdout.write('ready\n');
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
