// The gateway: the one privileged process. It loads the SK_MSG program, creates the pool,
// spawns the function instances, terminates HTTP, and sends each request into its chain as a
// descriptor on its own sockmap socket (key 0), where the chain's answer comes back. This
// file wires the parts together and owns their lifecycle; each concern lives beside it:
//   http.ts / respond.ts   the HTTP edge            requests.ts  each request's one answer
//   custody.ts             when a slot is free      inbox.ts     what arrives on key 0
//   instances.ts           worker processes         ../binding   late binding's dispatcher
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { Admission, type AdmissionStatus, type Ticket } from '../admission/admission.ts';
import { Shedding } from '../admission/shedding.ts';
import { Dispatcher } from '../binding/dispatcher.ts';
import { IdleTokens } from '../binding/idle.ts';
import { buildFunctions, type FunctionBuild } from '../build/functions.ts';
import { callees, callers, type Deployment, type RouteSpec } from '../chain/index.ts';
import { Endpoint } from '../dataplane/endpoint.ts';
import { BROKER_COST, DATAPLANE_CHOICES, openDataplane, type Dataplane, type DataplaneChoice } from '../dataplane/dataplane.ts';
import { discardProgram, loadProgramAhead, type ProgramAhead } from '../dataplane/program.ts';
import type { NativeDataplane } from '../native/index.ts';
import { GATEWAY_FN, GATEWAY_KEY, HOLDER_QUEUED, Kind, nowUs, type Descriptor } from '../descriptor/index.ts';
import { batonError, type BatonError, type BatonErrorCode } from '../errors.ts';
import { PoolSet, type RequestMeta } from '../pool/index.ts';
import { Router } from '../worker/router.ts';
import { SlotTable } from './custody.ts';
import type { Backend, HttpEdge } from './http.ts';
import type { Tracing } from './tracing.ts';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { Inbox, requestOverNotice } from './inbox.ts';
import { checkUidRange, workerCredentials } from '../isolation/credentials.ts';
import { Cgroups } from '../isolation/cgroups.ts';
import { nodeCpu, processCpuMs, SpinPriority } from '../isolation/spin-priority.ts';
import { Instances, type Instance } from './instances.ts';
import { checkPort, listenError } from './port.ts';
import { RequestTable, type Outcome, type Request } from './requests.ts';
import type { Answer } from './respond.ts';
import { TimingStats } from './stats.ts';
import type { Metrics, MetricsSource } from './metrics.ts';
import { serverTiming } from './timing.ts';
import { createPolicy, Scaler } from '../scaler/scaler.ts';

export interface GatewayOptions {
  /** Overrides the chain file's gateway.port (0: any free port). */
  port?: number;
  host?: string;
  /** Overrides the chain file's gateway.admin address. */
  adminPort?: number;
  adminHost?: string;
  /** Overrides the chain file's gateway settings of the same name. */
  timeoutMs?: number;
  bodyTimeoutMs?: number;
  sendTimeoutMs?: number;
  startTimeoutMs?: number;
  logger?: Logger;
  /** false: the kernel checks nothing a function sends (the bench's reference for what the
   *  checks cost). Never for serving: any function could then forge any descriptor. */
  kernelChecks?: boolean;
  /** Overrides the chain file's gateway.dataplane (and BATON_DATAPLANE). */
  dataplane?: DataplaneChoice;
  /** The SK_MSG program, its load started earlier (baton up starts it before loading the
   *  gateway's code); by default start() starts it first thing. */
  program?: ProgramAhead;
  /** Where request and hop spans go (tests: an in-memory exporter), instead of
   *  gateway.tracing's OTLP endpoint. */
  traceExporter?: SpanExporter;
}

/** After a request's timeout, how long an instance may still hold its slot before it is
 *  taken for hung and killed (a healthy one hands a late descriptor back within ~100 ms). */
export const HUNG_GRACE_MS = 1000;

export class Gateway implements Backend {
  readonly log: Logger;
  readonly timeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly sendTimeoutMs: number;
  readonly startTimeoutMs: number;
  readonly routes: RouteSpec[];
  readonly capacity: number;
  readonly timing: TimingStats;
  /** Set once the listeners' modules are loaded (see start). */
  metrics!: Metrics;
  /** OpenTelemetry spans, when configured (see start). */
  tracing?: Tracing;
  readonly dataplane: Dataplane;
  /** Why the kernel's data plane could not load, when `auto` fell back to the broker. */
  dataplaneFallback?: string;
  readonly pools: PoolSet;
  readonly slots: SlotTable;
  readonly requests: RequestTable;
  readonly dispatcher: Dispatcher;
  readonly instances: Instances;
  readonly scaler: Scaler;
  readonly admission: Admission;
  readonly inbox: Inbox;
  url = '';
  /** Status and scaling (admin.ts). */
  adminUrl = '';
  private readonly router: Router;
  private readonly endpoint: Endpoint;
  /** Requests dispatched in this turn of the event loop after its first, not sent yet, and
   *  whether one went already (see endTurn). */
  private readonly outbox: Descriptor[] = [];
  private turnOpen = false;
  private readonly reaper: NodeJS.Timeout;
  /** Deadline-aware shedding's sweep (gateway.admission.shed). */
  private shedder?: NodeJS.Timeout;
  private http?: HttpEdge;
  private admin?: FastifyInstance;
  private readonly cgroups?: Cgroups;
  /** Moves spinning functions' instances to normal priority while they are busy. */
  private readonly spinPriority?: SpinPriority;
  private stopped = false;
  /** Instances ready before the metrics existed. */
  private readonly readyEarly: Instance[] = [];
  /** "METHOD path" of route i (it runs chain i), as the metrics label it. */
  private readonly routeLabels: string[];
  private readonly alwaysTiming: boolean;
  /** Whether the scaler's policy learns from each answer's trace (kraken). */
  private readonly learning: boolean;

