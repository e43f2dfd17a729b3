// The scaling policies and the scaler's rules on crafted load, on a virtual clock.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { FunctionSpec } from '../../src/chain/index.ts';
import type { FunctionLoad, ScalingPolicy } from '../../src/scaler/policy.ts';
import { KrakenPolicy } from '../../src/scaler/kraken.ts';
import { scalerSettings } from '../../src/sim/cli.ts';
import { ReactivePolicy } from '../../src/scaler/reactive.ts';
import { Scaler, type Scalable } from '../../src/scaler/scaler.ts';
import { StaticPolicy } from '../../src/scaler/static.ts';

const KPA = { stableWindowMs: 60_000, panicWindowMs: 6000, panicThreshold: 2 };
const load = (inFlight: number, instances: number, target = 1): FunctionLoad => ({
  fnId: 0, name: 'f', inFlight, instances, minInstances: 0, maxInstances: 100, target, concurrency: 1,
});

/** Feeds `inFlight` once a second from `from` to `to` (ms) and returns the last decision. */
function feed(p: ReactivePolicy, from: number, to: number, inFlight: number, instances: number, target = 1) {
  let last;
  for (let t = from; t <= to; t += 1000) {
    p.observe(t, [load(inFlight, instances, target)]);
    last = p.decide(t, [load(inFlight, instances, target)])[0]!;
  }
  return last!;
}

describe('reactive policy (KPA)', () => {
  it('asks for the stable window\'s average over the target, rounded up', () => {
    const p = new ReactivePolicy(KPA);
    expect(feed(p, 0, 60_000, 3.5, 4).want).toBe(4);
    expect(feed(new ReactivePolicy(KPA), 0, 60_000, 3.5, 4, 0.7).want).toBe(5);
  });

  it('panics when the panic window asks for twice the instances: follows it up at once, never down until a stable window has passed', () => {
    const p = new ReactivePolicy(KPA);
    feed(p, 0, 60_000, 2, 2); // steady at 2
    const burst = feed(p, 61_000, 64_000, 10, 2); // the 6 s window now averages well above 4
    expect(burst.reason).toMatch(/^panic/);
    expect(burst.want).toBeGreaterThanOrEqual(4);
    const peak = feed(p, 65_000, 70_000, 10, 10).want;
    expect(peak).toBe(10);
    // the burst ends: still panicking, so no scale-down for a stable window after the last panic
    const after = feed(p, 71_000, 100_000, 1, 10);
    expect(after.reason).toMatch(/^panic/);
    expect(after.want).toBe(10);
    const calm = feed(p, 101_000, 200_000, 1, 10);
    expect(calm.reason).not.toMatch(/^panic/);
    expect(calm.want).toBe(1);
  });

  it('needs no instance once a whole stable window saw nothing in flight', () => {
    const p = new ReactivePolicy(KPA);
    feed(p, 0, 10_000, 1, 1);
    expect(feed(p, 11_000, 60_000, 0, 1).want).toBe(1); // the window still holds the load
    expect(feed(p, 61_000, 71_000, 0, 1).want).toBe(0);
  });
});

