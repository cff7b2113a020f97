// The AG scenarios of test/ag.test.ts with the Python twin of the dataset driver (driver.py).
import { DATASET_DRIVER_PY } from './support/gateway.js';
import { agScenarios } from './support/ag-scenarios.js';

agScenarios({ driverSource: DATASET_DRIVER_PY, driverFile: 'driver.py' });