  /** Loads the data plane, starts every instance, then listens. Nothing stays behind if it fails. */
  static async start(deployment: Deployment, options: GatewayOptions = {}): Promise<Gateway> {
    const g = deployment.gateway;
    const port = options.port ?? g.port;
    const host = options.host ?? g.host;
    const adminPort = options.adminPort ?? g.admin.port;
    const adminHost = options.adminHost ?? g.admin.host;
    const choice = dataplaneChoice(options.dataplane, g.dataplane);
    const checks = options.kernelChecks !== false;
    let ahead = options.program;
    if (ahead && (choice === 'broker' || ahead.checks !== checks)) {
      discardProgram(ahead);
      ahead = undefined;
    }
    let build: FunctionBuild;
    try {
      // before anything starts: a busy port says so at once
      await checkPort(port, host);
      await checkPort(adminPort, adminHost);
      checkUidRange(deployment);
      // the kernel verifies the program on another thread while the functions build
      if (!ahead && choice !== 'broker') ahead = loadProgramAhead(checks);
      build = await buildFunctions(deployment); // and a module that does not build
    } catch (err) {
      discardProgram(ahead);
      throw err;
    }
    let gw: Gateway;
    try {
      gw = new Gateway(deployment, { ...options, dataplane: choice }, build, await ahead?.loaded);
    } catch (err) {
      build.remove();
      throw err;
    }
    try {
      // the instances' processes boot (on other CPUs) while this one loads what serves HTTP
      // (fastify, prom-client: a good part of the start)
      const starting = gw.instances.startAll();
      starting.catch(() => {}); // awaited below
      const [{ buildAdmin }, { buildHttp }, { Metrics }] = await Promise.all([
        import('./admin.ts'), import('./http.ts'), import('./metrics.ts'),
      ]);
      gw.metrics = new Metrics(gw.metricsSource(), (id) => gw.fnName(id));
      if (options.traceExporter || tracingAsked(g.tracing)) {
        // loaded only when asked for: OpenTelemetry's SDK is a fair part of a start otherwise
        gw.tracing = (await import('./tracing.ts')).Tracing.open(g.tracing, options.traceExporter);
      }
      for (const inst of gw.readyEarly.splice(0)) gw.instanceReady(inst);
      // the listeners made ready while the instances still boot; they listen once they serve
      gw.admin = buildAdmin(gw);
      gw.http = buildHttp(gw);
      await gw.admin.ready();
      await starting;
      gw.scaler.start();
      gw.spinPriority?.start();
      gw.adminUrl = await gw.admin.listen({ port: adminPort, host: adminHost }).catch((err: NodeJS.ErrnoException) => {
        throw listenError(err, adminPort, adminHost);
      });
      gw.url = await gw.http.listen({ port, host }).catch((err: NodeJS.ErrnoException) => {
        throw listenError(err, port, host);
      });
    } catch (err) {
      await gw.stop();
      throw err;
    }
    gw.log.info({ url: gw.url, admin: gw.adminUrl, functions: deployment.functions.length, instances: gw.instances.all.length }, 'gateway listening');
    return gw;
  }

