// Per-request Server-Timing and the aggregated histograms, from a hop trace.
import { describe, expect, it } from 'vitest';
import { MicrosHistogram, TimingStats } from '../../src/gateway/stats.ts';
import { serverTiming } from '../../src/gateway/timing.ts';

const trace = [
  { fnId: 0, key: 1, sent: 100, bind: 100, recv: 150, start: 200, end: 1200 },
  { fnId: 1, key: 2, sent: 1250, bind: 1300, recv: 1350, start: 1400, end: 1900 },
];
const names = (id: number) => ['parse', 'render'][id]!;

describe('timing', () => {
  it('writes each hop\'s wait and run, the response time, the last delivery and the total, in ms', () => {
    expect(serverTiming(trace, names, 1950, 2100)).toBe(
      'h1-parse-wait;dur=0.100, h1-parse;dur=1.000, h2-render-wait;dur=0.150, h2-render;dur=0.500, ' +
        'response;dur=0.200, gw-wait;dur=0.150, total;dur=2.100',
    );
    expect(serverTiming([], names, 0, 500)).toBe('gw-wait;dur=0.500, total;dur=0.500');
  });

  it('aggregates per function and per request', () => {
    const stats = new TimingStats(['parse', 'render']);
    stats.record(trace, 2100);
    stats.record(trace, 4100);
    const s = stats.snapshot();
    expect(s.jct.count).toBe(2);
    expect(s.responseTime.p50).toBe(200);
    expect(s.functions.parse!.run.max).toBe(1000);
    expect(s.functions.render!.wait.p50).toBe(150);
  });

  it('keeps percentiles exact below 128 µs and within 1/64 above, up to 71 minutes', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const values = Array.from({ length: 20_000 }, () => Math.floor(Math.exp(random() * Math.log(4e9))));
    const h = new MicrosHistogram();
    for (const v of values) h.record(v);
    const sorted = [...values].sort((a, b) => a - b);
    for (const p of [1, 10, 50, 90, 99, 99.9, 100]) {
      const exact = sorted[Math.ceil((p / 100) * sorted.length) - 1]!;
      const got = h.percentile(p);
      expect(got).toBeGreaterThanOrEqual(exact);
      expect(got - exact).toBeLessThanOrEqual(exact < 128 ? 0 : exact / 64);
    }
    expect([h.count, h.max]).toEqual([values.length, sorted.at(-1)]);
    const small = new MicrosHistogram();
    for (const v of [0, 1, 1, 2, 127, -5, Number.NaN]) small.record(v);
    expect([small.percentile(50), small.percentile(100), small.count]).toEqual([1, 127, 7]);
    small.record(2 ** 40); // beyond the range: counted as its top
    expect(small.max).toBe(2 ** 32 - 1);
    expect(new MicrosHistogram().percentile(50)).toBe(0);
  });
});