describe('kraken policy', () => {
  // route 0: a → (b | c) → d, functions 0..3
  const chains = [{ id: 0, domain: 0, steps: [[0], [1, 2], [3]] }];
  const settings = scalerSettings('kraken', { tickMs: 1000 }); // the chain file's defaults
  const kraken = (slo?: number) => new KrakenPolicy(chains, () => slo, settings);
  const loads = (inFlight = 0, instances = 1) => [0, 1, 2, 3].map((fnId) => ({ ...load(inFlight, instances), fnId, name: `f${fnId}` }));
  /** A share pB of the requests takes b, spread evenly (request i when frac(i·pB) < pB), the
   *  rest c; every hop runs 10 ms. */
  const requests = (p: KrakenPolicy, n: number, pB: number, from = 0) => {
    for (let i = from; i < from + n; i++) {
      const arm = (i * pB) % 1 < pB - 1e-9 ? 1 : 2;
      p.observeRequest(0, 0, [0, arm, 3].map((fnId) => ({ fnId, waitMs: 0.1, runMs: 10 })));
    }
  };

  it('knows the DAG: Connectivity (descendants / functions) and Commonality (paths through / paths)', () => {
    const p = kraken();
    expect(p.shape(0, 0)).toMatchObject({ connectivity: 3 / 4, commonality: 1 });
    expect(p.shape(0, 1)).toMatchObject({ connectivity: 1 / 4, commonality: 1 / 2 });
    expect(p.shape(0, 3)).toMatchObject({ connectivity: 0, commonality: 1 });
  });

  it('learns the branch mix from answered requests, and follows it when it shifts', () => {
    const p = kraken();
    requests(p, 400, 0.3);
    expect(p.shape(0, 1).p).toBeCloseTo(0.3, 1);
    expect(p.shape(0, 2).p).toBeCloseTo(0.7, 1);
    expect(p.shape(0, 0).p).toBeCloseTo(1, 9);
    expect(p.shape(0, 3).p).toBeCloseTo(1, 9);
    requests(p, 200, 0.8, 400); // the mix shifts
    expect(p.shape(0, 1).p).toBeCloseTo(0.8, 1);
    expect(p.shape(0, 2).p).toBeCloseTo(0.2, 1);
  });

  it('provisions ahead from the predicted rate, the weights and the batch a stage SLO allows', () => {
    const p = kraken(315); // 315 ms end to end, three 10 ms stages: 105 ms each, batches of 10
    p.decide(0, loads());
    requests(p, 2000, 0.5); // 2000 requests in the first 1 s window
    const d = p.decide(1000, loads());
    expect(p.predictedRate(0)).toBe(2000);
    // a: 2000 req/s × w (1 + 0.5·¾ + 0.5·1 = 1.875) × 0.105 s / 10 = 39.4 → 40
    expect(d[0]!.want).toBe(40);
    // b: P ½, w ½·(1 + 0.5·¼ + 0.5·½) = 0.6875 → 2000 × 0.6875 × 0.105 / 10 = 14.4 → 15
    expect(d[1]!.want).toBe(15);
    expect(d[3]!.want).toBe(32); // d: w = 1 + 0 + 0.5 = 1.5 → 31.5 → 32
    expect(d[0]!.reason).toMatch(/^kraken: 2000\.0 req\/s × w 1\.88 \(P 1\.00\), stage 105\.0 ms, batch 10/);
    // the next window sees 1940 (within 3 Poisson deviations, √2000 ≈ 45): the EWMA predicts between
    requests(p, 1940, 0.5, 2000);
    p.decide(2000, loads());
    expect(p.predictedRate(0)).toBe(1970);
  });

  it('restarts the prediction from a window whose arrivals are implausible under it (a burst\'s start or end)', () => {
    const rates = (sigmas: number) => {
      const p = new KrakenPolicy(chains, () => 315, scalerSettings('kraken', { tickMs: 1000, changeSigmas: sigmas }));
      p.decide(0, loads());
      const seen: number[] = [];
      let t = 0;
      for (const n of [60, 66, 0, 0, 60]) {
        requests(p, n, 0.5, t * 100);
        p.decide(++t * 1000, loads());
        seen.push(p.predictedRate(0));
      }
      return seen;
    };
    // 66 after 60: within 3 × √60 ≈ 23, the EWMA; then 0 (63 predicted) and back to 60 from 0
    expect(rates(3)).toEqual([60, 63, 0, 0, 60]);
    // without it, the EWMA halves its way down and back up
    expect(rates(0)).toEqual([60, 63, 31.5, 15.75, 37.875]);
  });

  it('predicts once per window of at least predictWindowMs, however often it decides', () => {
    const p = new KrakenPolicy(chains, () => 315, scalerSettings('kraken', { tickMs: 250, predictWindowMs: 1000 }));
    p.decide(0, loads());
    requests(p, 500, 0.5);
    for (const t of [250, 500, 750]) p.decide(t, loads());
    expect(p.predictedRate(0)).toBe(0); // no window has closed yet
    requests(p, 500, 0.5, 500);
    p.decide(1000, loads());
    expect(p.predictedRate(0)).toBe(1000); // the 1000 arrivals of the whole second
  });

  it('wants no instance of a function expected less than half a time per window (the EWMA alone would hold one for half a minute)', () => {
    const p = kraken(315);
    p.decide(0, loads());
    requests(p, 8, 0.5); // 8 req/s: b and c about 4 each
    expect(p.decide(1000, loads()).map((d) => d.want)).toEqual([1, 1, 1, 1]);
    // no arrivals since: the prediction halves each window, 8 → 4 → 2 → 1 → 0.5 → 0.25
    const wants = [2000, 3000, 4000, 5000, 6000].map((t) => p.decide(t, loads()).map((d) => d.want));
    expect(wants.at(-1)).toEqual([0, 0, 0, 0]);
    expect(p.decide(6000, loads())[0]!.reason).toMatch(/^kraken: 0\.3 req\/s/);
    // b and c (P ½) reach the floor a window before a and d
    expect(wants[3]).toEqual([1, 0, 0, 1]);
  });

  it('reactive pass: queueing beyond the stage\'s slack adds instances for what waits', () => {
    const p = kraken(300);
    p.decide(0, loads());
    for (let i = 0; i < 50; i++) p.observeRequest(0, 0, [0, 1, 3].map((fnId) => ({ fnId, waitMs: fnId === 3 ? 400 : 0.1, runMs: 10 })));
    // 30 wait at d, none elsewhere; one instance each
    const d = p.decide(500, loads(1, 1).map((l) => (l.fnId === 3 ? { ...l, inFlight: 31 } : l)));
    // d's stage: 300 ms × 10 / (10 + 10 + P(c)·10 + 10), just under 100 ms: batch 9, ⌈30 / 9⌉ = 4 more
    expect(d[3]!.reason).toMatch(/overloaded \(queueing 400\.0 ms > slack \d+\.\d ms\): \+4$/);
    expect(d[3]!.want).toBe(5);
    expect(d[0]!.reason).not.toMatch(/overloaded/);
  });

  it('reactive pass: a burst shows in the queue before the hops\' average, and counts at once', () => {
    const p = kraken(300);
    p.decide(0, loads());
    for (let i = 0; i < 50; i++) p.observeRequest(0, 0, [0, 1, 3].map((fnId) => ({ fnId, waitMs: 0.1, runMs: 10 })));
    // 40 wait at a: 40 × 10 ms / 1 instance = 400 ms ahead of the last one, over a's slack
    const d = p.decide(500, loads(1, 1).map((l) => (l.fnId === 0 ? { ...l, inFlight: 41 } : l)));
    expect(d[0]!.reason).toMatch(/overloaded \(queueing 400\.0 ms > slack \d+\.\d ms\): \+5$/);
    expect(d[3]!.reason).not.toMatch(/overloaded/);
  });
});

