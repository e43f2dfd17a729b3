// The bench harness's own logic, and a smoke run of every scenario (real systems, tiny
// durations). No timing is asserted: only that each figure is measured and stored.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBench, SCENARIOS } from '../src/bench/index.ts';
import { distribution, medianOf } from '../src/bench/stats.ts';
import { Store, type Result } from '../src/bench/store.ts';
import { ratioText, renderTable } from '../src/bench/table.ts';
import { runJson } from '../src/bench/json.ts';
import { dataplaneUnavailable } from './helpers/env.ts';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'baton-bench-test-'));

describe('bench harness', () => {
  it('takes percentiles from the HDR histogram', () => {
    const d = distribution([...Array(1000).keys()].map((i) => i + 1)); // 1..1000
    expect(d.count).toBe(1000);
    expect(d.p50).toBeCloseTo(500, -1);
    expect(d.p99).toBeCloseTo(990, -1);
    expect(d.min).toBe(1);
    expect(d.max).toBeCloseTo(1000, 0);
    expect(distribution([0.25, 0.25]).p50).toBeCloseTo(0.25, 2); // sub-unit values keep their resolution
  });

  it('reports the median of repetitions and their spread', () => {
    expect(medianOf([10, 12, 11])).toEqual({ median: expect.closeTo(11, 1), spread: expect.closeTo(2 / 11, 2) });
    expect(medianOf([5]).spread).toBe(0);
    expect(medianOf([0, 0, 0])).toEqual({ median: 0, spread: 0 }); // a zero figure stays zero
    expect(medianOf([1, 4, 2, 3]).median).toBe(2.5);
  });

  it('phrases ratios so the better side is marked', () => {
    expect(ratioText(5, 10, 'lower')).toBe('0.50× ✓');
    expect(ratioText(5, 10, 'higher')).toBe('0.50×');
    expect(ratioText(20, 10, 'higher')).toBe('2.00× ✓');
    expect(ratioText(1, 0, 'lower')).toBe('—');
  });

  it('stores runs, figures and distributions, and reads them back after a reopen', async () => {
    const file = path.join(tmp(), 'b.sqlite');
    const s = await Store.open(file);
    const run = s.beginRun({ scenarios: ['x'], mode: 'smoke', machine: { cpus: 2 }, git: 'abc' });
    const r: Result = { scenario: 'x', system: 'a', metric: 'm', value: 1.5, unit: 'ms', better: 'lower', spread: 0.1, reps: 3, config: { x: 4 } };
    s.addResult(run, r);
    s.addDistribution(run, { scenario: 'x', system: 'a', metric: 'lat', unit: 'µs', samples: [1, 2, 3], ...distribution([1, 2, 3]) });
    s.addNodeSample(run, { t: 0.5, cpuBusy: 40, memUsedMiB: 100, load1: 0.3 });
    s.finishRun(run, 'complete');
    s.save();
    const again = await Store.open(file);
    expect(again.runs()).toMatchObject([{ id: run, mode: 'smoke', status: 'complete', git: 'abc' }]);
    expect(again.results(run)).toEqual([r]);
    expect(again.distributions(run)[0]).toMatchObject({ metric: 'lat', samples: [1, 2, 3], count: 3 });
    expect(again.nodeSamples(run)).toHaveLength(1);
  });

  it('refuses a database in another format with a clear message', async () => {
    const file = path.join(tmp(), 'old.sqlite');
    const s = await Store.open(file);
    s.save();
    const bytes = readFileSync(file);
    bytes.writeUInt32BE(7, 60); // SQLite header: user_version
    writeFileSync(file, bytes);
    await expect(Store.open(file)).rejects.toThrow(/another format \(version 7/);
  });

  it('tables each figure with its ratio to every baseline at the same swept point', () => {
    const mk = (system: string, x: number, value: number): Result => ({
      scenario: 's', system, metric: 'p99', value, unit: 'ms', better: 'lower', spread: 0, reps: 1, config: { x, xTitle: 'load (req/s)' },
    });
    const text = renderTable('t', [mk('baton', 100, 2), mk('http', 100, 4), mk('baton', 200, 3), mk('http', 200, 3)], ['http']);
    expect(text).toMatch(/baton @ 100 req\/s .*0\.50× ✓/);
    expect(text).toMatch(/baton @ 200 req\/s .*1\.00×/);
  });

  it('gives --json one document per scenario, each figure with its ratio to each baseline at its swept point', () => {
    const mk = (scenario: string, system: string, value: number, x?: number): Result => ({
      scenario, system, metric: 'p50', value, unit: 'ms', better: 'lower', spread: 0, reps: 1, config: x === undefined ? {} : { x },
    });
    const sc = (name: string) => ({ name, title: name, baselines: ['http'], run: async () => {} });
    const all = [mk('a', 'baton', 2, 100), mk('a', 'http', 4, 100), mk('a', 'baton', 9, 200), mk('b', 'baton', 1)];
    const one = runJson(7, 'full', [sc('a')], all);
    expect(one).toEqual({
      run: 7, mode: 'full', scenario: 'a',
      results: [
        { system: 'baton', metric: 'p50', value: 2, unit: 'ms', better: 'lower', x: 100, spread: 0, reps: 1, vs: { http: 0.5 } },
        { system: 'http', metric: 'p50', value: 4, unit: 'ms', better: 'lower', x: 100, spread: 0, reps: 1, vs: {} },
        { system: 'baton', metric: 'p50', value: 9, unit: 'ms', better: 'lower', x: 200, spread: 0, reps: 1, vs: {} }, // no baseline at 200
      ],
    });
    const both = runJson(7, 'full', [sc('a'), sc('b')], all);
    expect(Array.isArray(both) && both.map((d) => [d.scenario, d.results.length])).toEqual([['a', 3], ['b', 1]]);
    expect(JSON.parse(JSON.stringify(both))).toEqual(both);
  });
});

describe.skipIf(dataplaneUnavailable)('bench scenarios (smoke run)', () => {
  it('--systems runs only the systems it names', { timeout: 120_000 }, async () => {
    const dir = tmp();
    const chain = SCENARIOS.find((s) => s.name === 'chain')!;
    const { run } = await runBench([chain], { mode: 'smoke', db: path.join(dir, 'b.sqlite'), outDir: dir, log: () => {}, systems: /^(bare fastify|baton \(2 functions, broker)/ });
    const results = (await Store.open(path.join(dir, 'b.sqlite'))).results(run);
    expect([...new Set(results.map((r) => r.system))]).toEqual(['baton (2 functions, broker data plane)', 'bare fastify hello']);
    const rps = results.find((r) => r.system === 'baton (2 functions, broker data plane)' && r.metric === 'saturated throughput')!;
    expect(rps.value).toBeGreaterThan(0);
  });

  it('runs every scenario for real and stores every figure', { timeout: 240_000 }, async () => {
    const dir = tmp();
    const lines: string[] = [];
    const { run, report } = await runBench(SCENARIOS, { mode: 'smoke', db: path.join(dir, 'b.sqlite'), outDir: dir, log: (l) => lines.push(l) });
    const store = await Store.open(path.join(dir, 'b.sqlite'));
    const results = store.results(run);
    const systems = (scenario: string) => [...new Set(results.filter((r) => r.scenario === scenario).map((r) => r.system))];
    expect(systems('hop')).toEqual(['baton (sockmap)', 'sockmap, no kernel checks', 'user-space broker', 'HTTP (Node, keep-alive)', 'C floor (sockmap)']);
    expect(systems('chain')).toEqual([
      'baton (2 functions)', 'baton, no kernel checks', 'baton (2 functions, broker data plane)', 'baton example (text-pipeline)', 'bare fastify hello',
      'HTTP chain', 'C floor (sockmap hop)',
    ]);
    const hops = store.distributions(run).filter((d) => d.scenario === 'chain' && d.metric.includes(' hop at '));
    expect(hops.length).toBe(12); // four baton systems × three distributions
    for (const d of hops) expect(d.count).toBeGreaterThan(0);
    const chainFigure = (system: string, metric: string) => results.find((r) => r.scenario === 'chain' && r.system === system && r.metric === metric);
    for (const metric of ['gateway CPU per request', 'worker CPU per hop', 'p50 hop inside the chain (Server-Timing)']) {
      expect(chainFigure('baton (2 functions)', metric)?.value).toBeGreaterThan(0);
    }
    expect(chainFigure('bare fastify hello', 'gateway CPU per request')?.value).toBeGreaterThan(0);
    expect(chainFigure('C floor (sockmap hop)', 'worker CPU per hop')?.value).toBeGreaterThan(0);
    expect(systems('payload')).toEqual(['baton', 'HTTP chain']);
    expect(systems('coldstart')).toEqual([
      'baton instance (parse)', 'baton instance, no spare (parse)', 'baton up (parse)', 'baton from zero (parse)', 'baton from zero, no spare (parse)',
      'HTTP service (fastify)', 'node floor (no code)',
    ]);
    for (const system of ['baton from zero (parse)', 'baton from zero, no spare (parse)']) {
      expect(results.find((r) => r.system === system && r.metric === 'first reply / (2 × warm reply + instance start)')!.value).toBeGreaterThan(0);
    }
    expect(systems('binding')).toEqual(['early binding', 'late binding', 'late binding, deadline shedding']);
    expect(systems('overload')).toEqual(['every request equal (FIFO)', 'classes, no admission', 'admission control']);
    const over = (system: string, metric: string) => results.find((r) => r.scenario === 'overload' && r.system === system && r.metric === metric)?.value;
    expect(over('admission control', 'critical admitted at its class')).toBeGreaterThan(0);
    expect(over('every request equal (FIFO)', 'critical goodput (within SLO)')).toBeGreaterThanOrEqual(0);
    expect(store.series(run).some((x) => x.scenario === 'overload' && x.metric === 'admit probability at 3× capacity')).toBe(true);
    expect(systems('idle')).toEqual(['baton', 'HTTP services']);
    expect(systems('scaling')).toEqual(['static', 'static (simulated)', 'reactive', 'reactive (simulated)', 'kraken', 'kraken (simulated)']);
    const scaled = (system: string, metric: string) => results.find((r) => r.scenario === 'scaling' && r.system === system && r.metric === metric)!.value;
    for (const p of ['static', 'reactive', 'kraken']) {
      expect(scaled(p, 'instance-seconds')).toBeGreaterThan(0);
      expect(scaled(`${p} (simulated)`, 'instance-seconds')).toBeGreaterThan(0);
      expect(scaled(p, 'SLO attainment')).toBeGreaterThan(0);
      // instances over time: one line per function, real and simulated
      for (const system of [p, `${p} (simulated)`]) {
        const s = store.series(run).find((x) => x.scenario === 'scaling' && x.system === system && x.metric === 'instances over time');
        expect(new Set(s?.points.map((pt) => pt.series))).toEqual(new Set(['front', 'a', 'b', 'c', 'store']));
      }
    }
    expect(lines.join('\n')).toMatch(/instances over time, kraken \(simulated\)[^\n]*\n\s+front\s+\S/);
    expect(results.find((r) => r.scenario === 'idle' && r.system === 'baton' && r.metric === 'resident memory per instance')!.value).toBeGreaterThan(0);
    const soak = (metric: string) => results.find((r) => r.scenario === 'soak' && r.metric === metric)!.value;
    expect(soak('requests')).toBeGreaterThan(0);
    expect([soak('wrong answers'), soak('slots not free after')]).toEqual([0, 0]);
    for (const r of results) expect(Number.isFinite(r.value)).toBe(true);
    expect(results.find((r) => r.scenario === 'binding' && r.metric === 'completed')!.value).toBeGreaterThan(0);
    expect(store.runs().find((r) => r.id === run)!.status).toBe('complete');
    expect(existsSync(report)).toBe(true);
    expect(readFileSync(report, 'utf8')).toMatch(/<svg[\s\S]*hop[\s\S]*binding/);
    expect(lines.join('\n')).toMatch(/vs user-space broker/);
  });
});