  private constructor(
    readonly deployment: Deployment,
    options: GatewayOptions & { dataplane: DataplaneChoice },
    private build: FunctionBuild,
    program: NativeDataplane | undefined,
  ) {
    const g = deployment.gateway;
    this.log = options.logger ?? pino({ level: g.logLevel, name: 'baton' });
    this.timeoutMs = options.timeoutMs ?? g.timeoutMs;
    this.bodyTimeoutMs = options.bodyTimeoutMs ?? g.bodyTimeoutMs;
    this.sendTimeoutMs = options.sendTimeoutMs ?? g.sendTimeoutMs;
    this.startTimeoutMs = options.startTimeoutMs ?? g.startTimeoutMs;
    this.routes = deployment.routes;
    this.routeLabels = deployment.routes.map((r) => `${r.method} ${r.path}`);
    this.admission = new Admission(g.admission, (chainId) => deployment.routes[chainId]!.classRank);
    this.alwaysTiming = g.serverTiming === 'always';
    this.router = new Router(deployment);
    this.timing = new TimingStats(deployment.functions.map((f) => f.label));

    // the kernel's needs eBPF privilege: the first thing that can fail for it
    this.dataplane = openDataplane(options.dataplane, {
      checks: options.kernelChecks,
      program,
      fallback: (why) => {
        this.dataplaneFallback = why.message;
        this.log.warn(
          `THE eBPF DATA PLANE CANNOT RUN HERE (${why.code}: ${why.message}); falling back to the user-space broker: ${BROKER_COST}. ` +
            'Set gateway.dataplane (or --dataplane) to sockmap to fail instead, or to broker to choose it without this warning',
        );
      },
    });
    if (this.dataplane.kind === 'broker') this.log.info('data plane: the user-space broker (descriptors routed in the gateway process)');
    if (options.kernelChecks === false) this.log.warn('kernel checks are OFF: any function can forge descriptors (for measuring their cost only)');
    try {
      this.pools = new PoolSet(deployment.domains, deployment.pool);
    } catch (err) {
      this.dataplane.destroy();
      throw err;
    }
    this.capacity = this.pools.capacity;
    const share = g.admission.starvationShare;
    this.dataplane.configure(this.pools.slotCount, this.pools.capacity, share > 0 ? Math.round(1 / share) : 0);
    const calls = callees(deployment);
    const returns = callers(deployment);
    for (const f of deployment.functions) {
      // a late function is the dispatcher's until an instance serves (see serving below)
      this.dataplane.setFunction(f.id, f.keys[0]!, f.binding === 'late' ? 0 : f.concurrency, f.keys.length);
      this.dataplane.allowCalls(f.id, calls[f.id]!, returns[f.id]!);
    }
    this.slots = new SlotTable(deployment.domains.length, deployment.pool.slotCount, this.dataplane.custodyBuffer());
    this.requests = new RequestTable(this.slots, {
      // a descriptor still waiting in a kernel queue is taken out of it (passed over there)
      abandoned: (req) => {
        for (const slot of [req.slot, ...(req.callSlots ?? [])]) if (slot >= 0) this.slots.withdraw(slot);
      },
      ended: (req) => this.requestOver(req),
      timedOut: (req, ms) => this.timedOut(req, ms),
    });
    this.dispatcher = new Dispatcher(
      deployment.functions,
      new IdleTokens(this.dataplane.idleBuffer()),
      this.dataplane,
      {
        send: (d) => this.endpoint.send(d),
        fail: (reqId, error) => this.requests.answer(reqId, { error }),
        park: (slot, fnId) => this.slots.park(slot, fnId),
        classOf: (slot) => this.slots.classOf(slot),
        claim: (slot, gen) => this.slots.claim(slot, gen),
        // with no instance serving, the kernel passes the function's descriptors to the
        // dispatcher, which queues them and wakes the scaler: the activator
        serving: (fnId, n) => {
          const f = deployment.functions[fnId]!;
          this.dataplane.setFunction(fnId, f.keys[0]!, n > 0 ? f.concurrency : 0, f.keys.length);
        },
        waiting: (fnId, reqId) => {
          const req = reqId >= 0 ? this.requests.get(reqId) : undefined;
          if (req) markCold(req, fnId);
          this.scaler.wake(fnId);
          if (req && this.scaler.waitingForRoom(fnId)) req.noRoomFor = fnId;
        },
      },
      this.log,
    );
    this.slots.withdrawn = (fnId) => this.dispatcher.withdrawn(fnId);
    const cgroups = Cgroups.open();
    if (typeof cgroups === 'string') this.log.warn(`function memory, task and CPU limits are not enforced: ${cgroups}`);
    else this.cgroups = cgroups;
    const spinning = deployment.functions.filter((f) => f.spinUs > 0).map((f) => `'${f.name}'`);
    if (spinning.length && !this.cgroups?.idleGroups) {
      this.log.warn(`${spinning.join(', ')} spin (spinUs) at normal priority: there are no idle cgroups here (cgroups, the cpu controller and Linux 5.15 needed), so their polling competes for CPU with every process of the node`);
    }
    this.instances = new Instances(deployment, this.dataplane, this.pools, this.log, {
      startTimeoutMs: this.startTimeoutMs, timeoutMs: this.timeoutMs, build, cgroups: this.cgroups, budget: deployment.node.memory,
    });
    const spinners = deployment.functions.filter((f) => f.spinUs > 0).map((f) => f.id);
    if (this.cgroups?.movesBusy && spinners.length) {
      const cgroups = this.cgroups;
      this.spinPriority = new SpinPriority({
        node: nodeCpu,
        processMs: processCpuMs,
        processes: () =>
          spinners.flatMap((fnId) => this.instances.of(fnId)).flatMap((i) => (i.state !== 'stopped' && i.child?.pid ? [{ key: i.key, pid: i.child.pid }] : [])),
        setBusy: (key, pid, busy) => {
          if (cgroups.busy(key) === busy) return;
          cgroups.setBusy(key, pid, busy);
          if (cgroups.busy(key) === busy) this.instances.setSpinning(key, !busy);
        },
      }, g.spinStopsAt, (busy, load) => {
        const names = spinners.map((fnId) => `'${deployment.functions[fnId]!.label}'`).join(', ');
        const share = `${Math.round(load * 100)}% of the node's CPU`;
        this.log.info(busy ? `other processes use ${share}: ${names} work at normal priority and do not poll` : `other processes use ${share}: ${names} poll at idle priority again`);
      });
    }
    this.scaler = new Scaler(
      createPolicy(g.scaler, deployment),
      deployment.functions.filter((f) => f.binding === 'late'), // early binding: what is configured
      g.scaler,
      {
        inFlight: (fnId) => this.dispatcher.inFlight(fnId),
        instances: (fnId) => this.instances.of(fnId).filter((i) => i.wanted).length,
        scale: (fnId, n) => this.instances.scale(fnId, n, (inst) => this.drain(inst)),
        room: (fnId) => this.instances.room(fnId),
        startMs: (fnId) => {
          const ms = this.instances.of(fnId).flatMap((i) => (i.coldStartMs === undefined ? [] : [i.coldStartMs]));
          return ms.length ? Math.max(...ms) : undefined;
        },
        memoryOf: (fnId) => deployment.functions[fnId]!.memory,
      },
      this.log,
    );
    this.learning = this.scaler.learns;
    const fixed = deployment.functions.filter((f) => f.binding === 'early');
    if (g.scaler.policy !== 'static' && fixed.length) {
      // the kernel spreads their descriptors over fixed sockets: their load is not seen here
      this.log.warn(`scaler '${g.scaler.policy}' leaves early-bound functions at what is configured: ${fixed.map((f) => `${f.label} (${f.instances})`).join(', ')} (POST /_baton/scale changes them by hand)`);
    }
    this.inbox = new Inbox({
      requests: this.requests,
      slots: this.slots,
      dispatcher: this.dispatcher,
      router: this.router,
      send: (...ds) => this.endpoint.send(...ds),
      functionOf: (key) => this.instances.byKey(key)?.fnId,
      mayCall: (fnId) => deployment.functions[fnId]!.calls.length > 0,
      resetSlot: (slot) => this.pools.reset(slot),
      describe: (key) => this.describeKey(key),
      refuse: (key, why) => this.refuse(key, why),
      warn: (fields, message) => this.log.warn(fields, message),
    });
    const { fd } = this.dataplane.open(GATEWAY_KEY);
    this.endpoint = new Endpoint(fd, { frame: (f) => this.inbox.onFrame(f), garbage: (n) => this.inbox.onGarbage(n) }, {
      spinUs: g.spinUs,
      divert: this.dataplane.divert(GATEWAY_KEY),
    });

    this.dataplane.on('refused', (key) => this.refuse(key, `refused by the ${this.dataplane.kind === 'broker' ? 'broker' : 'kernel'}: it ${this.dataplane.refusal(key)}`));
    this.dataplane.on('lost', (key) => this.socketLost(key));
    this.instances.on('starting', (inst) => {
      if (this.isLate(inst)) this.dispatcher.enlist(inst.fnId, inst.index);
    });
    this.instances.on('ready', (inst) => {
      if (this.isLate(inst) && this.dispatcher.started(inst.fnId, inst.index)) this.coldWaiters(inst);
      if (this.metrics) this.instanceReady(inst);
      else this.readyEarly.push(inst); // counted once the metrics exist (see start)
    });
    this.instances.on('exit', (inst, reason, code, wasReady, retrying) => this.instanceExited(inst, reason, code, wasReady, retrying));
    this.instances.on('live', (live, fnId) => {
      this.router.setLive(live);
      // workers pick among the running instances of early-bound functions only (a late-bound
      // one is addressed as a whole): a change to late-bound instances tells them nothing, and
      // a message to every process on each scaling step costs the gateway's loop ~0.1–0.4 ms
      if (deployment.functions[fnId]!.binding === 'early') this.instances.broadcast({ type: 'live', live });
    });
    this.reaper = setInterval(() => this.killHung(), Math.min(250, HUNG_GRACE_MS)).unref();
    if (g.admission.shed) {
      const shedding = new Shedding(deployment.chains, deployment.functions.length, (fnId) => this.timing.runP50(fnId) / 1000);
      this.shedder = setInterval(() => this.shedLate(shedding), g.admission.shedCheckMs).unref();
    }
  }

