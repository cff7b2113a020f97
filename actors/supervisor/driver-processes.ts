// Which driver modes each driver actor process of a host serves. `per_mode` (the default): one mode
// per process, `actors.count` of each. `shared`: every mode in one process, each on its own queue
// worker and heartbeat, calling one driver method per call as before: a host that is mostly idle
// (a laptop's demo RG) then carries one node process for its drivers instead of four, ~60-80 MiB
// of RSS each, at the price of the modes sharing one event loop and going down together when the
// driver crashes. With counts above 1 it runs as many processes as the largest count, process i
// serving the modes whose count exceeds i.
import type { GatewayConfig } from '../../proto/config/config.js';
import type { DriverMode } from '../../queues/names.js';

/** The modes of each driver actor process to run for `modes` (those of this host the driver implements). */
export function driverProcesses(actors: GatewayConfig['actors'], modes: readonly DriverMode[]): DriverMode[][] {
  if (actors.driver_processes === 'per_mode') return modes.flatMap((m) => Array.from({ length: actors.count[m] }, () => [m]));
  const processes = Math.max(0, ...modes.map((m) => actors.count[m]));
  return Array.from({ length: processes }, (_, i) => modes.filter((m) => actors.count[m] > i));
}

/** The actor role of a process serving these modes: driver:read, or driver:read+write+... */
export function driverRole(modes: readonly DriverMode[]): string {
  return `driver:${modes.join('+')}`;
}
