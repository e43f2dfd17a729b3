// scaling: the scaler's policies on the real gateway, and the simulator on the same workload.
// A dynamic DAG — front → (a | b | c) → store, front picking the arm at run time from the
// request — under Poisson arrivals whose branch mix shifts: each arm takes most requests in
// turn (the third turn bursty, on/off), then the route goes quiet. Per policy (static sized
// for the peak, reactive, kraken): instance-seconds
// (instances starting, serving or draining, sampled from the admin status every 250 ms), SLO
// attainment (client latency within the route's slo), requests that waited on a cold start,
// p50/p99; then the same workload through `simulate` with the measured start time, and how far
// the simulator is from the real run.
import type { ChainFileInput } from '../../chain/index.ts';
import { simulate } from '../../sim/simulator.ts';
import { scalerSettings } from '../../sim/cli.ts';
import { traceSchema, type Trace } from '../../sim/trace.ts';
import type { BenchContext, Scenario } from '../context.ts';
import { medianOf } from '../stats.ts';
import { startBaton, BENCH_FUNCTIONS } from '../systems/baton.ts';

const POLICIES = ['static', 'reactive', 'kraken'] as const;
type Policy = (typeof POLICIES)[number];
type Stage = 'front' | 'a' | 'b' | 'c' | 'store';
export type Sizing = Record<Stage, number>;
const SLO_MS = 500;
/** The run-time branch's arms, in the order of PHASES' mixes. */
const ARMS = ['a', 'b', 'c'] as const;
/** Handler time per stage, ms: an arm needs several instances while it takes most requests. */
export const STAGES: Sizing = { front: 2, a: 60, b: 60, c: 60, store: 2 };
/** Phases: rate (req/s), each arm's share, and bursts (on, off ms) or steady. Arm a takes 80%,
 *  then b, then c in bursts; then nothing arrives (a night: what scaling to zero is for). */
export const PHASES: { rate: number; mix: [number, number, number]; burst?: { onMs: number; offMs: number } }[] = [
  { rate: 60, mix: [0.8, 0.1, 0.1] },
  { rate: 60, mix: [0.1, 0.8, 0.1] },
  { rate: 60, mix: [0.1, 0.1, 0.8], burst: { onMs: 5000, offMs: 10_000 } },
  { rate: 0, mix: [1 / 3, 1 / 3, 1 / 3] },
];
/** gateway.scaler: decisions every 250 ms (the reactive passes catch a burst's start), kraken
 *  predicting per second; and each function's idleAfterMs: released after 5 s lower. Scaling
 *  visible in a run of minutes. */
const SCALER = { sampleMs: 250, tickMs: 250, predictWindowMs: 1000, stableWindowMs: 20_000, panicWindowMs: 2000 };
const IDLE_AFTER_MS = 5000;
const MAX_INSTANCES = 12;
/** Static "sized for peak" must meet the SLO this well in the simulator. */
const PEAK_SLO = 0.999;

/** static: `sizing` instances each; the others start with one and may go to zero. */
function chain(policy: Policy, sizing: Sizing): ChainFileInput {
  const fn = (name: Stage) => ({
    module: `${BENCH_FUNCTIONS}stage.ts`, instances: policy === 'static' ? sizing[name] : 1, minInstances: policy === 'static' ? sizing[name] : 0,
    maxInstances: MAX_INSTANCES, idleAfterMs: IDLE_AFTER_MS, env: { SLEEP_MS: String(STAGES[name]), ...(name === 'front' ? { ROLE: 'front' } : {}) },
  });
  return {
    gateway: { scaler: { policy, ...SCALER } },
    functions: Object.fromEntries((Object.keys(STAGES) as Stage[]).map((name) => [name, fn(name)])),
    routes: [{ method: 'POST', path: '/work', chain: ['front', [...ARMS], 'store'], slo: SLO_MS }],
  };
}

