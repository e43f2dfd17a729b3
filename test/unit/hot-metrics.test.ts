import { describe, expect, it } from 'vitest';
import { Counter, Histogram, Registry } from 'prom-client';
import { HotCounter, HotHistogram } from '../../src/gateway/hot-metrics.ts';

// The hot-path metrics must print exactly what prom-client's own would for the same observations.
describe('hot metrics', () => {
  const buckets = [25e-6, 1e-3, 0.5, 1, 30];
  const observations = [0, 25e-6, 26e-6, 0.0009, 1, 1.5, 31, 1e9, 0.25];

  it('a histogram prints as prom-client\'s does: cumulative buckets with +Inf, sum, count, per label set', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const hot = new HotHistogram('x_seconds', 'help text', buckets, ours);
    const ref = new Histogram({ name: 'x_seconds', help: 'help text', labelNames: ['function'], buckets, registers: [theirs] });
    for (const fn of ['a', 'b "quoted"']) {
      const child = hot.labels({ function: fn });
      for (const v of observations) {
        child.observe(v);
        ref.observe({ function: fn }, v);
      }
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('a counter prints as prom-client\'s does, labels in the order given', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const hot = new HotCounter('y_total', 'answers', ours);
    const ref = new Counter({ name: 'y_total', help: 'answers', labelNames: ['route', 'status'], registers: [theirs] });
    for (const [route, status, n] of [['POST /a', '200', 3], ['POST /a', '503', 1], ['GET /b', '200', 2]] as const) {
      const child = hot.labels({ route, status });
      for (let i = 0; i < n; i++) {
        child.inc();
        ref.inc({ route, status });
      }
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('one child per label set, and a registry refuses a second metric of the same name', () => {
    const reg = new Registry();
    const hot = new HotHistogram('z_seconds', 'h', buckets, reg);
    expect(hot.labels({ function: 'a' })).toBe(hot.labels({ function: 'a' }));
    expect(() => new HotHistogram('z_seconds', 'h', buckets, reg)).toThrow(/already been registered/);
  });
});
