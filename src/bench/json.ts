// `baton bench … --json`: a run's figures as one JSON document for other tools. Each result
// carries its ratio to every baseline of its scenario measured at the same swept point
// (value / baseline's value: below 1 is better where lower is better).
import type { Scenario } from './context.ts';
import type { Result, SeriesRow } from './store.ts';
import { counterpart, sweptX } from './table.ts';

export interface JsonResult {
  system: string;
  metric: string;
  value: number;
  unit: string;
  better: 'lower' | 'higher';
  /** The swept parameter (offered load, payload size…), where the metric has one. */
  x?: number;
  spread: number;
  reps: number;
  vs: Record<string, number>;
}

export interface JsonScenario {
  run: number;
  mode: string;
  scenario: string;
  results: JsonResult[];
  /** Values over time (instances per function, say), where the scenario records them. */
  series?: Omit<SeriesRow, 'scenario'>[];
}

export function scenarioJson(run: number, mode: string, scenario: Scenario, all: Result[], allSeries: SeriesRow[] = []): JsonScenario {
  const results = all.filter((r) => r.scenario === scenario.name);
  const series = allSeries.filter((s) => s.scenario === scenario.name).map(({ scenario: _, ...s }) => s);
  return {
    run,
    mode,
    scenario: scenario.name,
    results: results.map((r) => {
      const vs: Record<string, number> = {};
      for (const b of scenario.baselines) {
        const base = b === r.system ? undefined : counterpart(results, r, b);
        if (base && base.value) vs[b] = r.value / base.value;
      }
      const x = sweptX(r);
      return {
        system: r.system, metric: r.metric, value: r.value, unit: r.unit, better: r.better,
        ...(x === undefined ? {} : { x }), spread: r.spread, reps: r.reps, vs,
      };
    }),
    ...(series.length ? { series } : {}),
  };
}

/** One scenario: its document; several: an array of them. */
export function runJson(run: number, mode: string, scenarios: Scenario[], all: Result[], series: SeriesRow[] = []): JsonScenario | JsonScenario[] {
  const docs = scenarios.map((s) => scenarioJson(run, mode, s, all, series));
  return docs.length === 1 ? docs[0]! : docs;
}