/** Arrival times (ms) of a Poisson process through the phases, and the arm each takes. */
function arrivals(phaseMs: number, seed: number): { at: number; arm: string }[] {
  let s = seed;
  const rand = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const out: { at: number; arm: string }[] = [];
  PHASES.forEach((p, i) => {
    for (let t = i * phaseMs; p.rate > 0; ) {
      t += (-Math.log(1 - rand()) * 1000) / p.rate;
      if (t >= (i + 1) * phaseMs) break;
      const cycle = p.burst ? p.burst.onMs + p.burst.offMs : 0;
      if (p.burst && t % cycle >= p.burst.onMs) continue; // off (the cycle counts from 0, as the simulator's)
      const x = rand();
      out.push({ at: t, arm: ARMS[x < p.mix[0] ? 0 : x < p.mix[0] + p.mix[1] ? 1 : 2] });
    }
  });
  return out;
}

/** The bench's workload as a simulator trace: its functions, route, branch mix and arrivals. */
export function scalingTrace(policy: Policy, phaseMs: number, startMs: number, sizing: Sizing): Trace {
  return traceSchema.parse({
    durationMs: phaseMs * PHASES.length,
    functions: Object.fromEntries(
      (Object.keys(STAGES) as Stage[]).map((n) => [n, {
        exec: { kind: 'constant', ms: STAGES[n] + 1 }, startMs, memoryMiB: 512, instances: policy === 'static' ? sizing[n] : 1,
        minInstances: policy === 'static' ? sizing[n] : 0, maxInstances: MAX_INSTANCES, idleAfterMs: IDLE_AFTER_MS,
      }]),
    ),
    routes: [{ chain: ['front', [...ARMS], 'store'], slo: SLO_MS, branches: { 1: PHASES.map((p, i) => ({ atMs: i * phaseMs, p: p.mix })) } }],
    arrivals: PHASES.map((p, i) => ({
      route: 0, rate: [{ atMs: 0, perSecond: 0 }, { atMs: i * phaseMs, perSecond: p.rate }, { atMs: (i + 1) * phaseMs, perSecond: 0 }],
      ...(p.burst ? { pattern: p.burst } : {}),
    })),
  });
}

/** The scaler settings the bench's chain file gives `policy`. */
export const scalingSettings = (policy: Policy) => scalerSettings(policy, SCALER);

/** static "sized for peak": the fewest instances per function with which the simulator meets
 *  the SLO for PEAK_SLO of the requests — one more, each time, for the function whose extra
 *  instance helps the most. */
export async function peakSizing(phaseMs: number): Promise<Sizing> {
  const sizing: Sizing = { front: 1, a: 1, b: 1, c: 1, store: 1 };
  const attainment = async (s: Sizing) => (await simulate(scalingTrace('static', phaseMs, 0, s), scalingSettings('static'))).sloAttainment;
  for (let met = await attainment(sizing); met < PEAK_SLO; ) {
    let best: { stage: Stage; met: number } | undefined;
    for (const stage of Object.keys(sizing) as Stage[]) {
      if (sizing[stage] >= MAX_INSTANCES) continue;
      const m = await attainment({ ...sizing, [stage]: sizing[stage] + 1 });
      if (!best || m > best.met) best = { stage, met: m };
    }
    if (!best) break;
    sizing[best.stage]++;
    met = best.met;
  }
  return sizing;
}

