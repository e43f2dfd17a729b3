// The terminal table: per scenario, each system's figures with their spread, and each
// figure's ratio to the same figure of the scenario's baselines (measured in the same run).
import Table from 'cli-table3';
import type { Result } from './store.ts';

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

export function renderTable(title: string, results: Result[], baselines: string[]): string {
  const metrics = [...new Set(results.map((r) => r.metric))];
  const systems = [...new Set(results.map((r) => r.system))];
  const get = (system: string, metric: string) => results.find((r) => r.system === system && r.metric === metric);
  const out: string[] = [title];
  for (const metric of metrics) {
    const present = baselines.filter((b) => get(b, metric));
    const table = new Table({
      head: [metric, 'value', 'spread', ...present.map((b) => `vs ${b}`)],
      style: { head: [], border: [] },
    });
    for (const system of systems) {
      const r = get(system, metric);
      if (!r) continue;
      table.push([
        system,
        formatValue(r.value, r.unit),
        r.reps > 1 ? `±${(50 * r.spread).toFixed(0)}%` : '',
        ...present.map((b) => (b === system ? 'baseline' : ratioText(r.value, get(b, metric)!.value, r.better))),
      ]);
    }
    out.push(table.toString());
  }
  return out.join('\n');
}
