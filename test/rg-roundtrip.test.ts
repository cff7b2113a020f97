// End to end through real processes: sgw start (supervisor, http actor, driver actors), a real
// Redis, real HTTP and the built-in disk driver writing real files — once with the TypeScript
// driver, once with its Python twin run by the Python chassis (test/support/rg-scenarios.ts).
import { DISK_DRIVERS } from './support/gateway.js';
import { rgScenarios, storedOnDisk } from './support/rg-scenarios.js';

for (const { language, options } of DISK_DRIVERS) rgScenarios({ label: language, options, stored: storedOnDisk });
