// scaling: the scaler's policies on the real gateway, and the simulator on the same workload.
// A dynamic DAG — front → (short | long) → store, front picking the arm at run time from the
// request — under Poisson arrivals whose rate and branch mix shift in three phases, the last one
// bursty (on/off). Per policy (static sized for the peak, reactive, kraken): instance-seconds
// (instances starting, serving or draining, sampled from the admin status every 250 ms), SLO
// attainment (client latency within the route's slo), requests that waited on a cold start,
// p50/p99; then the same workload through `simulate` with the measured start time, and how far
// the simulator is from the real run.
import type { ChainFileInput } from '../../chain/index.ts';
import { simulate } from '../../sim/simulator.ts';
import { scalerSettings } from '../../sim/cli.ts';
import { traceSchema } from '../../sim/trace.ts';
import type { BenchContext, Scenario } from '../context.ts';
import { startBaton, BENCH_FUNCTIONS } from '../systems/baton.ts';

const POLICIES = ['static', 'reactive', 'kraken'] as const;
const SLO_MS = 500;
/** Handler time per stage, ms. */
const STAGES = { front: 2, short: 5, long: 40, store: 2 } as const;
/** Phases: rate (req/s), share of long requests, and bursts (on, off ms) or steady. */
const PHASES = [
  { rate: 20, long: 0.1 },
  { rate: 40, long: 0.7 },
  { rate: 60, long: 0.7, burst: { onMs: 5000, offMs: 10_000 } },
];
/** What static keeps: twice the busy instances of the peak (60 req/s), at least one. */
const PEAK = { front: 1, short: 1, long: 6, store: 1 };
const SCALER = { sampleMs: 250, tickMs: 1000, stableWindowMs: 20_000, panicWindowMs: 2000, idleAfterMs: 5000 };

function chain(policy: (typeof POLICIES)[number]): ChainFileInput {
  const fn = (name: keyof typeof STAGES) => ({
    module: `${BENCH_FUNCTIONS}stage.ts`, instances: PEAK[name], minInstances: policy === 'static' ? PEAK[name] : 0, maxInstances: 12,
    idleAfterMs: SCALER.idleAfterMs, env: { SLEEP_MS: String(STAGES[name]), ...(name === 'front' ? { ROLE: 'front' } : {}) },
  });
  return {
    gateway: { scaler: { policy, sampleMs: SCALER.sampleMs, tickMs: SCALER.tickMs, stableWindowMs: SCALER.stableWindowMs, panicWindowMs: SCALER.panicWindowMs } },
    functions: { front: fn('front'), short: fn('short'), long: fn('long'), store: fn('store') },
    routes: [{ method: 'POST', path: '/work', chain: ['front', ['short', 'long'], 'store'], slo: SLO_MS }],
  };
}

/** Arrival times (ms) of a Poisson process through the phases, and which are long. */
function arrivals(phaseMs: number, seed: number): { at: number; long: boolean }[] {
  let s = seed;
  const rand = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const out: { at: number; long: boolean }[] = [];
  PHASES.forEach((p, i) => {
    for (let t = i * phaseMs; ; ) {
      t += (-Math.log(1 - rand()) * 1000) / p.rate;
      if (t >= (i + 1) * phaseMs) break;
      const cycle = p.burst ? p.burst.onMs + p.burst.offMs : 0;
      if (p.burst && t % cycle >= p.burst.onMs) continue; // off (the cycle counts from 0, as the simulator's)
      out.push({ at: t, long: rand() < p.long });
    }
  });
  return out;
}

