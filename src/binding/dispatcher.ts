// Late binding, the gateway's side. Binding itself happens in the kernel: a descriptor
// addressed to a function goes to an idle instance of it, or waits in the function's kernel
// queue; an instance that finishes one descriptor (its Idle notice) gets the oldest waiting
// one, or its token goes back to the idle set — all in the SK_MSG program, no hop through the
// gateway (bpf/baton.bpf.c). The dispatcher owns what the kernel cannot decide alone: which
// instances take work (activate, drain, deactivate), the queues' creation, the notices of
// draining instances (it counts what they still hold), a descriptor the kernel could not place
// (a full queue: 503; an instance that died with its token idle: bound again), and the few
// notices the program hands over instead of settling them in a bounded number of steps.
//
// The invariant — no descriptor waits while an instance of its function is idle — holds by
// one rule both sides follow with sequentially consistent atomics: make a token idle, then
// look at the queue; queue a descriptor, then look for an idle token. Whichever acts second
// sees the other and binds.
import type { Logger } from 'pino';
import type { FunctionSpec } from '../chain/index.ts';
import { GATEWAY_KEY, nowUs, type Descriptor } from '../descriptor/index.ts';
import { batonError, type BatonError } from '../errors.ts';
import type { IdleTokens } from './idle.ts';

/** The kernel's queues, as the gateway reaches them (bpf syscalls). */
export interface KernelQueues {
  /** Makes the queues of each [function, depth] (each class's), all at once. */
  create(specs: [fnId: number, depth: number][]): void;
  /** Appends a descriptor to the function's queue of class `cls`; false when it is full. */
  push(fnId: number, d: Descriptor, cls: number): boolean;
  /** Takes the oldest descriptor of the highest class waiting, or undefined when none waits. */
  pop(fnId: number): Descriptor | undefined;
}

export interface DispatcherHooks {
  /** Sends a descriptor bound to an instance. */
  send(d: Descriptor): void;
  /** Answers a request with an error. */
  fail(reqId: number, error: BatonError): void;
  /** Marks a slot the gateway holds as waiting in function `fnId`'s kernel queue. */
  park(slot: number, fnId: number): void;
  /** The class of the request slot `slot` belongs to (0: the highest). */
  classOf(slot: number): number;
  /** Claims a queued slot (generation `gen`) for the gateway; false: withdrawn, pass it over. */
  claim(slot: number, gen: number): boolean;
  /** Function `fnId` now has `count` instances taking work (0: none; the kernel then passes
   *  its descriptors here). Called before the first one's tokens go idle, after the last leaves. */
  serving?(fnId: number, count: number): void;
  /** A descriptor of request `reqId` waits for `fnId`, which has no instance taking work. */
  waiting?(fnId: number, reqId: number): void;
}

interface Member {
  /** While draining: tokens still bound (descriptors not reported finished). */
  busy: number;
  /** Enlisted and not ready yet: its tokens stay busy (nothing bound) until its own Idle notices. */
  starting?: boolean;
  /** Draining: finishes what it has, gets nothing new; resolves when busy reaches 0. */
  drained?: () => void;
}

interface FunctionState {
  spec: FunctionSpec;
  members: Map<number, Member>; // by instance index
  /** Members not draining, counted again whenever that changes (the gateway asks per request). */
  serving: number;
  /** Of those, the ones not starting. */
  ready: number;
}

export interface DispatcherStats {
  /** Descriptors the gateway itself queued (the kernel's own are in its counters). */
  queued: number;
  /** Queued descriptors the gateway handed to an instance (the kernel's own: its counters). */
  handedFromQueue: number;
  rejectedFull: number;
  /** Idle notices the kernel passed to the gateway to settle. */
  settled: number;
  /** Idle notices from an instance with every token idle already (ignored). */
  spurious: number;
}

/** Rounds of "give a token, find the queue non-empty, take it back, pop" before giving up
 *  (each round takes a descriptor out or finds the queue empty, so this is only a bound). */
const MAX_ROUNDS = 1000;

export class Dispatcher {
  private readonly fns: FunctionState[];
  readonly stats: DispatcherStats = { queued: 0, handedFromQueue: 0, rejectedFull: 0, settled: 0, spurious: 0 };
  /** When an instance's spurious notice was last logged, by key. */
  private readonly warnedAt = new Map<number, number>();

  constructor(
    functions: FunctionSpec[],
    private readonly idle: IdleTokens,
    private readonly queues: KernelQueues,
    private readonly hooks: DispatcherHooks,
    private readonly log: Logger,
  ) {
    this.fns = functions.map((spec) => ({ spec, members: new Map(), serving: 0, ready: 0 }));
    for (const f of functions) idle.clear(f.id);
    queues.create(functions.filter((f) => f.binding === 'late').map((f) => [f.id, f.queueDepth]));
  }