  get serving(): boolean {
    return !this.stopped;
  }

  payload(slot: number): Buffer {
    return this.pools.payload(slot);
  }

  writeMeta(slot: number, meta: RequestMeta): boolean {
    return this.pools.writeMeta(slot, meta);
  }

  /** The security domain of chain `chainId`: where its requests' slots come from. */
  domainOf(chainId: number): number {
    return this.deployment.chains[chainId]!.domain;
  }

  /** Sends a request whose body is in its slot into chain `chainId`; resolves with its answer. */
  dispatch(
    req: Request, chainId: number, length: number, tArrive: number, meta: RequestMeta, timing: boolean, traceparent: string | undefined,
    done: (a: Answer) => void,
  ): void {
    if (this.stopped) throw batonError('BATON_ERR_SHUTTING_DOWN');
    const first = this.router.first(chainId);
    req.chainId = chainId;
    // a first function with no instance serving has one started now, not only once the kernel
    // has passed its descriptor to the dispatcher (the activator's path, a loop turn later)
    if (this.dispatcher.accepts(first.fnId) && this.dispatcher.ready(first.fnId) === 0) {
      markCold(req, first.fnId);
      if (this.dispatcher.serving(first.fnId) === 0) this.scaler.wake(first.fnId);
    }
    this.requests.start(req, this.timeoutMs, (outcome) => done(this.toAnswer(req, chainId, outcome, tArrive, meta, timing, traceparent)));
    const d: Descriptor = {
      key: first.key, kind: Kind.Call, reqId: req.id, gen: req.gen, slot: req.slot, length, chainId,
      hop: first.hop, fnId: first.fnId, status: 0, sender: GATEWAY_KEY, tArrive,
      tSent: nowUs() - tArrive, tBind: 0, tStart: 0, tEnd: 0,
    };
    if (this.turnOpen) {
      this.outbox.push(d);
      return;
    }
    // the first of a turn goes at once (a lone request waits for nothing)
    this.turnOpen = true;
    setImmediate(this.endTurn);
    this.endpoint.send(d);
  }

