// Function instances: one worker process per instance, each with its data-plane socket (fd 3)
// and the pool (fd 4). Workers run unprivileged (nobody) when the gateway runs as root.
// Instances join and leave at run time: scale() starts new ones or drains running ones
// (no new work, finish what they hold, then stop). One that exits while wanted is
// replaced, with backoff; one that keeps failing before it is ready is given up on. One that
// is not ready within the start timeout (a module that loops at import) is killed.
// A process starts in two steps: warming (Node, baton's runtime, its cgroup, socket and pool;
// then it says 'spare') and serving (it loads the function's bundle; then 'ready'). A function
// that can scale keeps `spares` processes warmed on keys no instance uses, so adding an
// instance (scaling up, replacing one) costs loading the module only.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Deployment } from '../chain/index.ts';
import type { Dataplane } from '../dataplane/dataplane.ts';
import { batonError, type BatonErrorCode } from '../errors.ts';
import type { FunctionBuild } from '../build/functions.ts';
import type { Cgroups } from '../isolation/cgroups.ts';
import { workerCredentials } from '../isolation/credentials.ts';
import { native } from '../native/index.ts';
import type { PoolSet } from '../pool/index.ts';
import { WORKER_ENV, type GatewayMessage, type WorkerConfig, type WorkerMessage } from '../worker/config.ts';

const MAX_FAST_FAILURES = 5;
const STOP_GRACE_MS = 2000;
/** Spares are warmed this long after the first instances are up: booting Node takes a CPU for
 *  ~100 ms, which the gateway's first requests should not have to share. */
const SPARES_AFTER_MS = 250;

/** warming → spare: a process with baton's runtime loaded, no function yet (not an instance);
 *  starting → ready → draining → stopped: an instance. */
export type InstanceState = 'stopped' | 'warming' | 'spare' | 'starting' | 'ready' | 'draining';

export interface Instance {
  fnId: number;
  /** Position among its function's reserved keys. */
  index: number;
  key: number;
  state: InstanceState;
  /** Whether it should be running: an exit while wanted is a crash, and is replaced. */
  wanted: boolean;
  child?: ChildProcess;
  restarts: number;
  /** Consecutive exits before becoming ready. */
  failures: number;
  lastError?: string;
  gaveUp: boolean;
  /** When the current start was asked for (performance.now()). */
  startedAt: number;
  /** ms from the start asked for to ready (spawned then, or from a spare), for the last start. */
  coldStartMs?: number;
  /** Why the gateway killed the current process, and the error its requests get. */
  killedFor?: { why: string; code: BatonErrorCode };
  /** Whether the process should go on to serve once warm (false: it stays a spare). */
  serveWhenWarm?: boolean;
  /** The start in progress, settled when ready or when the process is gone. */
  started?: { promise: Promise<void>; resolve(): void; reject(err: Error): void };
  /** A spare being stopped to make room for another function's instance. */
  yielding?: boolean;
  /** (spinUs) whether its process polls after each descriptor, as it last said (see setSpinning). */
  polls?: boolean;
}

export interface InstancesOptions {
  /** Spawn → ready, at most. */
  startTimeoutMs: number;
  /** The request timeout: workers hand back descriptors whose deadline passed before they ran. */
  timeoutMs: number;
  /** What workers run. */
  build: FunctionBuild;
  /** Where instances' resource limits are enforced; undefined: not enforced. */
  cgroups?: Cgroups;
  /** Bytes every function process (instance or spare, at its function's `memory`) may take
   *  together: the node budget. */
  budget: number;
}

export interface InstancesEvents {
  /** An instance's start was asked for (from a spare, a warming process or a new one), before
   *  its process is told to serve: late binding enlists it here. */
  starting: [inst: Instance];
  ready: [inst: Instance];
  /** An instance's process is gone: requests it held are answered with `code`. `retrying`: it
   *  had not started yet, was killed from outside (a signal, not its own exit nor the gateway's
   *  kill) and is started again — what waits for it may wait for that start. */
  exit: [inst: Instance, reason: string, code: BatonErrorCode, wasReady: boolean, retrying: boolean];
  /** The set of running instances changed, through one of function `fnId`'s (early binding
   *  routes over it). */
  live: [live: number[][], fnId: number];
}