  /** An instance is starting: a member with every token busy, so nothing is bound to it until
   *  it is ready and sends one Idle notice per token — each then takes the oldest waiting
   *  descriptor of the highest class, in the kernel, as after every descriptor it finishes. What
   *  waits is bound the moment the instance can run it, without a trip through the gateway and
   *  without waking it again; and a start that fails held nothing. */
  enlist(fnId: number, index: number): void {
    const f = this.fns[fnId]!;
    this.idle.revoke(fnId, index, f.spec.concurrency);
    f.members.set(index, { busy: 0, starting: true });
    this.servingChanged(f);
    this.idle.setMember(fnId, index, f.spec.concurrency, true);
  }

  /** An enlisted instance said it is ready (after its Idle notices). Returns whether it is the
   *  function's first one ready (the others starting, or none). */
  started(fnId: number, index: number): boolean {
    const f = this.fns[fnId]!;
    const m = f.members.get(index);
    if (!m?.starting) return false;
    m.starting = false;
    this.count(f);
    return !m.drained && f.ready === 1;
  }

  /** Instances of `fnId` ready to take work (not starting, not draining). */
  ready(fnId: number): number {
    return this.fns[fnId]!.ready;
  }

  /** An instance is ready and its tokens are settled here, as its own Idle notices would be in
   *  the kernel: it takes waiting work first, then its remaining tokens go idle. (The gateway
   *  enlists its instances and lets their notices do this; see enlist.) */
  activate(fnId: number, index: number): void {
    const f = this.fns[fnId]!;
    this.enlist(fnId, index);
    this.started(fnId, index);
    for (let t = 0; t < f.spec.concurrency; t++) this.settle(f, index);
  }

  /** An instance is gone (crashed or stopped): it can no longer be bound. */
  deactivate(fnId: number, index: number): void {
    const f = this.fns[fnId]!;
    this.idle.setMember(fnId, index, f.spec.concurrency, false);
    this.idle.revoke(fnId, index, f.spec.concurrency);
    const m = f.members.get(index);
    f.members.delete(index);
    if (!m?.drained) this.servingChanged(f);
    m?.drained?.();
  }

  /** Stops binding to an instance; resolves once everything bound to it has finished. */
  drain(fnId: number, index: number): Promise<void> {
    const f = this.fns[fnId]!;
    const m = f.members.get(index);
    if (!m) return Promise.resolve();
    // not a member first: from now on its notices come here (the kernel checks membership
    // after returning a token, and takes it back if the instance is no member any more)
    this.idle.setMember(fnId, index, f.spec.concurrency, false);
    m.busy = f.spec.concurrency - this.idle.revoke(fnId, index, f.spec.concurrency);
    return new Promise((resolve) => {
      m.drained = resolve; // draining from now on: no longer counted as serving
      this.servingChanged(f);
      if (m.busy <= 0) this.finishDrain(f, index);
    });
  }

  /** Whether `fnId` is a late-bound function (one the dispatcher can queue for). */
  accepts(fnId: number): boolean {
    return this.fns[fnId]?.spec.binding === 'late';
  }

  /** A function-addressed descriptor the kernel could not place (its queue was full, or the
   *  instance it picked had just died): it is in the gateway's hands now. */
  onCall(d: Descriptor): void {
    const f = this.fns[d.fnId]!;
    const index = this.idle.take(f.spec.id, f.spec.concurrency);
    if (index >= 0) {
      this.bind(f, index, d);
      return;
    }
    this.hooks.park(d.slot, f.spec.id);
    if (!this.queues.push(f.spec.id, d, this.hooks.classOf(d.slot))) {
      this.hooks.claim(d.slot, d.gen); // back in the gateway's hands, to answer it
      this.stats.rejectedFull++;
      this.hooks.fail(d.reqId, batonError('BATON_ERR_QUEUE_FULL', `function '${f.spec.name}' has ${f.spec.queueDepth} waiting`));
      return;
    }
    this.stats.queued++;
    this.idle.addQueued(f.spec.id, 1);
    // a token may have gone idle meanwhile: the kernel looks at the queue after returning one
    const late = this.idle.take(f.spec.id, f.spec.concurrency);
    if (late >= 0) this.settle(f, late);
    else if (this.serving(f.spec.id) === 0) this.hooks.waiting?.(f.spec.id, d.reqId);
  }

  /** Answers every live descriptor waiting for `fnId` with `error` (its instance could not
   *  be started); returns how many. */
  failQueued(fnId: number, error: BatonError): number {
    let n = 0;
    for (let d = this.queues.pop(fnId); d; d = this.queues.pop(fnId)) {
      this.idle.addQueued(fnId, -1);
      if (!this.hooks.claim(d.slot, d.gen)) {
        this.idle.addStale(fnId);
        continue;
      }
      this.hooks.fail(d.reqId, error);
      n++;
    }
    return n;
  }