export const scaling: Scenario = {
  name: 'scaling',
  title: 'Scaling policies on a dynamic DAG (real gateway, then the simulator)',
  baselines: ['static'],
  async run(ctx: BenchContext) {
    const phaseMs = ctx.pick({ smoke: 3000, quick: 20_000, full: 60_000 });
    const plan = arrivals(phaseMs, 42);
    const total = phaseMs * PHASES.length;
    const reps = Math.min(ctx.reps, 2);
    ctx.progress(0, POLICIES.length * reps, 'sizing static for the peak in the simulator');
    const sizing = await peakSizing(phaseMs);
    let step = 0;
    for (const policy of POLICIES) {
      const seconds: number[] = [];
      const met: number[] = [];
      const cold: number[] = [];
      /** Each instance's start → ready, once (by pid). */
      const starts = new Map<number, number>();
      const latencies: number[] = [];
      /** Instances per function once a second, first repetition. */
      const timeline: { t: number; series: string; value: number }[] = [];
      for (let rep = 0; rep < reps; rep++) {
        ctx.progress(step++, POLICIES.length * reps, `${policy}: ${plan.length} requests over ${total / 1000} s (rep ${rep + 1})`);
        const sys = await startBaton(ctx.tmp, `scaling-${policy}`, chain(policy, sizing));
        try {
          let instanceMs = 0;
          const t0 = performance.now();
          let last = t0;
          let lastSecond = -1;
          const sampler = setInterval(async () => {
            const status = (await (await fetch(`${sys.adminUrl}/status`)).json()) as StatusBody;
            const now = performance.now();
            const counts = status.functions.map((f) => ({ name: f.name, n: f.instances.filter((i) => LIVE.has(i.state)).length }));
            instanceMs += counts.reduce((a, c) => a + c.n, 0) * (now - last);
            last = now;
            for (const i of status.functions.flatMap((f) => f.instances)) if (i.coldStartMs !== null && i.pid !== null) starts.set(i.pid, i.coldStartMs);
            const second = Math.floor((now - t0) / 1000);
            if (rep === 0 && second > lastSecond && now - t0 <= total) {
              lastSecond = second;
              for (const c of counts) timeline.push({ t: second, series: c.name, value: c.n });
            }
          }, 250);
          let ok = 0;
          let coldHits = 0;
          await Promise.all(
            plan.map(async ({ at, arm }) => {
              await new Promise((r) => setTimeout(r, Math.max(0, t0 + at - performance.now())));
              const s = performance.now();
              const res = await fetch(`${sys.url}/work`, { method: 'POST', body: arm, headers: { 'x-baton-timing': '1' } });
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
      ctx.record.metric(policy, 'instance-seconds', seconds, 's', 'lower', { phaseMs, requests: plan.length, sizing });
      ctx.record.metric(policy, 'SLO attainment', met, '%', 'higher', { sloMs: SLO_MS });
      ctx.record.metric(policy, 'requests that waited on a cold start', cold, 'requests', 'lower');
      const d = ctx.record.distribution(policy, 'latency', latencies, 'ms');
      ctx.record.metric(policy, 'p50 latency', [d.p50], 'ms', 'lower');
      ctx.record.metric(policy, 'p99 latency', [d.p99], 'ms', 'lower');
      ctx.record.series(policy, 'instances over time', timeline, 'instances');

      // the same workload in the simulator, with the start time measured here
      const startMs = starts.size ? medianOf([...starts.values()]).median : 100;
      const sim = await simulate(scalingTrace(policy, phaseMs, startMs, sizing), scalingSettings(policy));
      const names = Object.keys(STAGES);
      ctx.record.metric(`${policy} (simulated)`, 'instance-seconds', [sim.instanceSeconds], 's', 'lower', { startMs });
      ctx.record.metric(`${policy} (simulated)`, 'SLO attainment', [100 * sim.sloAttainment], '%', 'higher');
      ctx.record.series(`${policy} (simulated)`, 'instances over time', sim.timeline.flatMap((p) => p.instances.map((value, fn) => ({ t: Math.round(p.t / 1000), series: names[fn]!, value }))), 'instances');
      // how far the simulator is from the real run (1: the same)
      ctx.record.metric(policy, 'simulated / real instance-seconds', [sim.instanceSeconds / medianOf(seconds).median], '×', 'lower');
      ctx.record.metric(policy, 'simulated − real SLO attainment', [100 * sim.sloAttainment - medianOf(met).median], 'points', 'lower');
    }
  },
};

type StatusBody = { functions: { name: string; instances: { pid: number | null; state: string; coldStartMs: number | null }[] }[] };
/** The states an instance costs memory in: what instance-seconds count. */
const LIVE = new Set(['starting', 'ready', 'draining']);