/** Waits until nothing is bound to the instance any more (binding-specific). */
export type Drainer = (inst: Instance) => Promise<void>;

export class Instances extends EventEmitter<InstancesEvents> {
  readonly all: Instance[];
  private stopping = false;
  /** Set once the first instances are up (see startAll). */
  private sparesWanted = false;
  /** Spares to warm again after a start took one, by function (see refillSpares). */
  private readonly refills = new Map<number, NodeJS.Timeout>();

  constructor(
    private readonly deployment: Deployment,
    private readonly dataplane: Dataplane,
    private readonly pools: PoolSet,
    private readonly log: Logger,
    private readonly options: InstancesOptions,
  ) {
    super();
    this.all = deployment.functions.flatMap((f) =>
      f.keys.map((key, index) => ({
        fnId: f.id, index, key, state: 'stopped' as InstanceState, wanted: false, restarts: 0, failures: 0,
        gaveUp: false, startedAt: 0,
      })),
    );
  }

  of(fnId: number): Instance[] {
    return this.all.filter((i) => i.fnId === fnId);
  }

  byKey(key: number): Instance | undefined {
    return this.all.find((i) => i.key === key);
  }

  /** Kills the process of `inst` now (SIGKILL works on stopped and spinning processes too);
   *  its requests get `code`. It is replaced if it is still wanted. */
  kill(inst: Instance, why: string, code: BatonErrorCode = 'BATON_ERR_WORKER_CRASHED'): void {
    const child = inst.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    inst.killedFor ??= { why, code };
    const fn = this.deployment.functions[inst.fnId]!;
    this.log.warn({ fn: fn.name, key: inst.key, pid: child.pid }, `killing instance: ${why}`);
    child.kill('SIGKILL');
  }

  /** The most of the node budget ever taken (checked at every spawn). */
  peakMemory = 0;

  /** Bytes of the node budget taken: every process, and every instance wanted back (restarting). */
  usedMemory(): number {
    let used = 0;
    for (const i of this.all) if (i.state !== 'stopped' || i.wanted) used += this.deployment.functions[i.fnId]!.memory;
    return used;
  }

  /** How many more instances of `fnId` the budget lets start now: its own warm processes cost
   *  nothing more, and other functions' spares give way (see scale). */
  room(fnId: number): number {
    const f = this.deployment.functions[fnId]!;
    const warm = this.warmUnused(fnId);
    const givesWay = this.sparesOf(fnId).reduce((n, i) => n + this.deployment.functions[i.fnId]!.memory, 0);
    return warm + Math.max(0, Math.floor((this.options.budget - this.usedMemory() + givesWay) / f.memory));
  }

  /** `fnId`'s processes started and not an instance (spares, or warming): they start an
   *  instance without taking more of the budget. */
  private warmUnused(fnId: number): number {
    return this.unused(fnId).filter((i) => i.state !== 'stopped').length;
  }

  /** Other functions' spare processes (no instance yet, none claimed): what gives way first
   *  when the budget is short, before any instance is released. */
  private sparesOf(exceptFnId: number): Instance[] {
    return this.all.filter((i) => i.fnId !== exceptFnId && !i.wanted && !i.yielding && (i.state === 'spare' || i.state === 'warming'));
  }

  /** Stops other functions' spares until `fnId` has room for `count` more; claimed at once, so
   *  two functions growing together never count the same spare. */
  private async yieldSpares(fnId: number, count: number): Promise<void> {
    const f = this.deployment.functions[fnId]!;
    let short = (count - this.warmUnused(fnId)) * f.memory - (this.options.budget - this.usedMemory());
    const stops: Promise<void>[] = [];
    for (const spare of this.sparesOf(fnId)) {
      if (short <= 0) break;
      spare.yielding = true;
      short -= this.deployment.functions[spare.fnId]!.memory;
      this.log.debug({ fn: this.deployment.functions[spare.fnId]!.name, for: f.name }, 'a spare gives way: node.memory is short');
      stops.push(this.stop(spare).finally(() => (spare.yielding = false)));
    }
    await Promise.all(stops);
  }