  /** Instances of `fnId` taking work (ready members, not draining). */
  serving(fnId: number): number {
    return this.fns[fnId]!.serving;
  }

  /** Requests at `fnId`: bound to its instances (running) or waiting in its queue. */
  inFlight(fnId: number): number {
    const f = this.fns[fnId]!;
    let bound = 0;
    for (const m of f.members.values()) bound += m.drained ? m.busy : m.starting ? 0 : f.spec.concurrency;
    return Math.max(0, bound - this.idle.count(fnId)) + this.idle.live(fnId);
  }

  /** Counts `f`'s serving and ready members again (they change only with its membership). */
  private count(f: FunctionState): void {
    f.serving = f.ready = 0;
    for (const m of f.members.values()) {
      if (m.drained) continue;
      f.serving++;
      if (!m.starting) f.ready++;
    }
  }

  private servingChanged(f: FunctionState): void {
    this.count(f);
    const n = f.serving;
    this.hooks.serving?.(f.spec.id, n);
    // work queued before the last instance left has nobody to take it: say so
    if (n === 0 && this.idle.live(f.spec.id) > 0) this.hooks.waiting?.(f.spec.id, -1);
  }

  /** Instance `key` of `fnId` finished one descriptor, and the kernel left it to us. Returns
   *  false for a notice no work explains (every token of the instance idle already). */
  onIdle(fnId: number, key: number): boolean {
    const f = this.fns[fnId]!;
    const index = key - f.spec.keys[0]!;
    const m = f.members.get(index);
    if (!m) return true; // gone meanwhile
    if (m.drained) {
      if (--m.busy <= 0) this.finishDrain(f, index);
      return true;
    }
    this.stats.settled++;
    if (!this.settle(f, index)) {
      // only a broken or hostile worker sends these: counted, logged at most once a second
      this.stats.spurious++;
      const now = Date.now();
      if (now - (this.warnedAt.get(key) ?? 0) >= 1000) {
        this.warnedAt.set(key, now);
        this.log.warn({ fn: f.spec.name, key, spurious: this.stats.spurious }, 'idle notice from an instance with every token idle: ignored');
      }
      return false;
    }
    return true;
  }

  /** Live descriptors of `fnId` waiting in its kernel queue (withdrawn ones not counted, though
   *  they take room there until an instance passes them over). */
  queued(fnId: number): number {
    return this.idle.live(fnId);
  }

  /** A descriptor of `fnId`'s queue was withdrawn (its request is over). */
  withdrawn(fnId: number): void {
    if (fnId >= 0 && fnId < this.fns.length) this.idle.addWithdrawn(fnId);
  }

  idleTokens(fnId: number): number {
    return this.idle.count(fnId);
  }

  /** Live waiting descriptors and idle tokens of `fnId` at one instant (see IdleTokens). */
  snapshot(fnId: number): { queued: number; idle: number; consistent: boolean; events: number } {
    return this.idle.snapshot(fnId);
  }

  /** One of instance `index`'s tokens is free: it takes the oldest waiting descriptor, or the
   *  token goes idle (then the queue is looked at again). False if every token was idle. */
  private settle(f: FunctionState, index: number): boolean {
    const { id, concurrency } = f.spec;
    if (this.handNext(f, index)) return true;
    const t = this.idle.give(id, index, concurrency);
    if (t < 0) return false;
    for (let round = 0; round < MAX_ROUNDS && this.idle.queued(id) > 0; round++) {
      if (!this.idle.takeBack(id, t)) return true; // the kernel bound it meanwhile
      if (this.handNext(f, index)) return true;
      if (this.idle.give(id, index, concurrency) < 0) return true;
    }
    return true;
  }

  /** Takes the oldest live waiting descriptor out of the kernel queue for instance `index`;
   *  false if none waits. */
  private handNext(f: FunctionState, index: number): boolean {
    for (;;) {
      const d = this.queues.pop(f.spec.id);
      if (!d) return false;
      this.idle.addQueued(f.spec.id, -1);
      if (!this.hooks.claim(d.slot, d.gen)) {
        this.idle.addStale(f.spec.id); // withdrawn: its request is over
        continue;
      }
      this.stats.handedFromQueue++;
      this.bind(f, index, d);
      return true;
    }
  }

  private bind(f: FunctionState, index: number, d: Descriptor): void {
    this.hooks.send({ ...d, key: f.spec.keys[index]!, sender: GATEWAY_KEY, tBind: nowUs() - d.tArrive });
  }

  private finishDrain(f: FunctionState, index: number): void {
    const m = f.members.get(index);
    f.members.delete(index);
    m?.drained?.();
    if (this.serving(f.spec.id) === 0 && this.idle.live(f.spec.id) > 0) this.hooks.waiting?.(f.spec.id, -1);
  }
}
