// The scaler: samples each function's load, asks the policy what it needs, and applies that
// within the function's bounds, plus its warm reserve (`warm` idle instances above the need),
// releasing an instance only once no decision has needed it for `idleAfterMs` (to zero too):
// the count goes down to the most needed within the last `idleAfterMs`.
// A request that finds a function with no instance (scaled to zero, or never started) wakes
// it at once, whatever the policy: the request waits in the function's queue while one starts
// (Knative's activator). Growth stays within the node budget (node.memory): with no room, idle
// instances of other functions are released, least recently busy first, and the growth waits
// for them. One scaling operation per function at a time; what is asked for meanwhile is
// looked at again when it ends.
import type { Logger } from 'pino';
import type { Deployment, FunctionSpec, ScalerSettings } from '../chain/index.ts';
import { KrakenPolicy } from './kraken.ts';
import type { Decision, FunctionLoad, HopRecord, ScalingPolicy } from './policy.ts';
import { ReactivePolicy } from './reactive.ts';
import { StaticPolicy } from './static.ts';

/** The runtime as the scaler drives it. */
export interface Scalable {
  /** Requests in flight at function `fnId` (running or waiting). */
  inFlight(fnId: number): number;
  /** Instances it runs or is starting (those it wants). */
  instances(fnId: number): number;
  scale(fnId: number, count: number): Promise<void>;
  /** How many more instances of `fnId` the node budget lets start now. */
  room(fnId: number): number;
  /** ms its latest instance took from start to ready (undefined: none yet). */
  startMs?(fnId: number): number | undefined;
  memoryOf(fnId: number): number;
}

export interface FunctionScaling {
  name: string;
  want: number;
  reason: string;
  /** performance.now() of the last change asked for. */
  changedAt: number | null;
  /** A release held back until then (the need has been lower since `lowSince`). */
  releaseAt: number | null;
}

export function createPolicy(settings: ScalerSettings, deployment: Pick<Deployment, 'chains' | 'routes'>): ScalingPolicy {
  if (settings.policy === 'reactive') return new ReactivePolicy(settings);
  if (settings.policy === 'kraken') {
    const slo = (chainId: number) => deployment.routes[chainId]?.slo; // route i runs chain i
    return new KrakenPolicy(deployment.chains, slo, settings);
  }
  return new StaticPolicy();
}

interface State {
  spec: FunctionSpec;
  busy: boolean;
  /** A wake-up or a decision arrived while busy: look again when done. */
  again: boolean;
  /** The needs of the last idleAfterMs that no later one matches or exceeds (so the first is
   *  the window's most, and each one's time is the last it was needed), and since when the
   *  window is whole (a start or growth restarts it: what was just started is needed). */
  needs: { at: number; want: number }[];
  needsSince: number;
  /** When it last had requests in flight (the budget releases the least recently busy). */
  lastBusy: number;
  /** What it wants but the node budget has no room for yet: asked again after a release. */
  waitingRoom?: { want: number; reason: string };
  shown: FunctionScaling;
}

export class Scaler {
  /** By function id: only the functions it scales. */
  private readonly fns = new Map<number, State>();
  private sampler?: NodeJS.Timeout;
  private ticker?: NodeJS.Timeout;
  private stopped = false;
  readonly decisions = { ticks: 0, up: 0, down: 0, fromZero: 0, released: 0 };

  constructor(
    readonly policy: ScalingPolicy,
    functions: FunctionSpec[],
    private readonly settings: Pick<ScalerSettings, 'sampleMs' | 'tickMs'>,
    private readonly runtime: Scalable,
    private readonly log: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {
    for (const spec of functions) {
      this.fns.set(spec.id, {
        spec, busy: false, again: false, needs: [], needsSince: this.now(), lastBusy: -Infinity,
        shown: { name: spec.label, want: spec.instances, reason: 'configured', changedAt: null, releaseAt: null },
      });
    }
  }

  /** Starts sampling and deciding. A static policy decides nothing: no timer then, unless a
   *  function may run no instance (the sampler is wake()'s safety net). */
  start(): void {
    const dynamic = this.policy.name !== 'static';
    if (dynamic || [...this.fns.values()].some((s) => s.spec.minInstances === 0)) this.sampler = setInterval(() => this.sample(), this.settings.sampleMs).unref();
    if (dynamic) this.ticker = setInterval(() => this.tick(), this.settings.tickMs).unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.sampler);
    clearInterval(this.ticker);
  }

  private loads(): FunctionLoad[] {
    return [...this.fns.values()].map(({ spec }) => ({
      fnId: spec.id, name: spec.label, inFlight: this.runtime.inFlight(spec.id), instances: this.runtime.instances(spec.id),
      minInstances: spec.minInstances, maxInstances: spec.maxInstances, target: spec.target,
      concurrency: spec.concurrency, startMs: this.runtime.startMs?.(spec.id),
    }));
  }

  sample(): void {
    const loads = this.loads();
    const now = this.now();
    this.policy.observe(now, loads);
    for (const l of loads) if (l.inFlight > 0) this.fns.get(l.fnId)!.lastBusy = now;
    // the safety net of wake(): work waiting with nothing to run it
    for (const l of loads) if (l.inFlight > 0 && l.instances === 0) this.wake(l.fnId);
  }

  /** Whether function `fnId` wants instances the node budget has no room for now. */
  waitingForRoom(fnId: number): boolean {
    return this.fns.get(fnId)?.waitingRoom !== undefined;
  }

  /** Whether the policy learns from answered requests (the gateway then tells it each one). */
  get learns(): boolean {
    return this.policy.observeRequest !== undefined;
  }