  /** Keys of each function's ready instances. */
  live(): number[][] {
    return this.deployment.functions.map((f) => this.of(f.id).filter((i) => i.state === 'ready').map((i) => i.key));
  }

  /** Starts each function's initial instances (then, a moment later, its spares); rejects with
   *  the first failure. */
  async startAll(): Promise<void> {
    const first = this.deployment.functions.flatMap((f) => this.of(f.id).slice(0, f.instances));
    await Promise.all(first.map((inst) => this.start(inst)));
    setTimeout(() => {
      this.sparesWanted = true;
      for (const f of this.deployment.functions) this.keepSpares(f.id);
    }, SPARES_AFTER_MS).unref();
  }

  /** Brings function `fnId` to `count` running instances: starts (spares first) or drains the difference. */
  async scale(fnId: number, count: number, drainer: Drainer): Promise<void> {
    const f = this.deployment.functions[fnId];
    if (!f) throw batonError('BATON_ERR_SCALE', `no function ${fnId}`);
    if (!Number.isInteger(count) || count < f.minInstances || count > f.maxInstances) {
      throw batonError('BATON_ERR_SCALE', `'${f.name}' runs ${f.minInstances}..${f.maxInstances} instances, not ${count}`);
    }
    const mine = this.of(fnId);
    const running = mine.filter((i) => i.wanted);
    if (count - running.length > this.room(fnId)) {
      throw batonError('BATON_ERR_SCALE', `'${f.name}' cannot run ${count}: node.memory (${this.options.budget} bytes) has room for ${running.length + this.room(fnId)} at ${f.memory} bytes each`);
    }
    if (count > running.length) {
      await this.yieldSpares(fnId, count - running.length);
      await Promise.all(this.unused(fnId).slice(0, count - running.length).map((inst) => this.start(inst)));
      this.refillSpares(fnId);
    } else {
      await Promise.all(running.slice(count).reverse().map((inst) => this.retire(inst, drainer)));
      // what was released may let spares that gave way come back
      for (const f of this.deployment.functions) this.keepSpares(f.id);
    }
  }

  /** Keys of `fnId` no instance uses, warm spares first. */
  private unused(fnId: number): Instance[] {
    const free = this.of(fnId).filter((i) => !i.wanted && !i.gaveUp && (i.state === 'stopped' || i.state === 'spare' || i.state === 'warming'));
    return [...free.filter((i) => i.state === 'spare'), ...free.filter((i) => i.state === 'warming'), ...free.filter((i) => i.state === 'stopped')];
  }

  /** keepSpares once the start that took a spare has served its first requests: spawning
   *  blocks this event loop ~1–3 ms (fork and exec) and a booting Node takes a CPU for ~100 ms,
   *  which the requests that waited for the start should not have to share. */
  private refillSpares(fnId: number): void {
    if (this.refills.has(fnId)) return;
    this.refills.set(fnId, setTimeout(() => {
      this.refills.delete(fnId);
      this.keepSpares(fnId);
    }, SPARES_AFTER_MS).unref());
  }

  /** Warms processes on unused keys until the function has its `spares`. */
  private keepSpares(fnId: number): void {
    if (this.stopping || !this.sparesWanted) return;
    const f = this.deployment.functions[fnId]!;
    const free = this.unused(fnId);
    let warm = free.filter((i) => i.state !== 'stopped').length;
    for (const inst of free.filter((i) => i.state === 'stopped')) {
      if (warm >= f.spares || this.usedMemory() + f.memory > this.options.budget) break;
      warm++;
      this.spawn(inst, false).catch((err: Error) => {
        this.log.warn({ fn: f.name, key: inst.key, err: err.message }, 'a spare process did not warm up');
      });
    }
  }

