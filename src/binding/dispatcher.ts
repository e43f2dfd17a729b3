// Late binding's slow path. A descriptor addressed to a function reaches the dispatcher
// (key 0) only when the kernel found no idle token for it; it waits here in that
// function's FIFO. When an instance reports it finished one descriptor (an Idle notice),
// the dispatcher hands it the oldest waiting descriptor, or returns its token to the idle
// set. Only the dispatcher returns tokens, so the invariant holds by construction: no
// descriptor waits here while an instance of its function has an idle token.
import type { Logger } from 'pino';
import type { FunctionSpec } from '../chain/index.ts';
import { GATEWAY_KEY, nowUs, type Descriptor } from '../descriptor/index.ts';
import { batonError, type BatonError } from '../errors.ts';
import type { IdleTokens } from './idle.ts';

export interface DispatcherHooks {
  /** Sends a descriptor bound to an instance. */
  send(d: Descriptor): void;
  /** Answers a request with an error. */
  fail(reqId: number, error: BatonError): void;
  /** Whether the request is still waiting for an answer. */
  pending(reqId: number): boolean;
}

interface Member {
  /** While draining: descriptors bound to it and not yet reported finished. */
  busy: number;
  /** Draining: finishes what it has, gets nothing new; resolves when busy reaches 0. */
  drained?: () => void;
}

interface FunctionState {
  spec: FunctionSpec;
  /** Waiting descriptors by slot (a request's nested calls wait as several); a Map keeps
   *  arrival order. */
  queue: Map<number, Descriptor>;
  members: Map<number, Member>; // by instance index
}

export interface DispatcherStats {
  queued: number; // descriptors that had to wait in a FIFO
  handedFromQueue: number;
  rejectedFull: number;
}

export class Dispatcher {
  private readonly fns: FunctionState[];
  readonly stats: DispatcherStats = { queued: 0, handedFromQueue: 0, rejectedFull: 0 };

  constructor(
    functions: FunctionSpec[],
    private readonly idle: IdleTokens,
    private readonly hooks: DispatcherHooks,
    private readonly log: Logger,
  ) {
    this.fns = functions.map((spec) => ({ spec, queue: new Map(), members: new Map() }));
    for (const f of functions) idle.clear(f.id);
  }

  /** An instance is ready: it takes waiting work first, then its remaining tokens go idle. */
  activate(fnId: number, index: number): void {
    const f = this.fns[fnId]!;
    f.members.set(index, { busy: 0 });
    for (let t = 0; t < f.spec.concurrency; t++) {
      if (!this.handNext(f, index)) this.idle.give(fnId, index, f.spec.concurrency);
    }
  }

  /** An instance is gone (crashed or stopped): it can no longer be bound. */
  deactivate(fnId: number, index: number): void {
    const f = this.fns[fnId]!;
    this.idle.revoke(fnId, index, f.spec.concurrency);
    const m = f.members.get(index);
    f.members.delete(index);
    m?.drained?.();
  }

  /** Stops binding to an instance; resolves once everything bound to it has finished. */
  drain(fnId: number, index: number): Promise<void> {
    const f = this.fns[fnId]!;
    const m = f.members.get(index);
    if (!m) return Promise.resolve();
    const idleTokens = this.idle.revoke(fnId, index, f.spec.concurrency);
    m.busy = f.spec.concurrency - idleTokens;
    return new Promise((resolve) => {
      m.drained = resolve;
      if (m.busy <= 0) this.finishDrain(f, index);
    });
  }

  /** Whether `fnId` is a late-bound function (one the dispatcher can queue for). */
  accepts(fnId: number): boolean {
    return this.fns[fnId]?.spec.binding === 'late';
  }

  /** A function-addressed descriptor the kernel could not bind (it is in the gateway's hands:
   *  the kernel made the gateway its slot's holder). */
  onCall(d: Descriptor): void {
    const f = this.fns[d.fnId]!;
    // an instance may have gone idle between the kernel's miss and now
    const index = this.idle.take(f.spec.id, f.spec.concurrency);
    if (index >= 0) {
      this.bind(f, index, d);
      return;
    }
    if (f.queue.size >= f.spec.queueDepth) {
      this.stats.rejectedFull++;
      this.hooks.fail(d.reqId, batonError('BATON_ERR_QUEUE_FULL', `function '${f.spec.name}' has ${f.queue.size} waiting`));
      return;
    }
    this.stats.queued++;
    f.queue.set(d.slot, d);
  }

  /** Instance `key` of `fnId` finished one descriptor. */
  onIdle(fnId: number, key: number): void {
    const f = this.fns[fnId]!;
    const index = key - f.spec.keys[0]!;
    const m = f.members.get(index);
    if (!m) return; // gone meanwhile
    if (m.drained) {
      if (--m.busy <= 0) this.finishDrain(f, index);
      return;
    }
    if (!this.handNext(f, index) && !this.idle.give(fnId, index, f.spec.concurrency)) {
      this.log.warn({ fn: f.spec.name, key }, 'idle notice from an instance with every token idle: ignored');
    }
  }

  /** A request timed out or was answered: take it (and its calls) out of any queue. */
  withdraw(reqId: number): void {
    for (const f of this.fns) for (const [slot, d] of f.queue) if (d.reqId === reqId) f.queue.delete(slot);
  }

  queued(fnId: number): number {
    return this.fns[fnId]!.queue.size;
  }

  idleTokens(fnId: number): number {
    return this.idle.count(fnId);
  }

  /** Gives the oldest live waiting descriptor to instance `index`; false if none waits. */
  private handNext(f: FunctionState, index: number): boolean {
    for (const [slot, d] of f.queue) {
      f.queue.delete(slot);
      if (!this.hooks.pending(d.reqId)) continue; // answered meanwhile (timeout)
      this.stats.handedFromQueue++;
      this.bind(f, index, d);
      return true;
    }
    return false;
  }

  private bind(f: FunctionState, index: number, d: Descriptor): void {
    this.hooks.send({ ...d, key: f.spec.keys[index]!, sender: GATEWAY_KEY, tBind: nowUs() - d.tArrive });
  }

  private finishDrain(f: FunctionState, index: number): void {
    const m = f.members.get(index);
    f.members.delete(index);
    m?.drained?.();
  }
}