  /** The requests dispatched later in the same turn of the event loop go out in one write at
   *  its end: at saturation several arrive per turn, and each write costs a system call, the
   *  program's run and often a wake-up of the first function. Only those still waiting for
   *  their answer go: one whose client left meanwhile gave its slot back, and the kernel would
   *  refuse (for good) a sender naming a slot it does not hold. */
  private readonly endTurn = (): void => {
    this.turnOpen = false;
    if (this.outbox.length === 0) return;
    const ds = this.outbox.filter((d) => this.requests.pending(d.reqId));
    this.outbox.length = 0;
    if (ds.length) this.endpoint.send(...ds);
  };


  /** Answers 503 every request still waiting in a kernel queue whose deadline the rest of its
   *  chain no longer fits in, taking its slot back from the queue (see admission/shedding.ts). */
  private shedLate(shedding: Shedding): void {
    const now = performance.now();
    shedding.refresh();
    for (const req of this.requests.pendingRequests()) {
      if (req.slot < 0 || req.chainId === undefined || this.slots.holder(req.slot) !== HOLDER_QUEUED) continue;
      const fnId = this.slots.queuedAt(req.slot);
      const rest = shedding.remainingMs(req.chainId, fnId);
      if (now + rest <= req.deadline!) continue;
      if (!this.slots.withdraw(req.slot)) continue; // an instance took it meanwhile
      this.admission.shed(req.rank);
      const left = Math.max(0, Math.round(req.deadline! - now));
      this.requests.answer(req.id, { error: batonError('BATON_ERR_SHED', `it waited for '${this.fnName(fnId)}', and that function and the rest of the chain take ~${Math.round(rest)} ms; ${left} ms were left`) });
    }
  }

  /** Admission's counters per class, and each (route, class)'s admit probability. */
  admissionStatus(): AdmissionStatus {
    return this.admission.status((chainId) => this.routeLabels[chainId]!);
  }

  get retryAfterS(): number {
    return this.admission.settings.retryAfterS;
  }

  admit(chainId: number, classHeader: string | string[] | undefined, bytes: number): Ticket | BatonError {
    return this.admission.admit(chainId, classHeader, bytes);
  }

  settled(ticket: Ticket, answeredMs: number): void {
    this.admission.done(ticket, answeredMs);
    if (answeredMs >= 0) this.metrics.classAnswered(ticket.rank, answeredMs);
  }

  /** The code of a function's error answer (its JSON body's `error`), if it has one. */
  private errorCodeIn(slot: number, length: number): string | undefined {
    // a worker's error body is short (its message cut at 2048 characters): a longer one is a function's
    // own bytes, not worth parsing on the gateway's thread
    if (length > 16 * 1024) return undefined;
    try {
      const code = (JSON.parse(this.pools.view(slot, length).toString()) as { error?: unknown }).error;
      return typeof code === 'string' ? code : undefined;
    } catch {
      return undefined;
    }
  }

  /** A request's answer; its hop trace goes into the metrics, and into a Server-Timing header
   *  on every error and, when asked (`timing`, or `gateway.serverTiming: always`), on a result. */
  private toAnswer(
    req: Request, chainId: number, outcome: Outcome, tArrive: number, meta: RequestMeta, timing: boolean, traceparent: string | undefined,
  ): Answer {
    const received = nowUs() - tArrive;
    const trace = this.pools.readTrace(req.slot);
    const header = () => serverTiming(trace, (id) => this.fnName(id), 'reply' in outcome ? outcome.reply.tSent : received, received, req.coldFor);
    const status = 'error' in outcome ? outcome.error.status || 500 : outcome.reply.status;
    this.metrics.answered(this.routeLabels[chainId]!, status, trace, received);
    // a function's error code, read once: for a run it shed itself (ctx.willTake, counted with
    // the gateway's own sheds) and for the trace
    const failedWith = 'reply' in outcome && outcome.reply.kind === Kind.Error && (status === 503 || this.tracing) ? this.errorCodeIn(req.slot, outcome.reply.length) : undefined;
    if (status === 503 && failedWith === 'BATON_ERR_SHED') this.admission.shed(req.rank);
    if (this.tracing) {
      const error = 'error' in outcome ? outcome.error.code : failedWith;
      this.tracing.record(
        { requestId: req.id, method: meta.method, route: this.routes[chainId]!.path, url: meta.url, status, tArrive, received, hops: trace, traceparent, error },
        (id) => this.fnName(id),
      );
    }
    if (this.learning) this.scaler.observeRequest(chainId, trace.map((t) => ({ fnId: t.fnId, waitMs: (t.start - t.sent) / 1000, runMs: (t.end - t.start) / 1000 })));
    if ('error' in outcome) return { error: outcome.error, headers: { 'server-timing': header() } };
    const d = outcome.reply;
    this.timing.record(trace, received);
    const headers: Record<string, string> = { 'x-request-id': String(req.id) };
    if (timing || this.alwaysTiming) headers['server-timing'] = header();
    return {
      status: d.status,
      type: d.kind === Kind.Error ? 'application/json' : (this.pools.readType(req.slot) ?? meta.contentType ?? 'application/octet-stream'),
      body: this.pools.view(req.slot, d.length),
      headers,
    };
  }

