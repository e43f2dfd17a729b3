// The simulator: the scaler and its policies (the same code the gateway runs) on a virtual clock
// against a model node — instances that take `startMs` to start and `memoryMiB` each within
// the node's memory, functions whose handlers take a time drawn from their distribution, one
// FIFO queue per function as late binding keeps it (an idle instance takes the oldest). Hours
// of a trace run in seconds; the same trace and seed give the same result.
import pino from 'pino';
import type { ChainSpec, FunctionSpec, ScalerSettings } from '../chain/index.ts';
import { batonError } from '../errors.ts';
import type { HopRecord } from '../scaler/policy.ts';
import { createPolicy, Scaler, type Scalable } from '../scaler/scaler.ts';
import type { Distribution, Trace } from './trace.ts';

/** mulberry32: a small seeded generator, so a run can be repeated exactly. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Event {
  t: number;
  seq: number;
  run(): void;
}

/** A binary heap of events by time, then by order of scheduling. */
class Agenda {
  private readonly heap: Event[] = [];
  private seq = 0;
  get size(): number {
    return this.heap.length;
  }
  at(t: number, run: () => void): void {
    const h = this.heap;
    h.push({ t, seq: this.seq++, run });
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  next(): Event | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length && last) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.before(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
  private before(a: Event, b: Event): boolean {
    return a.t < b.t || (a.t === b.t && a.seq < b.seq);
  }
}

type State = 'starting' | 'ready' | 'draining' | 'stopped';
interface Instance {
  fn: number;
  state: State;
  busy: number;
  startedAt: number;
  /** Settles the scaling operation it is part of. */
  done?: () => void;
}
interface Req {
  route: number;
  arrive: number;
  step: number;
  sent: number;
  hops: HopRecord[];
  cold: boolean;
}

export interface SimResult {
  policy: string;
  requests: number;
  /** Answered within their route's SLO, of all answered. */
  sloAttainment: number;
  p50Ms: number;
  p99Ms: number;
  /** Requests that found their function with no instance and waited for one to start. */
  coldStarts: number;
  /** Σ over instances of the time each existed (starting, serving or draining), within the trace. */
  instanceSeconds: number;
  functions: { name: string; instanceSeconds: number; peak: number }[];
  /** Instances per function (trace order), once a second. */
  timeline: { t: number; instances: number[] }[];
}

export async function simulate(trace: Trace, settings: ScalerSettings, onProgress?: (fraction: number) => void): Promise<SimResult> {
  // separate streams: every policy then sees the same arrivals, whatever else it draws
  const rand = random(trace.seed);
  const branchRand = random(trace.seed * 7 + 1);
  const names = Object.keys(trace.functions);
  const fnDefs = names.map((n) => trace.functions[n]!);
  const idOf = new Map(names.map((n, i) => [n, i]));
  const steps = trace.routes.map((r, ri) =>
    r.chain.map((s, si) => {
      for (const name of typeof s === 'string' ? [s] : s) if (!idOf.has(name)) throw batonError('BATON_ERR_TRACE', `routes.${ri}.chain.${si}: unknown function '${name}'`);
      return (typeof s === 'string' ? [s] : s).map((n) => idOf.get(n)!);
    }),
  );
  const specs: FunctionSpec[] = fnDefs.map((f, id) => ({
    id, name: names[id]!, label: names[id]!, domain: 0, module: '', instances: f.instances, minInstances: f.minInstances,
    maxInstances: f.maxInstances, spares: 0, warm: f.warm, idleAfterMs: f.idleAfterMs, concurrency: f.concurrency,
    target: f.concurrency * settings.targetUtilization, binding: 'late', queueDepth: 1e9, env: {}, memory: f.memoryMiB,
    pids: 0, spinUs: 0, keys: [], calls: [],
  }));
  const chains: ChainSpec[] = steps.map((s, id) => ({ id, domain: 0, steps: s }));
  const routes = trace.routes.map((r, i) => ({ method: 'POST', path: `/r${i}`, chainId: i, slo: r.slo, classRank: 1 }));

  let now = 0;
  const agenda = new Agenda();
  const instances: Instance[] = [];
  /** The same instances by function, stopped ones dropped: every lookup is per function. */
  const byFn: Instance[][] = names.map(() => []);
  const queues: Req[][] = names.map(() => []);
  const latencies: number[] = [];
  let met = 0;
  let coldStarts = 0;
  const perFnSeconds = names.map(() => 0);
  const peak = names.map(() => 0);
  const timeline: SimResult['timeline'] = [];
  const budget = trace.node.memoryMiB;

  const live = (fn: number) => byFn[fn]!;
  const wanted = (fn: number) => byFn[fn]!.reduce((n, i) => n + (i.state === 'starting' || i.state === 'ready' ? 1 : 0), 0);
  let usedMiB = 0;
  const used = () => usedMiB;
  const sample = (d: Distribution) =>
    d.kind === 'constant' ? d.ms : d.kind === 'exponential' ? -Math.log(1 - rand()) * d.meanMs : d.medianMs * Math.exp(d.sigma * gaussian());
  function gaussian(): number {
    return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  }
  const account = (i: Instance, until: number) => {
    perFnSeconds[i.fn]! += Math.max(0, Math.min(until, trace.durationMs) - Math.min(i.startedAt, trace.durationMs)) / 1000;
  };

  const runtime: Scalable = {
    inFlight: (fn) => live(fn).reduce((s, i) => s + i.busy, 0) + queues[fn]!.length,
    instances: wanted,
    room: (fn) => Math.max(0, Math.floor((budget - used()) / fnDefs[fn]!.memoryMiB)),
    memoryOf: (fn) => fnDefs[fn]!.memoryMiB,
    startMs: (fn) => fnDefs[fn]!.startMs,
    scale: (fn, n) => {
      const have = byFn[fn]!.filter((i) => i.state === 'starting' || i.state === 'ready');
      const waits: Promise<void>[] = [];
      for (let k = have.length; k < n; k++) waits.push(new Promise((resolve) => start(fn, resolve)));
      // release idle ones first, then those still starting, then busy ones (they drain)
      const order = [...have].sort((a, b) => rank(a) - rank(b));
      for (const i of order.slice(0, Math.max(0, have.length - n))) waits.push(new Promise((resolve) => release(i, resolve)));
      return Promise.all(waits).then(() => undefined);
    },
  };
  const rank = (i: Instance) => (i.state === 'ready' && i.busy === 0 ? 0 : i.state === 'starting' ? 1 : 2);

  function start(fn: number, done: () => void): void {
    const inst: Instance = { fn, state: 'starting', busy: 0, startedAt: now };
    instances.push(inst);
    byFn[fn]!.push(inst);
    usedMiB += fnDefs[fn]!.memoryMiB;
    peak[fn] = Math.max(peak[fn]!, live(fn).length);
    agenda.at(now + fnDefs[fn]!.startMs, () => {
      if (inst.state !== 'starting') return;
      inst.state = 'ready';
      done();
      feed(inst);
    });
  }
  function release(i: Instance, done: () => void): void {
    if (i.state === 'starting' || i.busy === 0) return stop(i, done);
    i.state = 'draining';
    i.done = done;
  }
  function stop(i: Instance, done?: () => void): void {
    i.state = 'stopped';
    byFn[i.fn]!.splice(byFn[i.fn]!.indexOf(i), 1);
    usedMiB -= fnDefs[i.fn]!.memoryMiB;
    account(i, now);
    done?.();
  }
  /** An instance with room takes the oldest waiting requests of its function. */
  function feed(i: Instance): void {
    const q = queues[i.fn]!;
    while (i.state === 'ready' && i.busy < fnDefs[i.fn]!.concurrency && q.length) run(i, q.shift()!);
  }
  function run(i: Instance, r: Req): void {
    i.busy++;
    const started = now;
    const ms = sample(fnDefs[i.fn]!.exec);
    agenda.at(now + ms, () => {
      i.busy--;
      r.hops.push({ fnId: i.fn, waitMs: started - r.sent, runMs: ms });
      advance(r);
      if (i.state === 'draining' && i.busy === 0) stop(i, i.done);
      else feed(i);
    });
  }
  function dispatch(r: Req): void {
    const options = steps[r.route]![r.step]!;
    let fn = options[0]!;
    if (options.length > 1) {
      const plan = trace.routes[r.route]!.branches[String(r.step)];
      const p = plan?.filter((b) => b.atMs <= now).at(-1)?.p ?? options.map(() => 1);
      let x = branchRand() * p.reduce((a, b) => a + b, 0);
      fn = options.find((_, k) => (x -= p[k] ?? 0) < 0) ?? options.at(-1)!;
    }
    r.sent = now;
    const idle = byFn[fn]!.find((i) => i.state === 'ready' && i.busy < fnDefs[fn]!.concurrency);
    if (idle) return run(idle, r);
    queues[fn]!.push(r);
    if (wanted(fn) === 0) {
      if (!r.cold) coldStarts++;
      r.cold = true;
      scaler.wake(fn);
    }
  }
  function advance(r: Req): void {
    if (++r.step < steps[r.route]!.length) return dispatch(r);
    const ms = now - r.arrive;
    latencies.push(ms);
    if (ms <= (trace.routes[r.route]!.slo ?? settings.sloMs)) met++;
    scaler.observeRequest(r.route, r.hops);
  }

  // arrivals: a Poisson process per entry, its rate piecewise constant, bursty ones on/off
  for (const [index, a] of trace.arrivals.entries()) {
    const arrivalRand = random(trace.seed * 7919 + 17 * (index + 1));
    const rateAt = (t: number) => a.rate.filter((x) => x.atMs <= t).at(-1)?.perSecond ?? 0;
    const nextChange = (t: number) => a.rate.find((x) => x.atMs > t)?.atMs ?? Infinity;
    const on = (t: number) => a.pattern === 'poisson' || t % (a.pattern.onMs + a.pattern.offMs) < a.pattern.onMs;
    const nextOn = (t: number) => (a.pattern === 'poisson' ? t : t - (t % (a.pattern.onMs + a.pattern.offMs)) + a.pattern.onMs + a.pattern.offMs);
    const schedule = (from: number) => {
      let t = from;
      for (;;) {
        if (t >= trace.durationMs) return;
        if (!on(t)) { t = nextOn(t); continue; }
        const rate = rateAt(t);
        const edge = Math.min(nextChange(t), a.pattern === 'poisson' ? Infinity : nextOn(t) - a.pattern.offMs);
        if (rate <= 0) { if (edge === Infinity) return; t = edge; continue; }
        const next = t + (-Math.log(1 - arrivalRand()) * 1000) / rate;
        if (next >= edge) { t = edge; continue; } // memoryless: start over at the edge
        if (next >= trace.durationMs) return;
        agenda.at(next, () => {
          dispatch({ route: a.route, arrive: now, step: 0, sent: now, hops: [], cold: false });
          schedule(now);
        });
        return;
      }
    };
    schedule(0);
  }

  const scaler = new Scaler(createPolicy(settings, { chains, routes }), specs, settings, runtime, pino({ level: 'silent' }), () => now);
  // the gateway serves once its first instances are up: they are ready at 0
  for (const f of specs) {
    for (let k = 0; k < f.instances; k++) {
      const inst: Instance = { fn: f.id, state: 'ready', busy: 0, startedAt: 0 };
      instances.push(inst);
      byFn[f.id]!.push(inst);
      usedMiB += f.memory;
      peak[f.id] = Math.max(peak[f.id]!, byFn[f.id]!.length);
    }
  }
  const every = (ms: number, fn: () => void) => {
    const go = () => {
      fn();
      if (now < trace.durationMs) agenda.at(now + ms, go);
    };
    agenda.at(ms, go);
  };
  every(settings.sampleMs, () => scaler.sample());
  every(settings.tickMs, () => scaler.tick());
  every(1000, () => timeline.push({ t: now, instances: names.map((_, fn) => live(fn).length) }));

  // run: events in time order; promises of scaling operations settle between events
  let events = 0;
  for (let e = agenda.next(); e; e = agenda.next()) {
    // past the trace, stop once nothing runs or waits (the timers alone would go on)
    if (e.t > trace.durationMs && !byFn.some((l) => l.some((i) => i.busy > 0)) && queues.every((q) => !q.length)) break;
    now = e.t;
    e.run();
    for (let k = 0; k < 4; k++) await null;
    if (onProgress && ++events % 20000 === 0) onProgress(Math.min(1, now / trace.durationMs));
    if (now > trace.durationMs * 2 + 600_000) break; // what never finishes is not waited for
  }
  scaler.stop();
  for (const l of byFn) for (const i of l) account(i, trace.durationMs);

  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  return {
    policy: settings.policy,
    requests: latencies.length,
    sloAttainment: latencies.length ? met / latencies.length : 1,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    coldStarts,
    instanceSeconds: perFnSeconds.reduce((a, b) => a + b, 0),
    functions: names.map((name, fn) => ({ name, instanceSeconds: perFnSeconds[fn]!, peak: peak[fn]! })),
    timeline,
  };
}
