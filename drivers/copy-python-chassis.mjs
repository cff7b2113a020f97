// Build step (after tsc): copies the Python chassis, as listed in PYTHON_CHASSIS_FILES, from
// drivers/python/ into dist/drivers/python/.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { copyPythonChassis } from '../dist/drivers/python-runtime.js';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
copyPythonChassis(join(root, 'drivers', 'python'), join(root, 'dist', 'drivers', 'python'));