  /** Tells each instance still holding one of a finished request's slots that it is over (a
   *  failed Grant, status 410): a caller waiting on nested calls stops waiting. Instances that
   *  make no calls ignore it; a chain's normal reply leaves no slot held, so sends nothing. */
  private requestOver(req: Request): void {
    const main = req.slot >= 0 ? this.slots.holder(req.slot) : GATEWAY_KEY;
    if (main === GATEWAY_KEY && !req.callSlots?.size) return; // the usual case: nothing held
    const holders = new Set<number>();
    for (const slot of [req.slot, ...(req.callSlots ?? [])]) {
      const holder = slot >= 0 ? this.slots.holder(slot) : GATEWAY_KEY;
      if (holder !== GATEWAY_KEY) holders.add(holder);
    }
    for (const key of holders) this.endpoint.send(requestOverNotice(key, req.id));
  }

  /** The first instance of a late function is ready: the requests that waited for it — queued
   *  for it by the kernel while it started (a hop in the middle of a chain does not pass the
   *  gateway), or bound to it already by its first Idle notice — waited on a cold start. */
  private coldWaiters(inst: Instance): void {
    for (const req of this.requests.pendingRequests()) {
      const holder = req.slot >= 0 ? this.slots.holder(req.slot) : GATEWAY_KEY;
      if (holder === inst.key || (holder === HOLDER_QUEUED && this.slots.queuedAt(req.slot) === inst.fnId)) markCold(req, inst.fnId);
    }
  }

  private instanceReady(inst: Instance): void {
    this.metrics.instanceReady(this.deployment.functions[inst.fnId]!.label, inst.coldStartMs ?? 0);
  }

  /** Kills an instance that sent what no function may send; its requests are answered 502. */
  private refuse(key: number, why: string): void {
    const inst = this.instances.byKey(key);
    if (inst) this.instances.kill(inst, why, 'BATON_ERR_BAD_DESCRIPTOR');
  }

  /** An instance's data-plane socket closed. If its process is not exiting anyway (it closed
   *  fd 3 itself), it cannot serve any more: kill it. */
  private socketLost(key: number): void {
    const inst = this.instances.byKey(key);
    const child = inst?.child;
    if (!inst || !child) return;
    setTimeout(() => {
      if (inst.child === child) this.instances.kill(inst, 'closed its data-plane socket');
    }, 100).unref();
  }

  private instanceExited(inst: Instance, reason: string, code: BatonErrorCode, wasReady: boolean, retrying: boolean): void {
    if (this.isLate(inst)) {
      this.dispatcher.deactivate(inst.fnId, inst.index);
      // a crashed instance's replacement serves what waits; a start that failed may not
      if (!wasReady && !retrying) this.noInstanceComing(inst.fnId, reason);
    }
    this.requests.instanceGone(inst.key, () => batonError(code, `${this.describeKey(inst.key)} ${reason}`));
  }

  /** A late function with no instance serving and none starting cannot serve what waits for
   *  it (its start failed; a retry may come later): those requests get 503 now, not a timeout. */
  private noInstanceComing(fnId: number, why: string): void {
    const coming = (i: Instance) => i.state === 'starting' || (i.state === 'warming' && i.serveWhenWarm === true);
    if (this.dispatcher.serving(fnId) > 0 || this.instances.of(fnId).some(coming)) return;
    // the client hears which function; the why (paths, a stack) stays in the log
    const n = this.dispatcher.failQueued(fnId, batonError('BATON_ERR_COLD_START_FAILED', `'${this.fnName(fnId)}' (see the gateway's log)`));
    if (n) this.log.warn({ fn: this.fnName(fnId), requests: n, why }, 'answered 503: no instance of their function could be started');
  }

  /** Instances still holding a request past its timeout and the grace are hung (a stopped
   *  process, an endless loop, a handler that never returns): killed, then replaced. */
  private killHung(): void {
    for (const o of this.slots.sweep(HUNG_GRACE_MS)) {
      const inst = this.instances.byKey(o.holder);
      // the hung request has its 504 already; anything else it held was cut short with it
      if (inst) this.instances.kill(inst, `hung: still held request ${o.reqId} ${o.ms} ms after its timeout`);
    }
  }

  fnName(fnId: number): string {
    return fnId === GATEWAY_FN ? 'gateway' : (this.deployment.functions[fnId]?.name ?? `fn${fnId}`);
  }

