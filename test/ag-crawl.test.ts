// REFRESH and crawl takeover across hosts with the TypeScript dataset driver (support/ag-crawl-scenarios.ts).
import { DATASET_DRIVER_JS } from './support/gateway.js';
import { agCrawlScenarios } from './support/ag-crawl-scenarios.js';

agCrawlScenarios({ driverSource: `export * from ${JSON.stringify(DATASET_DRIVER_JS)};\n` });
