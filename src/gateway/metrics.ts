// /metrics on the admin listener, in the Prometheus text format (prom-client): what the gateway
// observes per answer (each hop's wait and run, response time and JCT, status) as histograms
// and counters, and its state (requests in flight, queues, instances, pool slots, refusals) read
// at scrape time. Seconds and bytes, as Prometheus expects.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { HotCounter, HotHistogram, type CounterChild, type HistogramChild } from './hot-metrics.ts';
import type { HopTrace } from '../pool/index.ts';
import { isCall } from './timing.ts';
import type { AdmissionStatus } from '../admission/admission.ts';
import { CLASSES } from '../admission/classes.ts';

const LATENCY_BUCKETS = [
  25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10, 30,
];

/** What the gateway reports at scrape time. */
export interface MetricsSource {
  inFlight(): number;
  functions(): { name: string; queued: number; idleTokens: number; instances: Record<string, number>; restarts: number; refused: number }[];
  domains(): { name: string; free: number; held: number; quarantined: number }[];
  counters(): { deadLetters: number; badDescriptors: number; strayDescriptors: number; queuedForInstance: number; queueFull: number };
  scaler(): { decisions: { up: number; down: number; fromZero: number }; functions: { name: string; want: number }[] };
  admission(): AdmissionStatus;
  /** sockmap (the kernel's SK_MSG program) or broker (user space). */
  dataplane(): string;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly wait: HotHistogram;
  private readonly run: HotHistogram;
  private readonly response: HotHistogram;
  private readonly duration: HotHistogram;
  private readonly answers: HotCounter;
  private readonly starts: HotHistogram;
  private readonly classLatency: HistogramChild[];
  /** Children with their labels bound, by function id and route: an observation then skips
   *  looking its labels up (the per-answer cost, for every hop). */
  private readonly waitOf = new Map<number, HistogramChild>();
  private readonly runOf = new Map<number, HistogramChild>();
  private readonly routes = new Map<string, { response: HistogramChild; duration: HistogramChild; answers: Map<number, CounterChild> }>();

