// REFRESH and crawl takeover across hosts with the Python dataset driver (driver.py).
import { DATASET_DRIVER_PY } from './support/gateway.js';
import { agCrawlScenarios } from './support/ag-crawl-scenarios.js';

agCrawlScenarios({ driverSource: DATASET_DRIVER_PY, driverFile: 'driver.py' });
