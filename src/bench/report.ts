// The HTML report of one run: per scenario, the distributions side by side, each figure
// per system (a line where the scenario sweeps a parameter, such as payload size or
// offered load), values over time (instances per function), the table of ratios, and the node's CPU and memory over the run.
// Charts are vega-lite specs rendered to inline SVG, so the file stands alone.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { Scenario } from './context.ts';
import type { Result, Store } from './store.ts';
import { counterpart, formatValue, ratioText, sweptX as swept } from './table.ts';

type Spec = vl.TopLevelSpec;

async function svg(spec: Spec): Promise<string> {
  const config = { font: 'sans-serif', axis: { labelLimit: 260 }, legend: { labelLimit: 260 } };
  const compiled = vl.compile({ ...spec, config: { ...config, ...(spec as { config?: object }).config } } as Spec).spec;
  return new vega.View(vega.parse(compiled), { renderer: 'none' }).toSVG();
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

async function scenarioCharts(store: Store, run: number, sc: Scenario): Promise<string[]> {
  const charts: string[] = [];
  const dists = store.distributions(run).filter((d) => d.scenario === sc.name);
  for (const metric of [...new Set(dists.map((d) => d.metric))]) {
    const values = dists.filter((d) => d.metric === metric).flatMap((d) => d.samples.map((v) => ({ system: d.system, v })));
    const unit = dists.find((d) => d.metric === metric)!.unit;
    charts.push(
      await svg({
        title: `${metric} (${unit}), distribution per system`,
        width: 520,
        height: { step: 28 },
        data: { values },
        mark: { type: 'boxplot', extent: 'min-max', size: 18 },
        encoding: {
          y: { field: 'system', type: 'nominal', title: null },
          x: { field: 'v', type: 'quantitative', title: unit, scale: { type: 'log' } },
          color: { field: 'system', type: 'nominal', legend: null },
        },
      }),
    );
  }
  for (const s of store.series(run).filter((r) => r.scenario === sc.name)) {
    charts.push(
      await svg({
        title: `${s.metric}, ${s.system} (${s.unit})`,
        width: 520,
        height: 160,
        data: { values: s.points },
        mark: { type: 'line', interpolate: 'step-after' },
        encoding: {
          x: { field: 't', type: 'quantitative', title: 'seconds' },
          y: { field: 'value', type: 'quantitative', title: s.unit },
          color: { field: 'series', type: 'nominal', title: null },
        },
      }),
    );
  }
  const results = store.results(run).filter((r) => r.scenario === sc.name);
  for (const metric of [...new Set(results.map((r) => r.metric))]) {
    const rows = results.filter((r) => r.metric === metric);
    const unit = rows[0]!.unit;
    const xs = rows.map(swept);
    if (xs.every((x) => x !== undefined) && new Set(xs).size > 1) {
      const xTitle = (rows[0]!.config as { xTitle?: string } | null)?.xTitle ?? 'x';
      charts.push(
        await svg({
          title: `${metric} (${unit}) vs ${xTitle}`,
          width: 520,
          height: 260,
          data: { values: rows.map((r) => ({ system: r.system, x: swept(r), v: r.value })) },
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'x', type: 'quantitative', title: xTitle, scale: { type: 'log' } },
            // latencies span orders of magnitude once a system passes its capacity
            y: { field: 'v', type: 'quantitative', title: unit, scale: { type: /s$/.test(unit) ? 'log' : 'linear' } },
            color: { field: 'system', type: 'nominal' },
          },
        }),
      );
    } else {
      charts.push(
        await svg({
          title: `${metric} (${unit}, ${rows[0]!.better} is better)`,
          width: 520,
          height: { step: 26 },
          data: { values: rows.map((r) => ({ system: r.system, v: r.value, label: formatValue(r.value, unit) })) },
          layer: [
            { mark: 'bar', encoding: { color: { field: 'system', type: 'nominal', legend: null } } },
            { mark: { type: 'text', align: 'left', dx: 4 }, encoding: { text: { field: 'label' } } },
          ],
          encoding: {
            y: { field: 'system', type: 'nominal', title: null },
            x: { field: 'v', type: 'quantitative', title: unit },
          },
        }),
      );
    }
  }
  return charts;
}

function ratioTable(results: Result[], baselines: string[]): string {
  const head = `<tr><th>system</th><th>figure</th><th>value</th>${baselines.map((b) => `<th>vs ${esc(b)}</th>`).join('')}</tr>`;
  const rows = results.map((r) => {
    const cells = baselines.map((b) => {
      const base = counterpart(results, r, b);
      return `<td>${base ? (b === r.system ? 'baseline' : ratioText(r.value, base.value, r.better)) : ''}</td>`;
    });
    const spread = r.reps > 1 ? ` ±${(50 * r.spread).toFixed(0)}%` : '';
    const at = swept(r) === undefined ? '' : ` @ ${swept(r)}`;
    return `<tr><td>${esc(r.system + at)}</td><td>${esc(r.metric)}</td><td>${formatValue(r.value, r.unit)}${spread}</td>${cells.join('')}</tr>`;
  });
  return `<table>${head}${rows.join('')}</table>`;
}

export async function writeReport(store: Store, run: number, scenarios: Scenario[], outDir: string): Promise<string> {
  const info = store.runs().find((r) => r.id === run)!;
  const sections: string[] = [];
  for (const sc of scenarios) {
    const results = store.results(run).filter((r) => r.scenario === sc.name);
    if (!results.length) continue;
    const charts = await scenarioCharts(store, run, sc);
    sections.push(`<section><h2>${esc(sc.name)}: ${esc(sc.title)}</h2>
      <div class="charts">${charts.map((c) => `<figure>${c}</figure>`).join('')}</div>
      ${ratioTable(results, sc.baselines)}</section>`);
  }
  const samples = store.nodeSamples(run);
  const node = samples.length
    ? await svg({
        title: 'node CPU busy (%) and memory used (MiB) during the run',
        width: 1080,
        height: 160,
        data: { values: samples.flatMap((s) => [{ t: s.t, v: s.cpu_busy, what: 'CPU busy %' }, { t: s.t, v: s.mem_used_mib, what: 'memory MiB' }]) },
        mark: 'line',
        encoding: {
          x: { field: 't', type: 'quantitative', title: 'seconds' },
          y: { field: 'v', type: 'quantitative', title: null },
          row: { field: 'what', type: 'nominal', title: null },
        },
        resolve: { scale: { y: 'independent' } },
      } as Spec)
    : '';
  const html = `<!doctype html><meta charset="utf-8"><title>baton bench run ${run}</title>
<style>body{font:14px sans-serif;margin:24px;max-width:1200px}table{border-collapse:collapse;margin:8px 0 24px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}th{background:#f4f4f4}.charts{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0}section{border-top:2px solid #333;margin-top:24px}</style>
<h1>baton bench — run ${run}</h1>
<p>${esc(info.started)} · ${esc(info.mode)} · git ${esc(info.git)} · ${esc(info.machine)}</p>
<p>Every ratio compares a figure with the same figure of a baseline measured in this run on this machine
(✓: better than that baseline). Spread: ± half the range over repetitions.</p>
${sections.join('\n')}
<section><h2>node</h2>${node}</section>`;
  mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `report-${run}.html`);
  writeFileSync(file, html);
  return file;
}
