// The simulator drives the scaler's real policies on a virtual clock: deterministic per seed,
// every request answered, and each policy behaving as it does on the gateway.
import { describe, expect, it } from 'vitest';
import { scalerSettings } from '../../src/sim/cli.ts';
import { simulate } from '../../src/sim/simulator.ts';
import { traceSchema, type TraceInput } from '../../src/sim/trace.ts';

const scaler = (policy: 'static' | 'reactive' | 'kraken') => scalerSettings(policy);

/** a → (b | c) → d, 10 ms each, 40 req/s for 2 min, the branch mix shifting from 90/10 to 10/90 at 60 s. */
const TRACE: TraceInput = {
  durationMs: 120_000,
  functions: Object.fromEntries(['a', 'b', 'c', 'd'].map((n) => [n, { exec: { kind: 'exponential', meanMs: 10 }, startMs: 100, instances: 0, maxInstances: 8, idleAfterMs: 5000 }])),
  routes: [{ chain: ['a', ['b', 'c'], 'd'], slo: 200, branches: { 1: [{ atMs: 0, p: [0.9, 0.1] }, { atMs: 60_000, p: [0.1, 0.9] }] } }],
  arrivals: [{ route: 0, rate: [{ atMs: 0, perSecond: 40 }] }],
};

describe('simulator', () => {
  it('gives the same result for the same trace and seed, and another for another seed', async () => {
    const t = traceSchema.parse(TRACE);
    const [a, b] = [await simulate(t, scaler('reactive')), await simulate(t, scaler('reactive'))];
    expect(a).toEqual(b);
    const c = await simulate(traceSchema.parse({ ...TRACE, seed: 2 }), scaler('reactive'));
    expect(c.p99Ms).not.toBe(a.p99Ms);
  });

  it('answers every request under each policy; static holds what is configured, the others start from zero', async () => {
    const staticTrace = traceSchema.parse({ ...TRACE, functions: Object.fromEntries(Object.entries(TRACE.functions).map(([n, f]) => [n, { ...f, instances: 2 }])) });
    const st = await simulate(staticTrace, scaler('static'));
    expect(st.requests).toBeGreaterThan(4000); // ≈ 40/s × 120 s
    expect(st.coldStarts).toBe(0);
    expect(st.instanceSeconds).toBeCloseTo(4 * 2 * 120, 0); // 4 functions × 2 instances, the whole trace
    for (const policy of ['reactive', 'kraken'] as const) {
      const r = await simulate(traceSchema.parse(TRACE), scaler(policy));
      expect(r.requests).toBe(st.requests); // same seed: the same arrivals, every one answered
      expect(r.coldStarts).toBeGreaterThanOrEqual(1); // from zero
      expect(r.timeline.at(-1)!.instances.every((n) => n >= 1)).toBe(true);
    }
  });

  it('a function the branch mix leaves idle is released after idleAfterMs (reactive), and the busy arm grows', async () => {
    const r = await simulate(traceSchema.parse(TRACE), scaler('reactive'));
    const at = (s: number) => r.timeline.find((p) => p.t >= s * 1000)!.instances;
    // before the shift c gets 10% of 40/s at 10 ms: one instance at most; after, b does
    expect(at(55)[1]).toBeGreaterThanOrEqual(1);
    expect(r.functions.map((f) => f.peak).every((p) => p <= 8)).toBe(true);
  });

  it('keeps the node budget: never more instances than node.memory holds', async () => {
    const t = traceSchema.parse({ ...TRACE, node: { memoryMiB: 3 * 512 } });
    const r = await simulate(t, scaler('reactive'));
    expect(Math.max(...r.timeline.map((p) => p.instances.reduce((a, b) => a + b, 0)))).toBeLessThanOrEqual(3);
  });
});
