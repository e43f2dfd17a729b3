// The terminal table: per scenario, each system's figures with their spread, and each
// figure's ratio to the same figure of the scenario's baselines (measured in the same run).
import Table from 'cli-table3';
import type { Result, SeriesRow } from './store.ts';

export function formatValue(v: number, unit: string): string {
  const n = Math.abs(v) >= 1000 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
  return `${n} ${unit}`;
}

/** value / baseline, phrased so a reader sees at once which is better. */
export function ratioText(value: number, base: number, better: 'lower' | 'higher'): string {
  if (!base || !value) return '—';
  const r = value / base;
  const good = better === 'lower' ? r < 1 : r > 1;
  return `${r.toFixed(2)}× ${good ? '✓' : ''}`.trim();
}

/** The swept parameter of a result (offered load, payload size…), if its scenario has one. */
export function sweptX(r: Result): number | undefined {
  const x = (r.config as { x?: number } | null)?.x;
  return typeof x === 'number' ? x : undefined;
}

/** The same figure of `system` at the same swept point as `r`. */
export function counterpart(results: Result[], r: Result, system: string): Result | undefined {
  return results.find((x) => x.system === system && x.metric === r.metric && sweptX(x) === sweptX(r));
}

const SPARK = ' ▁▂▃▄▅▆▇█';
/** `values` as one line of block characters, scaled to `max` (default: their own), at most
 *  `width` wide (each character the most of the values it covers). */
export function sparkline(values: number[], width = 60, max = Math.max(1, ...values)): string {
  const step = Math.max(1, Math.ceil(values.length / width));
  const out: string[] = [];
  for (let i = 0; i < values.length; i += step) out.push(SPARK[Math.round((Math.max(...values.slice(i, i + step)) / max) * 8)]!);
  return `${out.join('')} (max ${Math.max(...values)})`;
}

/** Each series as sparklines: per system, a line per series (a function, say), all on the
 *  same scale so their heights compare. */
export function renderSeries(rows: SeriesRow[]): string {
  const out: string[] = [];
  for (const r of rows) {
    const max = Math.max(1, ...r.points.map((p) => p.value));
    out.push(`  ${r.metric}, ${r.system} (${r.unit}, ${Math.max(0, ...r.points.map((p) => p.t)) + 1} s, full height ${max}):`);
    for (const name of [...new Set(r.points.map((p) => p.series))]) {
      out.push(`    ${name.padEnd(16)} ${sparkline(r.points.filter((p) => p.series === name).map((p) => p.value), 60, max)}`);
    }
  }
  return out.join('\n');
}

export function renderTable(title: string, results: Result[], baselines: string[]): string {
  const out: string[] = [title];
  for (const metric of [...new Set(results.map((r) => r.metric))]) {
    const rows = results.filter((r) => r.metric === metric);
    const present = baselines.filter((b) => rows.some((r) => r.system === b));
    const table = new Table({ head: [metric, 'value', 'spread', ...present.map((b) => `vs ${b}`)], style: { head: [], border: [] } });
    for (const r of rows) {
      const x = sweptX(r);
      const xTitle = (r.config as { xTitle?: string } | null)?.xTitle ?? '';
      table.push([
        x === undefined ? r.system : `${r.system} @ ${x} ${xTitle.replace(/.*\((.*)\)/, '$1')}`,
        formatValue(r.value, r.unit),
        r.reps > 1 ? `±${(50 * r.spread).toFixed(0)}%` : '',
        ...present.map((b) => {
          const base = counterpart(results, r, b);
          return !base ? '' : b === r.system ? 'baseline' : ratioText(r.value, base.value, r.better);
        }),
      ]);
    }
    out.push(table.toString());
  }
  return out.join('\n');
}