  /** Stops every spare of every function (they run the previous build) and warms new ones. */
  async renewSpares(): Promise<void> {
    await Promise.all(this.all.filter((i) => !i.wanted && (i.state === 'spare' || i.state === 'warming')).map((i) => this.stop(i)));
    for (const f of this.deployment.functions) this.keepSpares(f.id);
  }

  /** What instances started from now on run (`baton up --watch` swaps in a new build). */
  setBuild(build: FunctionBuild): void {
    this.options.build = build;
  }

  /** Replaces a running instance by a fresh process: an unused key is started first when the
   *  function has one (it never stops serving), else the instance is drained and restarted. */
  async replace(inst: Instance, drainer: Drainer): Promise<void> {
    const other = this.unused(inst.fnId)[0];
    if (other) {
      await this.start(other);
      await this.retire(inst, drainer);
    } else {
      await this.retire(inst, drainer);
      inst.gaveUp = false;
      inst.failures = 0;
      await this.start(inst);
    }
    this.keepSpares(inst.fnId);
  }

  /** Drains an instance (nothing new, finish what it holds), then stops it. */
  async retire(inst: Instance, drainer: Drainer): Promise<void> {
    inst.wanted = false;
    // one starting may take work the moment it is ready: let it, then drain it like the others
    if (inst.state === 'starting' || (inst.state === 'warming' && inst.serveWhenWarm)) await inst.started?.promise.catch(() => {});
    if (inst.state === 'ready') {
      inst.state = 'draining';
      this.emit('live', this.live(), inst.fnId);
      await drainer(inst);
    }
    await this.stop(inst);
  }

  /** Starts one instance (from its spare process if it has one); resolves when it is ready. */
  private start(inst: Instance): Promise<void> {
    let settle!: { resolve(): void; reject(err: Error): void };
    const ready = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    inst.started = { promise: ready, ...settle };
    inst.wanted = true;
    inst.startedAt = performance.now();
    this.emit('starting', inst);
    if (inst.state === 'spare') this.serve(inst);
    else if (inst.state === 'warming') inst.serveWhenWarm = true;
    else this.spawn(inst, true).catch(() => {}); // its failure settles `ready`
    return ready;
  }

  /** Tells a warm process to load its function and serve. */
  private serve(inst: Instance): void {
    const fn = this.deployment.functions[inst.fnId]!;
    const child = inst.child!;
    inst.state = 'starting';
    child.send({ type: 'serve', entry: this.options.build.modules.get(fn.name)! } satisfies GatewayMessage);
    this.startTimer(inst, child, `not ready within ${this.options.startTimeoutMs} ms`);
  }

  private startTimer(inst: Instance, child: ChildProcess, why: string): void {
    const state = inst.state;
    setTimeout(() => {
      if (inst.child === child && inst.state === state) this.kill(inst, why, 'BATON_ERR_START_TIMEOUT');
    }, this.options.startTimeoutMs).unref();
  }

