// The Grafana dashboard in deploy/ queries only metrics the gateway exports (names drift
// otherwise, and a panel silently shows nothing).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/gateway/metrics.ts';

const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana-dashboard.json', import.meta.url), 'utf8')) as {
  panels: { title: string; targets: { expr: string }[] }[];
};

describe('deploy/grafana-dashboard.json', () => {
  it('every metric a panel queries is one /metrics exports', () => {
    const source = { inFlight: () => 0, functions: () => [], domains: () => [], counters: () => ({ deadLetters: 0, badDescriptors: 0, strayDescriptors: 0, queuedForInstance: 0, queueFull: 0 }),
      scaler: () => ({ decisions: { up: 0, down: 0, fromZero: 0 }, functions: [] }), admission: () => ({ enabled: false, classes: {}, probabilities: [] }), dataplane: () => 'sockmap' };
    const exported = new Set(new Metrics(source, String).registry.getMetricsAsArray().map((m) => m.name));
    const queried = dashboard.panels.flatMap((p) => p.targets.flatMap((t) => t.expr.match(/baton_[a-z_]+/g) ?? []));
    expect(queried.length).toBeGreaterThan(10);
    const base = (name: string) => name.replace(/_(bucket|count|sum)$/, '');
    expect(queried.filter((n) => !exported.has(n) && !exported.has(base(n)))).toEqual([]);
  });
});
