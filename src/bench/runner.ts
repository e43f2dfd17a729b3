// Runs scenarios in order, one process tree at a time: records every figure in the
// database, samples the node's CPU and memory throughout, prints each scenario's table,
// and writes the HTML report.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import cliProgress from 'cli-progress';
import type { BenchContext, BenchMode, Scenario } from './context.ts';
import { gitRevision, machineInfo, sampleNode } from './machine.ts';
import { writeReport } from './report.ts';
import { medianOf, distribution } from './stats.ts';
import { Store, type Result, type SeriesRow } from './store.ts';
import { renderSeries, renderTable } from './table.ts';

export interface RunOptions {
  mode: BenchMode;
  db: string;
  outDir: string;
  log: (line: string) => void;
  /** Only the systems whose names match (scenarios that support it: chain, hop); every one if unset. */
  systems?: RegExp;
}

export async function runBench(scenarios: Scenario[], opts: RunOptions): Promise<{ run: number; report: string; results: Result[]; series: SeriesRow[] }> {
  const store = await Store.open(opts.db);
  const run = store.beginRun({ scenarios: scenarios.map((s) => s.name), mode: opts.mode, machine: machineInfo(), git: gitRevision() });
  store.save();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'baton-bench-'));
  const stopSampling = sampleNode(500, (s) => store.addNodeSample(run, s));
  const bar = new cliProgress.SingleBar(
    { format: '  {bar} {percentage}% | {step}', hideCursor: true, clearOnComplete: true, stopOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  const tty = process.stderr.isTTY;
  let status = 'failed';
  try {
    for (const sc of scenarios) {
      opts.log(`\n▶ ${sc.name}: ${sc.title}`);
      let started = false;
      let lastStep = '';
      const ctx: BenchContext = {
        mode: opts.mode,
        pick: (by) => by[opts.mode],
        reps: opts.mode === 'full' ? 3 : 1,
        tmp,
        wants: (system) => !opts.systems || opts.systems.test(system),
        progress(done, total, step) {
          if (tty) {
            if (!started) bar.start(total, done, { step });
            started = true;
            bar.setTotal(total);
            bar.update(done, { step });
          } else if (step !== lastStep) {
            opts.log(`  [${done}/${total}] ${step}`);
          }
          lastStep = step;
        },
        record: {
          metric(system, metric, values, unit, better, config) {
            const { median, spread } = medianOf(values);
            store.addResult(run, { scenario: sc.name, system, metric, value: median, unit, better, spread, reps: values.length, config });
          },
          distribution(system, metric, samples, unit) {
            const d = distribution(samples);
            store.addDistribution(run, { scenario: sc.name, system, metric, unit, samples, ...d });
            return d;
          },
          series(system, metric, points, unit) {
            store.addSeries(run, { scenario: sc.name, system, metric, unit, points });
          },
        },
      };
      const t0 = performance.now();
      try {
        await sc.run(ctx);
      } finally {
        if (started) bar.stop();
      }
      store.save();
      const results = store.results(run).filter((r) => r.scenario === sc.name);
      opts.log(renderTable(`  ${sc.name} (${((performance.now() - t0) / 1000).toFixed(0)} s)`, results, sc.baselines));
      const series = store.series(run).filter((r) => r.scenario === sc.name);
      if (series.length) opts.log(renderSeries(series));
    }
    status = 'complete';
  } finally {
    stopSampling();
    store.finishRun(run, status);
    store.save();
    rmSync(tmp, { recursive: true, force: true });
  }
  const report = await writeReport(store, run, scenarios, opts.outDir);
  return { run, report, results: store.results(run), series: store.series(run) };
}
