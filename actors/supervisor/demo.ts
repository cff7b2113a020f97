// First-run set-up for `sgw start` without a config file: a demo replica gateway in a folder
// of its own (keys, config, the built-in disk driver, storage and cache), made once and reused.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateKeyPair } from '../../drivers/secrets.js';
import { Caps } from '../../proto/messages.js';
import { packagedFile } from '../../drivers/packaged-files.js';

export interface Demo {
  home: string;
  configFile: string;
  storageDir: string;
  cacheDir: string;
}

function writeKeyPair(dir: string, name: string): void {
  if (existsSync(join(dir, `${name}.pem`))) return;
  // 2048 bits keeps the first start quick; `sgw keys new` defaults to 4096 like Syndicate.
  const { privatePem, publicPem } = generateKeyPair(2048);
  writeFileSync(join(dir, `${name}.pem`), privatePem, { mode: 0o600 });
  writeFileSync(join(dir, `${name}.pub.pem`), publicPem);
}

export function prepareDemo(home = process.env.SGW_HOME ?? '.sgw'): Demo {
  const root = resolve(home);
  const demo: Demo = {
    home: root,
    configFile: join(root, 'config.json'),
    storageDir: join(root, 'storage'),
    cacheDir: join(root, 'cache'),
  };
  for (const d of [root, join(root, 'keys'), join(root, 'driver'), demo.storageDir]) mkdirSync(d, { recursive: true });
  writeKeyPair(join(root, 'keys'), 'rg');
  writeKeyPair(join(root, 'keys'), 'ug');
  // The driver folder re-exports the built-in disk driver; publishing bundles it whole.
  const diskDriver = packagedFile('dist/drivers/builtin/disk/driver.js');
  writeFileSync(join(root, 'driver', 'driver.mjs'), `export * from ${JSON.stringify(diskDriver)};\n`);
  writeFileSync(join(root, 'driver', 'config.json'), `${JSON.stringify({ STORAGE_DIR: demo.storageDir }, null, 2)}\n`);
  if (!existsSync(demo.configFile)) {
    const config = {
      gateway: {
        type: 'RG', id: '20', user_id: '1', volume_id: '1', block_size: 65536,
        host: '127.0.0.1', port: 8080, private_key: 'keys/rg.pem',
      },
      volume: {
        version: 1, cert_version: 1,
        gateways: [{
          id: '10', type: 'UG', user_id: '1', url: 'http://127.0.0.1:8081',
          caps: Caps.READ_DATA | Caps.WRITE_DATA | Caps.READ_METADATA | Caps.WRITE_METADATA | Caps.COORDINATE,
          public_key: 'keys/ug.pub.pem',
        }],
      },
      driver: 'driver',
      cache: { dir: 'cache', max_bytes: 1 << 30 },
    };
    writeFileSync(demo.configFile, `${JSON.stringify(config, null, 2)}\n`);
  }
  return demo;
}