export const scaling: Scenario = {
  name: 'scaling',
  title: 'Scaling policies on a dynamic DAG (real gateway, then the simulator)',
  baselines: ['static'],
  async run(ctx: BenchContext) {
    const phaseMs = ctx.pick({ smoke: 3000, quick: 20_000, full: 60_000 });
    const plan = arrivals(phaseMs, 42);
    const total = phaseMs * PHASES.length;
    let step = 0;
    for (const policy of POLICIES) {
      const seconds: number[] = [];
      const met: number[] = [];
      const cold: number[] = [];
      const starts: number[] = [];
      const latencies: number[] = [];
      for (let rep = 0; rep < Math.min(ctx.reps, 2); rep++) {
        ctx.progress(step++, POLICIES.length * Math.min(ctx.reps, 2), `${policy}: ${plan.length} requests over ${total / 1000} s (rep ${rep + 1})`);
        const sys = await startBaton(ctx.tmp, `scaling-${policy}`, chain(policy));
        try {
          let instanceMs = 0;
          const t0 = performance.now();
          let last = t0;
          const sampler = setInterval(async () => {
            const status = (await (await fetch(`${sys.adminUrl}/status`)).json()) as { functions: { instances: { state: string; coldStartMs: number | null }[] }[] };
            const now = performance.now();
            const n = status.functions.flatMap((f) => f.instances).filter((i) => ['starting', 'ready', 'draining'].includes(i.state)).length;
            instanceMs += n * (now - last);
            last = now;
            for (const i of status.functions.flatMap((f) => f.instances)) if (i.coldStartMs !== null) starts.push(i.coldStartMs);
          }, 250);
          let ok = 0;
          let coldHits = 0;
          await Promise.all(
            plan.map(async ({ at, long }) => {
              await new Promise((r) => setTimeout(r, Math.max(0, t0 + at - performance.now())));
              const s = performance.now();
              const res = await fetch(`${sys.url}/work`, { method: 'POST', body: long ? 'long' : 'short', headers: { 'x-baton-timing': '1' } });
              await res.arrayBuffer();
              const ms = performance.now() - s;
              latencies.push(ms);
              if (res.ok && ms <= SLO_MS) ok++;
              if (/cold-/.test(res.headers.get('server-timing') ?? '')) coldHits++;
            }),
          );
          // instance-seconds over the whole plan, as the simulator counts them
          await new Promise((r) => setTimeout(r, Math.max(0, t0 + total - performance.now())));
          clearInterval(sampler);
          seconds.push(instanceMs / 1000);
          met.push((100 * ok) / plan.length);
          cold.push(coldHits);
        } finally {
          await sys.stop();
        }
      }
      ctx.record.metric(policy, 'instance-seconds', seconds, 's', 'lower', { phaseMs, requests: plan.length });
      ctx.record.metric(policy, 'SLO attainment', met, '%', 'higher', { sloMs: SLO_MS });
      ctx.record.metric(policy, 'requests that waited on a cold start', cold, 'requests', 'lower');
      const d = ctx.record.distribution(policy, 'latency', latencies, 'ms');
      ctx.record.metric(policy, 'p50 latency', [d.p50], 'ms', 'lower');
      ctx.record.metric(policy, 'p99 latency', [d.p99], 'ms', 'lower');

      // the same workload in the simulator, with the start time measured here
      starts.sort((a, b) => a - b);
      const startMs = starts[Math.floor(starts.length / 2)] ?? 100;
      const trace = traceSchema.parse({
        durationMs: total,
        functions: Object.fromEntries(
          (Object.keys(STAGES) as (keyof typeof STAGES)[]).map((n) => [n, {
            exec: { kind: 'constant', ms: STAGES[n] + 1 }, startMs, memoryMiB: 512, instances: PEAK[n],
            minInstances: policy === 'static' ? PEAK[n] : 0, maxInstances: 12, idleAfterMs: SCALER.idleAfterMs,
          }]),
        ),
        routes: [{ chain: ['front', ['short', 'long'], 'store'], slo: SLO_MS, branches: { 1: PHASES.map((p, i) => ({ atMs: i * phaseMs, p: [1 - p.long, p.long] })) } }],
        arrivals: PHASES.map((p, i) => ({
          route: 0, rate: [{ atMs: 0, perSecond: 0 }, { atMs: i * phaseMs, perSecond: p.rate }, { atMs: (i + 1) * phaseMs, perSecond: 0 }],
          ...(p.burst ? { pattern: p.burst } : {}),
        })),
      });
      const sim = await simulate(trace, scalerSettings(policy, { sampleMs: SCALER.sampleMs, tickMs: SCALER.tickMs, stableWindowMs: SCALER.stableWindowMs, panicWindowMs: SCALER.panicWindowMs }));
      ctx.record.metric(`${policy} (simulated)`, 'instance-seconds', [sim.instanceSeconds], 's', 'lower', { startMs });
      ctx.record.metric(`${policy} (simulated)`, 'SLO attainment', [100 * sim.sloAttainment], '%', 'higher');
      // how far the simulator is from the real run (1: the same)
      const real = [...seconds].sort((a, b) => a - b)[Math.floor(seconds.length / 2)]!;
      ctx.record.metric(policy, 'simulated / real instance-seconds', [sim.instanceSeconds / real], '×', 'lower');
      ctx.record.metric(policy, 'simulated − real SLO attainment', [100 * sim.sloAttainment - [...met].sort((a, b) => a - b)[Math.floor(met.length / 2)]!], 'points', 'lower');
    }
  },
};
