// `reactive`: Knative's pod autoscaler (KPA) in its concurrency mode, the baseline users know.
// The requests in flight at each function are averaged over a stable window (60 s) and a
// panic window (6 s); an instance should carry `target` of them. Normally the stable average
// decides; when the panic window asks for `panicThreshold` × the instances there are, the
// policy panics: it follows the panic window up and never scales down, until a stable window
// has passed since the condition last held. With no request in flight over a whole stable
// window a function needs 0 instances (scale to zero, after the scaler's hold-down).
import type { Decision, FunctionLoad, ScalingPolicy } from './policy.ts';

export interface ReactiveSettings {
  stableWindowMs: number;
  panicWindowMs: number;
  panicThreshold: number;
}

interface History {
  /** Samples (time, requests in flight), oldest first, spanning the stable window. */
  t: number[];
  load: number[];
  /** When the panic condition last held (undefined: not panicking). */
  panicSince?: number;
  panicLast?: number;
  /** The most asked for while panicking. */
  panicWant: number;
}

export class ReactivePolicy implements ScalingPolicy {
  readonly name = 'reactive';
  private readonly history = new Map<number, History>();

  constructor(private readonly settings: ReactiveSettings) {}

  observe(now: number, loads: readonly FunctionLoad[]): void {
    for (const l of loads) {
      let h = this.history.get(l.fnId);
      if (!h) this.history.set(l.fnId, (h = { t: [], load: [], panicWant: 0 }));
      h.t.push(now);
      h.load.push(l.inFlight);
      let drop = 0;
      while (drop < h.t.length && h.t[drop]! < now - this.settings.stableWindowMs) drop++;
      if (drop) h.t.splice(0, drop), h.load.splice(0, drop);
    }
  }

  /** Mean requests in flight over the last `windowMs` (0 with no sample in it). */
  private average(h: History, now: number, windowMs: number): number {
    let sum = 0;
    let n = 0;
    for (let i = h.t.length - 1; i >= 0 && h.t[i]! >= now - windowMs; i--) sum += h.load[i]!, n++;
    return n ? sum / n : 0;
  }

  decide(now: number, loads: readonly FunctionLoad[]): Decision[] {
    const { stableWindowMs, panicWindowMs, panicThreshold } = this.settings;
    return loads.flatMap((l) => {
      const h = this.history.get(l.fnId);
      if (!h) return [];
      const stable = this.average(h, now, stableWindowMs);
      const panic = this.average(h, now, panicWindowMs);
      // (a hair under the target's multiple stays at it: float averages of whole numbers)
      const wantStable = Math.max(0, Math.ceil(stable / l.target - 1e-9));
      const wantPanic = Math.max(0, Math.ceil(panic / l.target - 1e-9));
      const fmt = (x: number) => x.toFixed(2);
      if (wantPanic >= panicThreshold * Math.max(1, l.instances) && wantPanic > l.instances) {
        h.panicSince ??= now;
        h.panicLast = now;
      } else if (h.panicLast !== undefined && now - h.panicLast >= stableWindowMs) {
        h.panicSince = h.panicLast = undefined;
        h.panicWant = 0;
      }
      if (h.panicSince !== undefined) {
        h.panicWant = Math.max(h.panicWant, wantPanic, l.instances);
        return [{ fnId: l.fnId, want: h.panicWant, reason: `panic since ${Math.round(now - h.panicSince)} ms: ${fmt(panic)} in flight over ${panicWindowMs} ms, target ${l.target} per instance` }];
      }
      return [{ fnId: l.fnId, want: wantStable, reason: `${fmt(stable)} in flight over ${stableWindowMs} ms, target ${l.target} per instance` }];
    });
  }
}
