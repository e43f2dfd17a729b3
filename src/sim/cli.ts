// `baton simulate <trace.json>`: the trace under each chosen policy, side by side (or as JSON
// in bench's shape), with the instances over time per function as text sparklines.
import { readFileSync } from 'node:fs';
import Table from 'cli-table3';
import { chainFileSchema, type ScalerSettings } from '../chain/index.ts';
import { sparkline } from '../bench/table.ts';
import { batonError } from '../errors.ts';
import { simulate, type SimResult } from './simulator.ts';
import { traceSchema, type Trace } from './trace.ts';

export const POLICIES = ['static', 'reactive', 'kraken'] as const;
type Policy = (typeof POLICIES)[number];

/** The chain file's scaler defaults, with `overrides` (the trace's `scaler`, say) on top. */
export function scalerSettings(policy: Policy, overrides: Partial<ScalerSettings> = {}): ScalerSettings {
  const defaults = chainFileSchema.parse({ functions: { x: { module: 'x' } }, routes: [{ method: 'GET', path: '/', chain: ['x'] }] }).gateway.scaler;
  return { ...defaults, ...overrides, policy };
}

export function readTrace(file: string): Trace {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw batonError('BATON_ERR_TRACE', `${file}: ${(err as Error).message}`);
  }
  const parsed = traceSchema.safeParse(doc);
  if (!parsed.success) {
    throw batonError('BATON_ERR_TRACE', `${file}:\n${parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n')}`);
  }
  return parsed.data;
}

export function renderResults(results: SimResult[], names: string[]): string {
  const table = new Table({ head: ['policy', 'requests', 'SLO met', 'p50', 'p99', 'cold starts', 'instance-seconds', 'vs static'], style: { head: [], border: [] } });
  const base = results.find((r) => r.policy === 'static')?.instanceSeconds;
  for (const r of results) {
    table.push([
      r.policy, r.requests, `${(r.sloAttainment * 100).toFixed(2)}%`, `${r.p50Ms.toFixed(1)} ms`, `${r.p99Ms.toFixed(1)} ms`, r.coldStarts,
      r.instanceSeconds.toFixed(0), base ? `${(r.instanceSeconds / base).toFixed(2)}×` : '-',
    ]);
  }
  const lines = [table.toString()];
  for (const r of results) {
    const max = Math.max(1, ...r.timeline.flatMap((p) => p.instances));
    lines.push(`\ninstances over time, ${r.policy} (full height ${max}):`);
    names.forEach((n, fn) => lines.push(`  ${n.padEnd(16)} ${sparkline(r.timeline.map((p) => p.instances[fn]!), 60, max)}`));
  }
  return lines.join('\n');
}

/** bench's JSON shape: one document, a result per policy and metric, ratios against static. */
export function resultsJson(file: string, results: SimResult[]): unknown {
  const base = results.find((r) => r.policy === 'static');
  const metric = (r: SimResult, name: string, value: number, unit: string, baseline?: number) => ({
    system: r.policy, metric: name, value, unit, vs: baseline ? { static: value / baseline } : {},
  });
  return {
    scenario: 'simulate', trace: file,
    results: results.flatMap((r) => [
      metric(r, 'instance-seconds', r.instanceSeconds, 's', base?.instanceSeconds),
      metric(r, 'SLO attainment', r.sloAttainment * 100, '%'),
      metric(r, 'p50 latency', r.p50Ms, 'ms', base?.p50Ms),
      metric(r, 'p99 latency', r.p99Ms, 'ms', base?.p99Ms),
      metric(r, 'cold starts', r.coldStarts, 'requests'),
      metric(r, 'requests', r.requests, 'requests'),
    ]),
    timelines: Object.fromEntries(results.map((r) => [r.policy, r.timeline])),
  };
}

export async function runSimulation(file: string, policies: Policy[], json: boolean): Promise<void> {
  const trace = readTrace(file);
  const names = Object.keys(trace.functions);
  const results: SimResult[] = [];
  for (const policy of policies) {
    const t0 = performance.now();
    let shown = 0;
    const r = await simulate(trace, scalerSettings(policy), (f) => {
      if (f - shown < 0.25) return; // a line every quarter of the trace
      shown = f;
      process.stderr.write(`  ${policy}: ${(f * 100).toFixed(0)}% of the trace\n`);
    });
    process.stderr.write(`  ${policy}: ${(trace.durationMs / 1000).toFixed(0)} s of trace simulated in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    results.push(r);
  }
  console.log(json ? JSON.stringify(resultsJson(file, results), null, 2) : renderResults(results, names));
}
