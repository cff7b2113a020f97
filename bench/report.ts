// The bench's results: one row per figure, printed as a table and written as JSON.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface Row {
  name: string;
  value: number;
  unit: string;
  /** The same figure measured on the baseline in this run, if there is one. */
  baseline?: number;
  baselineName?: string;
  /** Human-readable target, e.g. "ratio ≤ 2" or "≥ 5000/s". */
  target?: string;
  /** Whether the target is met; undefined for figures without a target. */
  pass?: boolean;
  note?: string;
}

export function ratio(r: Row): number | undefined {
  return r.baseline === undefined || r.baseline === 0 ? undefined : r.value / r.baseline;
}

function fmt(v: number | undefined, unit = ''): string {
  if (v === undefined || Number.isNaN(v)) return '-';
  const a = Math.abs(v);
  const s = a >= 1000 ? Math.round(v).toString() : a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
  return unit ? `${s} ${unit}` : s;
}

export function printTable(rows: Row[], out: NodeJS.WritableStream = process.stdout): void {
  const header = ['benchmark', 'value', 'baseline', 'ratio', 'target', 'result'];
  const lines = rows.map((r) => [
    r.name,
    fmt(r.value, r.unit),
    r.baseline === undefined ? '-' : `${fmt(r.baseline, r.unit)}${r.baselineName ? ` (${r.baselineName})` : ''}`,
    ratio(r) === undefined ? '-' : `${fmt(ratio(r))}×`,
    r.target ?? '-',
    r.pass === undefined ? 'info' : r.pass ? 'PASS' : 'FAIL',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 1 || i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  out.write(`${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const l of lines) out.write(`${line(l)}\n`);
  const notes = rows.filter((r) => r.note);
  if (notes.length) out.write(`\n${notes.map((r) => `* ${r.name}: ${r.note}`).join('\n')}\n`);
}

export function writeJson(file: string, data: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(data, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
}
