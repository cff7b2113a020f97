// Where sgw's Python driver chassis lives, which interpreter runs it, and listing a driver.py's
// methods without running it. PYTHON_CHASSIS_FILES is the one list of the chassis' files: the
// build copies them into dist/, and a single-executable build embeds them.
import { execFile } from 'node:child_process';
import { packagedFile } from './packaged-files.js';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const PYTHON_CHASSIS_FILES = [
  'chassis.py',
  'sgw_pipe.py',
  'list_methods.py',
  'syndicate/__init__.py',
  'syndicate/util/__init__.py',
  'syndicate/util/gateway.py',
  'syndicate/protobufs/__init__.py',
  'syndicate/protobufs/sg_pb2.py',
] as const;

/**
 * The folder holding PYTHON_CHASSIS_FILES at run time: dist/drivers/python/ of the package (an
 * embedded folder inside the single executable); SGW_PYTHON_CHASSIS overrides.
 */
export function pythonChassisDir(): string {
  return process.env.SGW_PYTHON_CHASSIS ?? packagedFile('dist/drivers/python');
}

/** The Python 3 interpreter: SGW_PYTHON, else python3 from the PATH. */
export function pythonCommand(): string {
  return process.env.SGW_PYTHON ?? 'python3';
}

/**
 * The interpreter's own executable (sys.executable), asked once: launchers such as pyenv's shims
 * cost more than Python's own start, and a pool starts several chassis. Falls back to the command.
 */
export function resolvePythonInterpreter(timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve) => {
    execFile(pythonCommand(), ['-c', 'import sys; print(sys.executable)'], { timeout: timeoutMs }, (err, stdout) => {
      const path = stdout?.trim();
      resolve(!err && path ? path : pythonCommand());
    });
  });
}

/** Interpreter flags: -B keeps the install tree free of __pycache__ (it may be read-only). */
export const PYTHON_FLAGS = ['-B'] as const;

/** Copies the chassis files from the source tree into dist/ (drivers/copy-python-chassis.mjs, run by `npm run build`). */
export function copyPythonChassis(fromDir: string, toDir: string): void {
  for (const file of PYTHON_CHASSIS_FILES) {
    mkdirSync(dirname(join(toDir, file)), { recursive: true });
    copyFileSync(join(fromDir, file), join(toDir, file));
  }
}

/** A driver.py that is not valid Python (or Python is missing) cannot be published. */
export class PythonSourceError extends Error {
  override name = 'PythonSourceError';
}

/**
 * The names of the functions driver.py defines at its top level, sorted, found by parsing it
 * (Python's ast module): publishing never runs a driver's code.
 */
export function listPythonMethods(source: string, timeoutMs = 30_000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = execFile(pythonCommand(), [...PYTHON_FLAGS, join(pythonChassisDir(), 'list_methods.py')], { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(stdout);
      } catch {
        const why = (err as NodeJS.ErrnoException | null)?.code === 'ENOENT'
          ? `${pythonCommand()} not found: install Python 3 or set SGW_PYTHON`
          : `cannot list the methods of driver.py: ${err?.message ?? 'no answer'}`;
        return reject(new PythonSourceError(why));
      }
      if (Array.isArray(parsed) && parsed.every((n) => typeof n === 'string')) return resolve(parsed);
      reject(new PythonSourceError((parsed as { error?: string }).error ?? 'cannot list the methods of driver.py'));
    });
    child.stdin?.on('error', () => {}); // an interpreter that died early is reported above
    child.stdin?.end(source);
  });
}