  /** Starts a process on `inst`'s key; resolves once it is warm (a spare). `serve`: it goes on
   *  to load its function and serve at once. */
  private spawn(inst: Instance, serve: boolean): Promise<void> {
    const fn = this.deployment.functions[inst.fnId]!;
    // one that spins polls at idle priority: it never keeps a process with work off a CPU
    this.options.cgroups?.prepare(inst.key, { memoryBytes: fn.memory, pids: fn.pids, cpu: fn.cpu, idle: fn.spinUs > 0 });
    const { fd } = this.dataplane.open(inst.key, inst.fnId);
    this.peakMemory = Math.max(this.peakMemory, this.usedMemory() + (inst.wanted ? 0 : fn.memory));
    const cfg: WorkerConfig = {
      fnId: inst.fnId,
      key: inst.key,
      gatewayPid: process.pid,
      timeoutMs: this.options.timeoutMs,
      shed: this.deployment.gateway.admission.shed,
      deployment: { functions: this.deployment.functions, chains: this.deployment.chains, pool: this.deployment.pool },
      slotBase: this.deployment.domains[fn.domain]!.slotBase,
      live: this.live(),
    };
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [this.options.build.worker], {
        // its own domain's pool only
        stdio: ['ignore', 'pipe', 'pipe', fd, this.pools.fd(fn.domain), 'ipc'],
        // only what the chain file gives it, and baton's own: nothing of the gateway's
        env: { ...fn.env, [WORKER_ENV]: JSON.stringify(cfg), BATON_ADDON: this.options.build.addon },
        ...workerCredentials(this.deployment, inst.fnId),
        // a session of its own: within a session any process may send SIGCONT to any other
        detached: true,
      });
    } finally {
      native((a) => a.closeFd(fd)); // the child has its copy; ours would keep the socket alive
    }
    Object.assign(inst, { child, state: 'warming', serveWhenWarm: serve, killedFor: undefined, polls: fn.spinUs > 0 });
    // into its cgroup before any function code runs; the worker waits for 'start'
    try {
      if (child.pid) this.options.cgroups?.place(inst.key, child.pid);
      // one started to serve at once loads its function as soon as it is warm, without waiting
      // for a 'serve' (the gateway's event loop may be busy loading its own code meanwhile)
      child.send({
        type: 'start', serve: serve ? this.options.build.modules.get(fn.name)! : undefined, collator: this.options.build.collates.has(fn.name),
      } satisfies GatewayMessage);
    } catch (err) {
      this.kill(inst, `could not be placed in its cgroup: ${(err as Error).message}`, 'BATON_ERR_START_FAILED');
    }
    this.startTimer(inst, child, `not ready within ${this.options.startTimeoutMs} ms`);
    this.logOutput(child, fn.name, inst.key);
    return new Promise((resolve, reject) => {
      // a worker runs untrusted code: believe only well-formed messages, each at its time
      child.on('message', (msg: WorkerMessage) => {
        if (typeof msg !== 'object' || msg === null || inst.child !== child) return;
        if (msg.type === 'spare' && inst.state === 'warming') {
          resolve();
          if (inst.serveWhenWarm) this.serve(inst);
          else inst.state = 'spare';
        } else if (msg.type === 'ready' && inst.state === 'starting') {
          inst.state = 'ready';
          inst.failures = 0;
          inst.coldStartMs = performance.now() - inst.startedAt;
          this.log.debug({ fn: fn.name, key: inst.key, pid: child.pid, ms: inst.coldStartMs }, 'instance ready');
          this.emit('ready', inst);
          this.emit('live', this.live(), inst.fnId);
          const started = inst.started;
          inst.started = undefined;
          started?.resolve();
          this.refillSpares(inst.fnId); // it may have been one
        } else if (msg.type === 'fatal' && (inst.state === 'warming' || inst.state === 'starting')) {
          inst.lastError = String(msg.message).slice(0, 8192);
        } else if (msg.type === 'spin' && typeof msg.on === 'boolean') {
          inst.polls = msg.on;
        } else if (msg.type === 'log' && (msg.level === 'warn' || msg.level === 'error')) {
          const reqId = Number.isInteger(msg.reqId) ? msg.reqId : undefined;
          this.log[msg.level]({ fn: fn.name, key: inst.key, reqId }, String(msg.message).slice(0, 8192));
        } else if (msg.type === 'output' && (msg.stream === 'stdout' || msg.stream === 'stderr')) {
          const reqId = Number.isInteger(msg.reqId) ? msg.reqId : undefined;
          const text = String(msg.text).slice(0, 8192).replace(/\n$/, '');
          this.log.info({ fn: fn.name, key: inst.key, reqId, stream: msg.stream }, text);
        }
      });
      child.on('error', (err) => {
        inst.lastError = err.message;
      });
      child.on('exit', (code, signal) => {
        const overMemory = signal === 'SIGKILL' && !inst.killedFor && this.options.cgroups?.killedForMemory(inst.key);
        const killed = overMemory
          ? { why: `over its memory limit (${fn.memory} bytes) — the kernel killed it`, code: 'BATON_ERR_MEMORY_LIMIT' as const }
          : inst.killedFor;
        const reason = killed ? `killed: ${killed.why}` : signal ? `killed by ${signal}` : `exited with code ${code}`;
        const wasReady = inst.state === 'ready' || inst.state === 'draining';
        const wasInstance = wasReady || inst.state === 'starting' || inst.serveWhenWarm === true;
        inst.state = 'stopped';
        inst.child = undefined;
        this.dataplane.close(inst.key);
        const what = `function '${fn.name}' (${fn.module}) instance ${inst.key}`;
        const failure =
          killed?.code === 'BATON_ERR_START_TIMEOUT'
            ? batonError('BATON_ERR_START_TIMEOUT', `${what} was ${reason}: does the module loop or block when it is imported?`)
            : batonError('BATON_ERR_START_FAILED', `${what} ${reason}: ${inst.lastError ?? 'no message'}`);
        reject(failure); // (a no-op once it was warm)
        if (!wasInstance) return; // a spare: nothing depended on it
        // a module that threw or hung at import fails the same way again: only a signal from
        // outside (kill -9, the OOM killer) is worth waiting out
        const retrying = !wasReady && signal !== null && !killed && inst.wanted && !this.stopping && inst.failures + 1 < MAX_FAST_FAILURES;
        this.emit('exit', inst, reason, killed?.code ?? 'BATON_ERR_WORKER_CRASHED', wasReady, retrying);
        if (wasReady) this.emit('live', this.live(), inst.fnId);
        if (!wasReady) {
          inst.failures++;
          const started = inst.started;
          inst.started = undefined;
          started?.reject(failure);
        }
        if (this.stopping || !inst.wanted) return;
        this.log.warn({ fn: fn.name, key: inst.key, reason }, 'instance exited; replacing it');
        this.respawn(inst);
      });
    });
  }

  /** What reaches a worker's fds 1 and 2 without going through its console (native code,
   *  a crash report), line by line into the log. */
  private logOutput(child: ChildProcess, fn: string, key: number): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      // by hand, not readline: a line is cut at 8 KiB, so a worker cannot grow our memory
      let pending = '';
      child[stream]?.setEncoding('utf8').on('data', (chunk: string) => {
        const lines = (pending + chunk).split('\n');
        pending = lines.pop()!;
        if (pending.length > 8192) lines.push(pending), (pending = '');
        for (const line of lines) this.log.info({ fn, key, stream }, line.slice(0, 8192));
      });
    }
  }

  private respawn(inst: Instance): void {
    const fn = this.deployment.functions[inst.fnId]!;
    if (inst.failures >= MAX_FAST_FAILURES) {
      inst.gaveUp = true;
      inst.wanted = false;
      this.log.error({ fn: fn.name, key: inst.key, error: inst.lastError }, 'instance keeps failing before it is ready; giving up');
      return;
    }
    const delay = Math.min(100 * 2 ** inst.failures, 5000);
    setTimeout(() => {
      if (this.stopping || !inst.wanted || inst.child) return;
      inst.restarts++;
      this.start(inst).catch(() => {}); // a failed restart exits and comes back here
    }, delay).unref();
  }

  /** Tells instance `key`'s process whether to poll after each descriptor (spinUs). */
  setSpinning(key: number, on: boolean): void {
    const child = this.byKey(key)?.child;
    if (child?.connected) child.send({ type: 'spin', on } satisfies GatewayMessage, () => {}); // gone: its next process polls
  }

  /** Sends a message to every running worker. */
  broadcast(msg: GatewayMessage): void {
    for (const inst of this.all) if (inst.child?.connected) inst.child.send(msg);
  }

  /** SIGTERM, then SIGKILL after a grace period; resolves when the process is gone. */
  private stop(inst: Instance): Promise<void> {
    const child = inst.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const force = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      child.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }

  /** Stops every worker and waits for all. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    for (const inst of this.all) inst.wanted = false;
    await Promise.all(this.all.map((inst) => this.stop(inst)));
  }
}