  /** A request of chain `chainId` was answered, having run `hops`. */
  observeRequest(chainId: number, hops: readonly HopRecord[]): void {
    this.policy.observeRequest?.(this.now(), chainId, hops);
  }

  /** The policy decides; each decision is applied (see the file's comment). */
  tick(): void {
    const now = this.now();
    const loads = this.loads();
    this.decisions.ticks++;
    const running = new Map(loads.map((l) => [l.fnId, l.instances]));
    for (const d of this.policy.decide(now, loads)) this.apply(d, running.get(d.fnId) ?? 0, now);
  }

  /** A request waits for function `fnId` and none of its instances runs: start one now. */
  wake(fnId: number): void {
    const s = this.fns.get(fnId);
    if (!s || this.stopped) return;
    if (s.busy) {
      s.again = true;
      return;
    }
    if (this.runtime.instances(fnId) > 0) return;
    this.decisions.fromZero++;
    s.lastBusy = this.now();
    this.change(s, Math.max(1, s.spec.minInstances), 'a request waits and no instance runs (scale from zero)');
  }

  private apply(d: Decision, running: number, now: number): void {
    const s = this.fns.get(d.fnId);
    if (!s || this.stopped) return;
    const { minInstances, maxInstances, warm, idleAfterMs } = s.spec;
    const want = Math.min(maxInstances, Math.max(minInstances, d.want + warm));
    const reason = warm ? `${d.reason}; needs ${d.want} + ${warm} warm` : `${d.reason}; needs ${d.want}`;
    const needs = s.needs;
    while (needs.length > 0 && needs[needs.length - 1]!.want <= want) needs.pop();
    needs.push({ at: now, want });
    while (needs[0]!.at < now - idleAfterMs) needs.shift();
    if (want >= running) {
      s.shown.releaseAt = null;
      if (want > running) this.change(s, want, reason);
      else s.shown.reason = reason;
      return;
    }
    // fewer would do: an instance goes once idleAfterMs has passed since it was last needed
    const below = needs.findIndex((n) => n.want < running); // the current need at least
    const releaseAt = Math.max(s.needsSince, below > 0 ? needs[below - 1]!.at : -Infinity) + idleAfterMs;
    const to = needs[below]!.want; // the most needed since running was last needed
    s.shown.releaseAt = releaseAt;
    s.shown.reason = `${reason}; releasing to ${to} at +${Math.max(0, Math.round(releaseAt - now))} ms unless the load comes back`;
    if (now >= releaseAt) {
      s.shown.releaseAt = null;
      this.change(s, to, `${reason}; ${running - to} not needed for ${idleAfterMs} ms`);
    }
  }

  /** Brings function `s` to `want` instances: growth only as far as the node budget has room,
   *  releasing idle instances of other functions (least recently busy first) to make more. */
  private change(s: State, want: number, reason: string): void {
    if (s.busy) {
      s.again = true;
      return;
    }
    const id = s.spec.id;
    const from = this.runtime.instances(id);
    s.waitingRoom = undefined;
    let to = want;
    if (want > from) {
      const room = this.runtime.room(id);
      if (want - from > room) {
        to = from + room;
        s.waitingRoom = { want, reason };
        reason += `; node.memory has room for ${room} more now`;
        this.makeRoom(s, (want - from - room) * this.runtime.memoryOf(id));
      }
    }
    if (to === from) {
      s.shown.reason = reason;
      return;
    }
    if (to > from) {
      this.decisions.up++;
      s.needs = [{ at: this.now(), want: to }]; // what starts now is needed: its hold-down starts with it
      s.needsSince = this.now();
    } else this.decisions.down++;
    s.busy = true;
    Object.assign(s.shown, { want: to, reason, changedAt: this.now() });
    this.log.debug({ fn: s.spec.label, from, to, policy: this.policy.name }, `scaling: ${reason}`);
    this.runtime
      .scale(id, to)
      .catch((err: Error) => this.log.warn({ fn: s.spec.label, from, to, err: err.message }, 'scaling failed'))
      .finally(() => {
        s.busy = false;
        if (this.stopped) return;
        if (s.again) {
          s.again = false;
          this.sample(); // a request that came meanwhile may wait for an instance again
        }
        // a release may have made the room another function waits for
        for (const t of this.fns.values()) if (t.waitingRoom && !t.busy) this.change(t, t.waitingRoom.want, t.waitingRoom.reason);
      });
  }

  /** Releases idle instances (nothing in flight, above their minimum) of functions other than
   *  `forS`, least recently busy first, until `bytes` are freed or none is left to release. */
  private makeRoom(forS: State, bytes: number): void {
    const idle = [...this.fns.values()]
      .filter((t) => t !== forS && !t.busy && this.runtime.inFlight(t.spec.id) === 0 && this.runtime.instances(t.spec.id) > t.spec.minInstances)
      .sort((a, b) => a.lastBusy - b.lastBusy);
    for (const t of idle) {
      if (bytes <= 0) break;
      const n = this.runtime.instances(t.spec.id);
      const mem = this.runtime.memoryOf(t.spec.id);
      const k = Math.min(n - t.spec.minInstances, Math.ceil(bytes / mem));
      bytes -= k * mem;
      this.decisions.released += k;
      this.change(t, n - k, `released for '${forS.spec.label}': node.memory is full and this one is idle (least recently busy)`);
    }
  }

  status(): { policy: string; decisions: { ticks: number; up: number; down: number; fromZero: number; released: number }; functions: FunctionScaling[] } {
    return { policy: this.policy.name, decisions: { ...this.decisions }, functions: [...this.fns.values()].map((s) => ({ ...s.shown })) };
  }
}