  /** What /metrics reads at scrape time. */
  metricsSource(): MetricsSource {
    const { deployment: d } = this;
    return {
      inFlight: () => this.requests.inFlight,
      functions: () =>
        d.functions.map((f) => {
          const mine = this.instances.of(f.id);
          const instances: Record<string, number> = { warming: 0, spare: 0, starting: 0, ready: 0, draining: 0 };
          for (const i of mine) if (i.state !== 'stopped') instances[i.state]!++;
          return {
            name: f.label, queued: this.dispatcher.queued(f.id), idleTokens: this.dispatcher.idleTokens(f.id), instances,
            restarts: mine.reduce((n, i) => n + i.restarts, 0),
            refused: f.keys.reduce((n, k) => n + this.dataplane.counters(k).refused, 0),
          };
        }),
      domains: () =>
        d.domains.map((dom) => {
          const free = this.slots.free(dom.id);
          const quarantined = this.slots.quarantinedIn(dom.id);
          return { name: dom.name, free, quarantined, held: d.pool.slotCount - free - quarantined };
        }),
      counters: () => ({
        deadLetters: this.inbox.stats.deadLetters, badDescriptors: this.inbox.stats.badDescriptors,
        strayDescriptors: this.inbox.stats.strayDescriptors, queuedForInstance: this.kernelBinds().queued + this.dispatcher.stats.queued,
        queueFull: this.dispatcher.stats.rejectedFull,
      }),
      scaler: () => this.scaler.status(),
      dataplane: () => this.dataplane.kind,
      admission: () => this.admissionStatus(),
    };
  }

  /** Late binding in the kernel: descriptors bound at send time to an idle instance, those that
   *  waited in a kernel queue, those the kernel handed from a queue to an instance reporting idle,
   *  and those it passed to the dispatcher (a full queue, an instance that had just died). */
  kernelBinds(): { boundFast: number; queued: number; handed: number; toDispatcher: number } {
    let boundFast = 0;
    let queued = this.dataplane.counters(GATEWAY_KEY).queued;
    let handed = 0;
    for (const inst of this.instances.all) {
      const c = this.dataplane.counters(inst.key);
      boundFast += c.boundFast;
      queued += c.queued;
      handed += c.handed;
    }
    return { boundFast, queued, handed, toDispatcher: this.dataplane.counters(GATEWAY_KEY).toDispatcher };
  }

  private isLate(inst: Instance): boolean {
    return this.deployment.functions[inst.fnId]!.binding === 'late';
  }

  /** Runs `count` instances of function `name` (within its min/max), draining any removed; a
   *  function that runs in several domains is named as `name@domain` (its label). */
  async scale(name: string, count: number): Promise<void> {
    const f = this.deployment.functions.find((fn) => fn.label === name);
    if (!f) {
      const labels = this.deployment.functions.filter((fn) => fn.name === name).map((fn) => fn.label);
      throw batonError('BATON_ERR_SCALE', labels.length ? `'${name}' runs in several domains: name one of ${labels.join(', ')}` : `no function named '${name}'`);
    }
    await this.instances.scale(f.id, count, (inst) => this.drain(inst));
  }

  /** The source files the running functions were built from (what `--watch` watches). */
  get sources(): string[] {
    return this.build.sources;
  }

  /** Rebuilds every function and replaces the instances of those whose bundle changed, one at
   *  a time per function (a spare key first, so it keeps serving). Resolves with their names.
   *  A module that no longer builds rejects with BATON_ERR_BUILD and changes nothing. */
  async reload(): Promise<string[]> {
    const next = await buildFunctions(this.deployment);
    const changed = [...next.digests].filter(([name, digest]) => this.build.digests.get(name) !== digest).map(([name]) => name);
    const old = this.build;
    this.build = next;
    this.instances.setBuild(next);
    await this.instances.renewSpares(); // warmed on the old build's runtime
    await Promise.all(
      this.deployment.functions
        .filter((f) => changed.includes(f.name))
        .map(async (f) => {
          for (const inst of this.instances.of(f.id).filter((i) => i.wanted)) await this.instances.replace(inst, (i) => this.drain(i));
        }),
    );
    old.remove(); // running workers loaded their code at start
    return changed;
  }

  /** Resolves once nothing is bound to `inst` any more. */
  private async drain(inst: Instance): Promise<void> {
    if (this.isLate(inst)) return this.dispatcher.drain(inst.fnId, inst.index);
    // early binding: senders stopped picking it (live set); wait for what it holds
    while (this.heldBy(inst.key) > 0) await new Promise((r) => setTimeout(r, 10));
  }

  private heldBy(key: number): number {
    let n = 0;
    for (let slot = 0; slot < this.slots.count; slot++) if (this.slots.owner(slot) && this.slots.holder(slot) === key) n++;
    return n;
  }

  isFunctionUid(uid: number): boolean {
    return this.deployment.functions.some((f) => workerCredentials(this.deployment, f.id)?.uid === uid);
  }