  constructor(source: MetricsSource, private readonly fnName: (fnId: number) => string) {
    const registers = [this.registry];
    const histogram = (name: string, help: string) => new HotHistogram(name, help, LATENCY_BUCKETS, this.registry);
    this.wait = histogram('baton_hop_wait_seconds', 'A hop (or nested call) from send to its handler starting: delivery, binding, queueing');
    this.run = histogram('baton_hop_run_seconds', "A function's handler run");
    this.response = histogram('baton_request_response_seconds', 'Arrival to the first handler starting');
    this.duration = histogram('baton_request_duration_seconds', 'Arrival to the answer at the gateway (job completion time)');
    this.starts = histogram('baton_instance_start_seconds', 'Instance spawn to ready (its count: instances started)');
    this.answers = new HotCounter('baton_responses_total', 'Chain answers by route and HTTP status', this.registry);

    const gauge = <L extends string>(name: string, help: string, labelNames: L[], collect: (g: Gauge<L>) => void) =>
      new Gauge<L>({ name, help, labelNames, registers, collect() { this.reset(); collect(this); } });
    const counter = (name: string, help: string, value: () => number) =>
      new Counter({ name, help, registers, collect() { this.reset(); this.inc(value()); } });
    gauge('baton_dataplane_info', 'The data plane descriptors travel on (sockmap: the eBPF program; broker: user space, no eBPF)', ['dataplane'], (g) =>
      g.set({ dataplane: source.dataplane() }, 1),
    );
    gauge('baton_requests_in_flight', 'Requests in a chain, not answered yet', [], (g) => g.set(source.inFlight()));
    gauge('baton_queue_depth', 'Descriptors waiting for an idle instance (late binding)', ['function'], (g) => {
      for (const f of source.functions()) g.set({ function: f.name }, f.queued);
    });
    gauge('baton_idle_tokens', 'Idle instance tokens the kernel can bind to (late binding)', ['function'], (g) => {
      for (const f of source.functions()) g.set({ function: f.name }, f.idleTokens);
    });
    gauge('baton_instances', 'Instances by state (warming and spare: processes kept warm for instances to come)', ['function', 'state'], (g) => {
      for (const f of source.functions()) for (const [state, n] of Object.entries(f.instances)) g.set({ function: f.name, state }, n);
    });
    gauge('baton_instance_restarts', 'Instances replaced after exiting (since start)', ['function'], (g) => {
      for (const f of source.functions()) g.set({ function: f.name }, f.restarts);
    });
    gauge('baton_kernel_refusals', 'Senders refused by the data plane (forged or malformed descriptors), since start', ['function'], (g) => {
      for (const f of source.functions()) g.set({ function: f.name }, f.refused);
    });
    gauge('baton_pool_slots', 'Pool slots by state (held: owned by a request; quarantined: its request is done, an instance still holds it)', ['domain', 'state'], (g) => {
      for (const d of source.domains()) for (const state of ['free', 'held', 'quarantined'] as const) g.set({ domain: d.name, state }, d[state]);
    });
    counter('baton_dead_letters_total', 'Descriptors for a key with no live socket', () => source.counters().deadLetters);
    counter('baton_rejected_descriptors_total', 'Descriptors the gateway refused (each killed its sender)', () => source.counters().badDescriptors);
    counter('baton_stray_descriptors_total', 'Descriptors for requests no longer known', () => source.counters().strayDescriptors);
    counter('baton_queued_total', 'Descriptors that had to wait for an idle instance', () => source.counters().queuedForInstance);
    counter('baton_queue_full_total', 'Requests refused 503 because a queue was full', () => source.counters().queueFull);
    gauge('baton_scaler_wanted_instances', 'Instances the scaler asked for last, per function it scales', ['function'], (g) => {
      for (const f of source.scaler().functions) g.set({ function: f.name }, f.want);
    });
    /** A counter with labels whose values are read at scrape time (`collect` sets each). */
    const labelled = <L extends string>(name: string, help: string, labelNames: L[], collect: (set: (labels: Record<L, string>, n: number) => void) => void) =>
      new Counter<L>({ name, help, labelNames, registers, collect() { this.reset(); collect((labels, n) => this.inc(labels as never, n)); } });
    labelled('baton_scaler_decisions_total', 'Scaling decisions applied: up, down, from zero (a request found no instance)', ['kind'], (set) => {
      const d = source.scaler().decisions;
      for (const [kind, n] of [['up', d.up], ['down', d.down], ['from_zero', d.fromZero]] as const) set({ kind }, n);
    });
    const classLatency = histogram('baton_class_latency_seconds', 'Arrival to answer, per request class (the class it ran at)');
    this.classLatency = CLASSES.map((c) => classLatency.labels({ class: c }));
    labelled('baton_admission_total', 'Requests by the class they asked for: admitted at it, downgraded to the lowest, refused 429; shed (503 while waiting) by the class they ran at', ['class', 'outcome'], (set) => {
      for (const [c, n] of Object.entries(source.admission().classes)) {
        for (const outcome of ['admitted', 'downgraded', 'rejected', 'shed'] as const) set({ class: c, outcome }, n[outcome]);
      }
    });
    labelled('baton_class_slo_total', 'Answers by the class they ran at, within its latency target (met) or not (missed)', ['class', 'slo'], (set) => {
      for (const [c, n] of Object.entries(source.admission().classes)) {
        set({ class: c, slo: 'met' }, n.metSlo);
        set({ class: c, slo: 'missed' }, n.answered - n.metSlo);
      }
    });
    gauge('baton_admit_probability', 'The admit probability of each (route, class) admission has seen', ['route', 'class'], (g) => {
      for (const p of source.admission().probabilities) g.set({ route: p.route, class: p.class }, p.p);
    });
    // the event-loop lag sampler wakes the process at its precision: once a second, not 100 times
    collectDefaultMetrics({ register: this.registry, prefix: 'baton_gateway_', eventLoopMonitoringPrecision: 1000 });
  }

  /** A chain's answer: each hop's (and call's) wait and run, the request's times, its status. */
  answered(route: string, status: number, trace: HopTrace[], receivedUs: number): void {
    for (const t of trace) {
      this.bound(this.waitOf, this.wait, t.fnId).observe(Math.max(0, t.start - t.sent) / 1e6);
      this.bound(this.runOf, this.run, t.fnId).observe(Math.max(0, t.end - t.start) / 1e6);
    }
    let r = this.routes.get(route);
    if (!r) {
      r = { response: this.response.labels({ route }), duration: this.duration.labels({ route }), answers: new Map() };
      this.routes.set(route, r);
    }
    const first = trace.find((t) => !isCall(t));
    if (first) r.response.observe(first.start / 1e6);
    r.duration.observe(receivedUs / 1e6);
    let answers = r.answers.get(status);
    if (!answers) r.answers.set(status, (answers = this.answers.labels({ route, status: String(status) })));
    answers.inc();
  }

  private bound(cache: Map<number, HistogramChild>, h: HotHistogram, fnId: number): HistogramChild {
    let child = cache.get(fnId);
    if (!child) cache.set(fnId, (child = h.labels({ function: this.fnName(fnId) })));
    return child;
  }

  /** A request that ran at class rank `rank` was answered after `ms`. */
  classAnswered(rank: number, ms: number): void {
    this.classLatency[rank]?.observe(ms / 1000);
  }

  instanceReady(fn: string, ms: number): void {
    this.starts.labels({ function: fn }).observe(ms / 1000);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
