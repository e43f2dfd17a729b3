// `kraken`: the DAG-aware policy of Kraken (Bhasi et al., SoCC'21), as read from the paper and
// fitted to what baton observes. Per route (a chain: steps, a step of several functions being a
// run-time branch) it learns from every answered request's trace which functions ran — the
// invocation probability P of each, followed as it shifts (an exponentially weighted average
// per request, `probabilityAlpha`) — and each function's exec time and queueing delay.
//
// Proactive pass, once per cold-start window (the instances' measured start → ready, at least
// `predictWindowMs` and a tick: a window of a few starts' length holds too few arrivals to
// predict from): the route's arrival rate is predicted by an EWMA of the last windows
// (`ewmaAlpha`) — restarted from the last window when its arrivals are implausible under the
// prediction (beyond `changeSigmas` Poisson standard deviations: a burst's start or end, which
// the EWMA alone would follow over several windows, holding instances the whole way) — and
// each function of the route gets the predicted load times its weight,
//   w = min(P · (1 + connectivityWeight · Connectivity + commonalityWeight · Commonality),
//           weightCap · P),
// Connectivity = descendants / functions of the route (a function early in the chain carries
// everything after it), Commonality = paths through the function / paths of the route (a
// branch's arms share its paths). Batching: the route's `slo` is split across its stages by
// their measured exec times; an instance may take B = ⌊stage SLO / exec time⌋ requests in turn
// within its stage's share, so a function needs ⌈λ · stage SLO / B⌉ slots of concurrency; one
// expected less than half a time per window needs none (the EWMA only halves each window
// without arrivals: it would hold an instance for half a minute after the load has gone).
// Reactive pass, every decision: a function whose queueing delay — the recent hops' average, or
// what the requests waiting now will see (waiting × exec / instances), whichever is larger —
// exceeds its stage's slack (stage SLO − exec) is overloaded and gets ⌈waiting / B⌉ more
// instances; surplus instances go through the scaler's hold-down (the idler).
import type { ChainSpec, ScalerSettings } from '../chain/index.ts';
import type { Decision, FunctionLoad, HopRecord, ScalingPolicy } from './policy.ts';

/** gateway.scaler's kraken settings (see the chain file), and the decision tick: the
 *  shortest proactive window. */
export type KrakenSettings = Pick<
  ScalerSettings, 'ewmaAlpha' | 'changeSigmas' | 'probabilityAlpha' | 'connectivityWeight' | 'commonalityWeight' | 'weightCap' | 'sloMs' | 'tickMs' | 'predictWindowMs'
>;

/** Invocations per window below which the proactive pass wants no instance of a function. */
const IDLE_INVOCATIONS = 0.5;

interface Route {
  spec: ChainSpec;
  sloMs: number;
  /** Function ids of the route and, per function, its Connectivity and Commonality. */
  fns: number[];
  connectivity: Map<number, number>;
  commonality: Map<number, number>;
  /** Learned invocation probability per function (starts at 1: every function assumed to run). */
  p: Map<number, number>;
  arrivals: number;
  /** Predicted arrival rate, requests per second (undefined: no window closed yet). */
  rate?: number;
}

/** An exponentially weighted average that starts at its first value. */
const ewma = (old: number | undefined, x: number, a: number) => (old === undefined ? x : a * x + (1 - a) * old);

/** The next predicted rate (per second) from `arrivals` in the last `seconds`: the EWMA, or
 *  that window alone when its count is `sigmas` Poisson deviations away from the prediction. */
function predict(old: number | undefined, arrivals: number, seconds: number, alpha: number, sigmas: number): number {
  const rate = arrivals / seconds;
  if (old === undefined) return rate;
  const expected = old * seconds;
  const changed = sigmas > 0 && Math.abs(arrivals - expected) > sigmas * Math.sqrt(Math.max(1, expected));
  return changed ? rate : ewma(old, rate, alpha);
}

export class KrakenPolicy implements ScalingPolicy {
  readonly name = 'kraken';
  private readonly routes: Route[];
  private readonly execMs = new Map<number, number>();
  private readonly waitMs = new Map<number, number>();
  private windowStart?: number;
  /** The last proactive pass's need per function. */
  private proactive = new Map<number, { slots: number; why: string }>();

  constructor(chains: ChainSpec[], sloMs: (chainId: number) => number | undefined, private readonly settings: KrakenSettings) {
    this.routes = chains.map((spec) => {
      const fns = spec.steps.flat();
      const connectivity = new Map<number, number>();
      const commonality = new Map<number, number>();
      spec.steps.forEach((step, i) => {
        const after = spec.steps.slice(i + 1).flat().length;
        for (const f of step) {
          connectivity.set(f, after / fns.length);
          commonality.set(f, 1 / step.length); // (paths / width of its step) of all paths
        }
      });
      return {
        spec, sloMs: sloMs(spec.id) ?? settings.sloMs, fns, connectivity, commonality,
        p: new Map(fns.map((f) => [f, 1])), arrivals: 0,
      };
    });
  }