  /** What a request that timed out is told: where it was (still queued, or held by an
   *  instance: running, or unread in its socket), counted in status; waiting for a function the
   *  node had no room for is capacity, not slowness (503). */
  private timedOut(req: Request, ms: number): BatonError {
    if (req.noRoomFor !== undefined && this.dispatcher.serving(req.noRoomFor) === 0) {
      return batonError('BATON_ERR_NO_CAPACITY', `'${this.fnName(req.noRoomFor)}': node.memory had no room for an instance within ${ms} ms`);
    }
    const holder = req.slot >= 0 ? this.slots.holder(req.slot) : GATEWAY_KEY;
    if (holder === HOLDER_QUEUED) {
      this.timeouts.queued++;
      return batonError('BATON_ERR_TIMEOUT', `no answer within ${ms} ms: it was still waiting for '${this.fnName(this.slots.queuedAt(req.slot))}' in its queue`);
    }
    if (holder === GATEWAY_KEY) return batonError('BATON_ERR_TIMEOUT', `no answer within ${ms} ms`);
    this.timeouts.held++;
    return batonError('BATON_ERR_TIMEOUT', `no answer within ${ms} ms: ${this.describeKey(holder)} held it (running it, or not yet reading it)`);
  }

  /** Requests that timed out while waiting in a kernel queue, and while an instance held them. */
  readonly timeouts = { queued: 0, held: 0 };

  describeKey(key: number): string {
    const inst = this.instances.byKey(key);
    return inst ? `function '${this.deployment.functions[inst.fnId]!.label}' instance ${key}` : `key ${key}`;
  }

  /** Functions that cannot serve now: no instance ready, and not one that may run none (a
   *  request for that starts one). */
  notReady(): string[] {
    return this.deployment.functions
      .filter((f) => !(f.binding === 'late' && f.minInstances === 0) && !this.instances.of(f.id).some((i) => i.state === 'ready'))
      .map((f) => f.label);
  }

  status() {
    const binds = this.kernelBinds();
    return {
      dataplane: this.dataplane.kind,
      pool: { slots: this.pools.slotCount, free: this.slots.free(), quarantined: this.slots.quarantined, slotSize: this.deployment.pool.slotSize },
      domains: this.deployment.domains.map((d) => ({ name: d.name, slots: this.deployment.pool.slotCount, free: this.slots.free(d.id) })),
      inFlight: this.requests.inFlight,
      stats: { ...this.inbox.stats, binding: { ...this.dispatcher.stats, ...binds }, timeouts: { ...this.timeouts } },
      scaler: this.scaler.status(),
      admission: this.admissionStatus(),
      node: { memory: this.deployment.node.memory, used: this.instances.usedMemory(), peak: this.instances.peakMemory },
      timing: this.timing.snapshot(),
      functions: this.deployment.functions.map((f) => ({
        name: f.label,
        domain: this.deployment.domains[f.domain]!.name,
        binding: f.binding,
        concurrency: f.concurrency,
        // a spinning function's instances: at idle priority, or at normal (the node busy: then
        // they do not poll; or no idle groups)
        spinPriority: f.spinUs === 0 ? null : this.cgroups?.idleGroups && !this.spinPriority?.busy ? 'idle' : 'normal',
        queued: this.dispatcher.queued(f.id),
        idleTokens: this.dispatcher.idleTokens(f.id),
        instances: this.instances
          .of(f.id)
          .filter((i) => i.state !== 'stopped' || i.gaveUp)
          .map((i) => ({
            key: i.key, pid: i.child?.pid ?? null, state: i.state, restarts: i.restarts, gaveUp: i.gaveUp,
            coldStartMs: i.coldStartMs === undefined ? null : Math.round(i.coldStartMs * 10) / 10,
            polls: f.spinUs > 0 ? i.polls === true : null,
          })),
      })),
    };
  }

  /** Stops listening, answers what is in flight, stops workers, unloads the program. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.scaler.stop();
    this.spinPriority?.stop();
    const closing = this.http?.close();
    const deadline = Date.now() + 2000;
    while (this.requests.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.requests.failAll(() => batonError('BATON_ERR_SHUTTING_DOWN'));
    await closing;
    await this.admin?.close();
    await this.instances.stopAll();
    await this.tracing?.shutdown().catch((err: Error) => this.log.warn(`spans not exported at stop: ${err.message}`));
    clearInterval(this.reaper);
    clearInterval(this.shedder);
    this.endpoint.destroy();
    this.dataplane.destroy();
    this.pools.close();
    this.build.remove();
    this.cgroups?.remove();
  }
}

export type { BatonError };

/** Whether spans are to go anywhere: an OTLP endpoint in the chain file or the environment. */
function tracingAsked(settings: { otlp?: string }): boolean {
  return Boolean(settings.otlp || process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_ENDPOINT);
}

/** The data plane to run on: the caller's choice, else BATON_DATAPLANE, else the chain file's. */
export function dataplaneChoice(option: DataplaneChoice | undefined, chainFile: DataplaneChoice): DataplaneChoice {
  const env = process.env.BATON_DATAPLANE;
  if (option) return option;
  if (env) {
    if (!(DATAPLANE_CHOICES as readonly string[]).includes(env)) {
      throw batonError('BATON_ERR_DATAPLANE', `BATON_DATAPLANE=${env}: expected one of ${DATAPLANE_CHOICES.join(', ')}`);
    }
    return env as DataplaneChoice;
  }
  return chainFile;
}

/** Request `req` waited for an instance of `fnId` to start (Server-Timing says so). */
function markCold(req: Request, fnId: number): void {
  if (!req.coldFor?.includes(fnId)) (req.coldFor ??= []).push(fnId);
}