describe('scaler', () => {
  const spec = (over: Partial<FunctionSpec> = {}): FunctionSpec => ({
    id: 0, name: 'f', domain: 0, label: 'f', module: '/x.ts', instances: 0, minInstances: 0, maxInstances: 4, spares: 0, warm: 0,
    idleAfterMs: 30_000, target: 1, concurrency: 1, binding: 'late', queueDepth: 8, env: {}, memory: 1, pids: 16, spinUs: 0, keys: [1, 2, 3, 4], calls: [],
    ...over,
  });
  /** A policy that asks for what the test says the load needs. */
  const scripted = () => {
    const p = { name: 'scripted', need: 0, observe() {}, decide: () => [{ fnId: 0, want: p.need, reason: `needs ${p.need}` }] };
    return p;
  };
  function rig(over: Partial<FunctionSpec> = {}, policy: ScalingPolicy = scripted()) {
    const clock = { t: 0 };
    const state = { inFlight: 0, instances: over.instances ?? 0, asked: [] as number[] };
    const runtime: Scalable = {
      inFlight: () => state.inFlight,
      instances: () => state.instances,
      scale: async (_fn, n) => {
        state.asked.push(n);
        state.instances = n;
      },
      room: () => 100,
      memoryOf: () => 1,
    };
    const scaler = new Scaler(policy, [spec(over)], { sampleMs: 1000, tickMs: 1000 }, runtime, pino({ level: 'silent' }), () => clock.t);
    /** Advances the clock second by second with `inFlight` requests at the function. */
    const run = async (seconds: number, inFlight: number) => {
      state.inFlight = inFlight;
      if ('need' in policy) (policy as { need: number }).need = inFlight;
      for (let i = 0; i < seconds; i++) {
        clock.t += 1000;
        scaler.sample();
        scaler.tick();
        await Promise.resolve();
        await Promise.resolve();
      }
    };
    return { scaler, state, run };
  }

  it('starts an instance for a request that finds none, under any policy (scale from zero)', async () => {
    const { scaler, state } = rig({}, new StaticPolicy());
    scaler.wake(0);
    await Promise.resolve();
    expect(state.asked).toEqual([1]);
    scaler.wake(0); // one runs now: nothing more
    await Promise.resolve();
    expect(state.asked).toEqual([1]);
    expect(scaler.decisions.fromZero).toBe(1);
  });

  it('the sampler starts one for work that waits with no instance (the safety net of a missed wake-up)', async () => {
    const { state, run } = rig();
    await run(1, 2);
    expect(state.asked[0]).toBe(1);
  });

  it('releases an instance only after the need stayed lower for idleAfterMs, then to zero', async () => {
    const { state, run, scaler } = rig({ idleAfterMs: 30_000, instances: 0 });
    await run(10, 3);
    expect(state.instances).toBe(3);
    await run(20, 1); // fewer would do, for 20 s: nothing released yet
    expect(state.instances).toBe(3);
    expect(scaler.status().functions[0]!.releaseAt).not.toBeNull();
    await run(9, 0);
    expect(state.instances).toBe(3);
    await run(1, 0); // 30 s after three were last needed (t = 10): to the most needed since (1)
    expect(state.asked).toEqual([1, 3, 1]);
    await run(19, 0);
    expect(state.instances).toBe(1);
    await run(1, 0); // 30 s after one was last needed (t = 30), not 30 s after the first release
    expect(state.instances).toBe(0);
  });

  it('steps down as the needs age out of the last idleAfterMs', async () => {
    const { state, run, scaler } = rig({ idleAfterMs: 10_000, instances: 4, maxInstances: 8 });
    await run(5, 4); // t = 1..5
    await run(3, 2); // t = 6..8
    await run(3, 1); // t = 9..11
    await run(3, 0); // t = 12..14: four last needed at 5 → release at 15
    expect(state.instances).toBe(4);
    await run(1, 0);
    expect(state.asked).toEqual([2]);
    await run(2, 0); // t = 16..17
    expect(state.asked).toEqual([2]);
    await run(1, 0); // t = 18: two last needed at 8
    await run(3, 0); // t = 21: one last needed at 11
    expect(state.asked).toEqual([2, 1, 0]);
    scaler.wake(0); // t = 21: started for a request though no decision needs it
    await Promise.resolve();
    await run(9, 0); // its hold-down starts with it: not released at once
    expect(state.instances).toBe(1);
    await run(1, 0);
    expect(state.asked).toEqual([2, 1, 0, 1, 0]);
  });

  it('a load that comes back during the hold-down cancels the release', async () => {
    const { state, run } = rig({ idleAfterMs: 30_000, instances: 2 });
    await run(10, 2);
    await run(25, 0);
    await run(1, 2); // back before the 30 s are up
    await run(40, 2);
    expect(state.instances).toBe(2);
    expect(state.asked).toEqual([]);
  });

  it('keeps its warm reserve above the need and stays within min and max', async () => {
    const { state, run } = rig({ warm: 1, idleAfterMs: 0, minInstances: 0, maxInstances: 3 });
    await run(5, 1);
    expect(state.instances).toBe(2); // 1 needed + 1 warm
    await run(5, 0);
    expect(state.instances).toBe(1); // nothing needed: the warm one stays
    await run(10, 50);
    expect(state.instances).toBe(3); // the max
  });
});