  /** What the policy knows of function `fnId` in chain `chainId`: its learned invocation
   *  probability, its Connectivity and Commonality. */
  shape(chainId: number, fnId: number): { p: number; connectivity: number; commonality: number } {
    const r = this.routes[chainId];
    return { p: r?.p.get(fnId) ?? 0, connectivity: r?.connectivity.get(fnId) ?? 0, commonality: r?.commonality.get(fnId) ?? 0 };
  }

  /** Predicted arrivals per second of chain `chainId`. */
  predictedRate(chainId: number): number {
    return this.routes[chainId]?.rate ?? 0;
  }

  observeRequest(_now: number, chainId: number, hops: readonly HopRecord[]): void {
    const r = this.routes[chainId];
    if (!r) return;
    r.arrivals++;
    const ran = new Set<number>();
    for (const h of hops) {
      ran.add(h.fnId);
      this.execMs.set(h.fnId, ewma(this.execMs.get(h.fnId), h.runMs, 0.1));
      this.waitMs.set(h.fnId, ewma(this.waitMs.get(h.fnId), h.waitMs, 0.1));
    }
    const a = this.settings.probabilityAlpha;
    for (const f of r.fns) r.p.set(f, (1 - a) * r.p.get(f)! + a * (ran.has(f) ? 1 : 0));
  }

  observe(): void {}

  /** The window of the proactive pass: the slowest measured instance start, at least
   *  predictWindowMs and a tick. */
  private window(loads: readonly FunctionLoad[]): number {
    return Math.max(this.settings.predictWindowMs, this.settings.tickMs, ...loads.map((l) => l.startMs ?? 0));
  }

  /** A function's share of route `r`'s SLO: in proportion to its exec time among the stages. */
  private stageSlo(r: Route, fnId: number): number {
    const exec = (f: number) => this.execMs.get(f) ?? 1;
    const total = r.fns.reduce((s, f) => s + r.p.get(f)! * exec(f), 0);
    return total > 0 ? (r.sloMs * exec(fnId)) / total : r.sloMs;
  }

  private proactivePass(seconds: number): void {
    const { ewmaAlpha, changeSigmas, connectivityWeight, commonalityWeight, weightCap } = this.settings;
    const need = new Map<number, { slots: number; parts: string[] }>();
    for (const r of this.routes) {
      const rate = (r.rate = predict(r.rate, r.arrivals, seconds, ewmaAlpha, changeSigmas));
      r.arrivals = 0;
      for (const f of r.fns) {
        const p = r.p.get(f)!;
        const w = Math.min(p * (1 + connectivityWeight * r.connectivity.get(f)! + commonalityWeight * r.commonality.get(f)!), weightCap * p);
        const stage = this.stageSlo(r, f);
        const batch = Math.max(1, Math.floor(stage / (this.execMs.get(f) ?? stage)));
        const idle = rate * p * seconds < IDLE_INVOCATIONS;
        const slots = idle ? 0 : (rate * w * stage) / 1000 / batch;
        const n = need.get(f) ?? { slots: 0, parts: [] };
        n.slots += slots;
        n.parts.push(`${rate.toFixed(1)} req/s × w ${w.toFixed(2)} (P ${p.toFixed(2)}), stage ${stage.toFixed(1)} ms, batch ${batch}`);
        need.set(f, n);
      }
    }
    this.proactive = new Map([...need].map(([f, n]) => [f, { slots: n.slots, why: n.parts.join('; ') }]));
  }

  decide(now: number, loads: readonly FunctionLoad[]): Decision[] {
    const window = this.window(loads);
    this.windowStart ??= now;
    if (now - this.windowStart >= window) {
      this.proactivePass((now - this.windowStart) / 1000);
      this.windowStart = now;
    }
    return loads.map((l) => {
      const pro = this.proactive.get(l.fnId) ?? { slots: 0, why: 'no load seen yet' };
      let want = Math.ceil(pro.slots / l.concurrency - 1e-9);
      let why = `kraken: ${pro.why}`;
      // reactive: queueing beyond the stage's slack means the prediction fell short
      const exec = this.execMs.get(l.fnId);
      const wait = this.waitMs.get(l.fnId);
      const waiting = Math.max(0, l.inFlight - l.instances * l.concurrency);
      if (exec !== undefined && wait !== undefined && waiting > 0) {
        const stage = Math.min(...this.routes.filter((r) => r.fns.includes(l.fnId)).map((r) => this.stageSlo(r, l.fnId)));
        // the queueing delay seen (recent hops), or the one what waits now will see: a burst
        // shows in the queue before it shows in the hops' average
        const ahead = (waiting * exec) / Math.max(1, l.instances * l.concurrency);
        const queueing = Math.max(wait, ahead);
        if (queueing > stage - exec) {
          const batch = Math.max(1, Math.floor(stage / exec));
          const more = Math.ceil(waiting / batch);
          want = Math.max(want, l.instances + more);
          why += `; overloaded (queueing ${queueing.toFixed(1)} ms > slack ${(stage - exec).toFixed(1)} ms): +${more}`;
        }
      }
      return { fnId: l.fnId, want: Math.max(0, want), reason: why };
    });
  }
}
