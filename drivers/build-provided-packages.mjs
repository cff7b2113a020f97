// Build step (after tsc): pre-bundles the packages sgw provides to drivers (PROVIDED_PACKAGES of
// drivers/driver-packages.ts) into dist/drivers/provided/.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildProvidedPackages } from '../dist/drivers/driver-packages.js';

await buildProvidedPackages(dirname(dirname(fileURLToPath(import.meta.url))));
