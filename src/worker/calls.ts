// Nested calls (ctx.call) from the instance's side. A call needs a slot of its own: the worker
// asks the gateway (one Alloc per request per tick, proven by the slot its handler holds, which
// stays its own), writes the payload into the granted slot and sends it to the callee as a Call
// whose aux names this instance; the callee's result comes back here as a Return, and its view
// stays valid until the calling handler returns. Then every call slot the run still holds goes
// back to the gateway with the run's own result, in the same write. A Grant or Return that finds
// no waiting call (its deadline passed, its run finished) is given back at once.
import type { FunctionSpec } from '../chain/index.ts';
import {
  blankDescriptor, GATEWAY_FN, GATEWAY_KEY, Kind, NO_SLOT, nowUs, type Descriptor,
} from '../descriptor/index.ts';
import { batonError } from '../errors.ts';
import { CALL_TRACE_BIT, type Pool } from '../pool/index.ts';
import type { Caller, CallResult } from '../sdk/index.ts';
import type { WorkerConfig } from './config.ts';
import type { Router } from './router.ts';

interface SlotWaiter {
  resolve(slot: { slot: number; gen: number }): void;
  reject(err: Error): void;
  cancelled: boolean;
}

interface PendingCall {
  reqId: number;
  name: string;
  /** The caller's own slot (local), where the callee's trace is copied. */
  home: number;
  resolve(r: CallResult): void;
  reject(err: Error): void;
  /** Its result arrived: the slot is the caller's again. */
  returned(): void;
  timer: NodeJS.Timeout;
}

/** One handler run's calls: the slots it holds for them, to give back when it ends. */
export interface RunCalls {
  readonly caller: Caller;
  /** Call slots (global numbers) this run holds, with their generations. */
  readonly held: Map<number, number>;
  /** Calls still out (their slots are the callees'). */
  readonly out: Set<number>;
  /** Calls still waiting for a slot. */
  readonly waiting: Set<SlotWaiter>;
  done: boolean;
}

export class Calls {
  private readonly waiters = new Map<number, SlotWaiter[]>(); // by request id, in grant order
  private readonly asks = new Map<number, { run: Descriptor; count: number }>(); // this tick's
  private readonly pending = new Map<number, PendingCall>(); // by call slot
  private readonly spec: FunctionSpec;
  /** The one RunCalls of every run of a function that may call nothing. */
  private readonly noCalls: RunCalls;

  constructor(
    private readonly cfg: WorkerConfig,
    private readonly pool: Pool,
    private readonly router: Router,
    private readonly send: (...ds: Descriptor[]) => void,
  ) {
    this.spec = cfg.deployment.functions[cfg.fnId]!;
    this.noCalls = {
      caller: {
        call: async (name) => {
          throw this.notAllowed(name);
        },
      },
      held: new Map(), out: new Set(), waiting: new Set(), done: false,
    };
  }

  /** The calls of the handler running descriptor `run`. */
  forRun(run: Descriptor): RunCalls {
    // most functions call nothing: no per-run state for them on the hot path
    if (this.spec.calls.length === 0) return this.noCalls;
    const calls: RunCalls = {
      caller: { call: (name, payload, type) => this.call(run, calls, name, payload, type) },
      held: new Map(), out: new Set(), waiting: new Set(), done: false,
    };
    return calls;
  }

  /** The run is over: what it still holds goes back (sent by the caller with its result);
   *  results of calls still out will be given back when they arrive. */
  finish(run: Descriptor, calls: RunCalls): Descriptor[] {
    if (calls === this.noCalls) return [];
    calls.done = true;
    const early = () => batonError('BATON_ERR_CTX_CLOSED', `function '${this.spec.name}' returned before its calls answered`);
    for (const w of calls.waiting) w.reject(early()); // their grants are given back on arrival
    for (const slot of calls.out) {
      const p = this.pending.get(slot);
      if (!p) continue;
      clearTimeout(p.timer);
      this.pending.delete(slot);
      p.reject(early());
    }
    return [...calls.held].map(([slot, gen]) => this.giveBack(run.reqId, slot, gen, run.tArrive));
  }

  onGrant(d: Descriptor): void {
    if (d.status === 410) {
      this.requestOver(d.reqId);
      return;
    }
    const waiter = this.waiters.get(d.reqId)?.shift();
    if (this.waiters.get(d.reqId)?.length === 0) this.waiters.delete(d.reqId);
    if (!waiter || waiter.cancelled) {
      if (d.slot !== NO_SLOT) this.send(this.giveBack(d.reqId, d.slot, d.gen, d.tArrive));
      return;
    }
    if (d.status !== 0 || d.slot === NO_SLOT) {
      waiter.reject(batonError('BATON_ERR_POOL_EXHAUSTED', `no slot free for a call from '${this.spec.name}'`));
    } else {
      waiter.resolve({ slot: d.slot, gen: d.gen });
    }
  }

  /** The gateway says request `reqId` is over (answered, timed out, or its client left):
   *  whatever waits on its calls stops waiting; late grants and results are given back. */
  private requestOver(reqId: number): void {
    const over = () => batonError('BATON_ERR_CALL_FAILED', `the request was answered already (a timeout, a failure elsewhere, or its client left)`);
    for (const w of this.waiters.get(reqId) ?? []) if (!w.cancelled) w.reject(over());
    // grants sent before the notice came before it; none follows it
    this.waiters.delete(reqId);
    for (const [slot, p] of this.pending) {
      if (p.reqId !== reqId) continue;
      this.pending.delete(slot);
      clearTimeout(p.timer);
      p.reject(over());
    }
  }

  onReturn(d: Descriptor): void {
    const p = this.pending.get(d.slot);
    if (!p) {
      this.send(this.giveBack(d.reqId, d.slot, d.gen, d.tArrive));
      return;
    }
    this.pending.delete(d.slot);
    clearTimeout(p.timer);
    p.returned();
    const local = d.slot - this.cfg.slotBase;
    for (const t of this.pool.readTrace(local)) this.pool.appendTrace(p.home, { ...t, key: t.key | CALL_TRACE_BIT });
    const body = this.pool.view(local, d.length);
    if (d.aux === 1) {
      let message = d.length === 0 ? (d.status === 504 ? 'it got the call after the deadline' : 'it could not serve the call') : '';
      try {
        message ||= (JSON.parse(body.toString('utf8')) as { message?: string }).message ?? '';
      } catch {
        message ||= body.toString('utf8', 0, 512);
      }
      const err = batonError('BATON_ERR_CALL_FAILED', `'${this.spec.name}' called '${p.name}', which answered ${d.status}: ${message}`);
      p.reject(err);
      return;
    }
    const type = this.pool.readType(local);
    p.resolve({ status: d.status, type, body, text: () => body.toString('utf8'), json: <T>() => JSON.parse(body.toString('utf8')) as T });
  }

  private async call(run: Descriptor, calls: RunCalls, name: string, payload: Uint8Array, type: string): Promise<CallResult> {
    const { held, out } = calls;
    const fns = this.cfg.deployment.functions;
    const callee = this.spec.calls.map((id) => fns[id]!).find((f) => f.name === name);
    if (!callee) throw this.notAllowed(name);
    if (payload.length > this.pool.capacity) {
      throw batonError('BATON_ERR_BAD_CALL', `function '${this.spec.name}' called '${name}' with ${payload.length} bytes; a slot's payload holds ${this.pool.capacity}`);
    }
    const deadline = run.tArrive + this.cfg.timeoutMs * 1000;
    const { slot, gen } = await this.slotFor(run, calls, deadline, name);
    held.set(slot, gen);
    const local = slot - this.cfg.slotBase;
    this.pool.payload(local).set(payload);
    this.pool.writeMeta(local, { method: 'POST', url: `/${name}`, contentType: type });
    return new Promise<CallResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(slot);
        reject(batonError('BATON_ERR_TIMEOUT', `'${this.spec.name}' called '${name}', which did not answer before the request's deadline`));
      }, Math.max(0, (deadline - nowUs()) / 1000));
      const returned = () => {
        out.delete(slot);
        held.set(slot, gen); // back with the caller: it gives it back when its run ends
      };
      // rejected without its result (deadline, run over): the slot stays the callee's, and is
      // given back when its result arrives
      this.pending.set(slot, { reqId: run.reqId, name, home: run.slot - this.cfg.slotBase, resolve, reject, returned, timer });
      held.delete(slot); // the callee's now
      out.add(slot);
      const t = nowUs() - run.tArrive;
      this.send({
        key: this.router.address(callee.id), kind: Kind.Call, reqId: run.reqId, gen, slot, length: payload.length,
        chainId: run.chainId, hop: run.hop, fnId: callee.id, status: 0, sender: this.cfg.key, aux: this.cfg.key,
        tArrive: run.tArrive, tSent: t, tBind: 0, tStart: t, tEnd: 0,
      });
    });
  }

  private notAllowed(name: string): Error {
    const allowed = this.spec.calls.map((id) => this.cfg.deployment.functions[id]!.name);
    return batonError(
      'BATON_ERR_BAD_CALL',
      `function '${this.spec.name}' called '${name}'; it may call ${allowed.length ? allowed.join(', ') : 'nothing'} (functions.${this.spec.name}.calls in the chain file)`,
    );
  }

  /** A slot for a call: the run's asks of one tick leave as one Alloc. */
  private slotFor(run: Descriptor, calls: RunCalls, deadline: number, name: string): Promise<{ slot: number; gen: number }> {
    return new Promise((resolve, reject) => {
      const waiter: SlotWaiter = { resolve, reject, cancelled: false };
      calls.waiting.add(waiter);
      const list = this.waiters.get(run.reqId) ?? [];
      list.push(waiter);
      this.waiters.set(run.reqId, list);
      const timer = setTimeout(() => {
        waiter.reject(batonError('BATON_ERR_TIMEOUT', `'${this.spec.name}' got no slot to call '${name}' before the request's deadline`));
      }, Math.max(0, (deadline - nowUs()) / 1000));
      // settled once: by its grant, its deadline or its run's end (a later grant is given back)
      const settle = () => (clearTimeout(timer), calls.waiting.delete(waiter), (waiter.cancelled = true));
      waiter.resolve = (s) => (settle(), resolve(s));
      waiter.reject = (e) => (settle(), reject(e));
      const ask = this.asks.get(run.reqId);
      if (ask) {
        ask.count++;
        return;
      }
      this.asks.set(run.reqId, { run, count: 1 });
      queueMicrotask(() => {
        const { count } = this.asks.get(run.reqId)!;
        this.asks.delete(run.reqId);
        this.send(blankDescriptor({
          key: GATEWAY_KEY, kind: Kind.Alloc, reqId: run.reqId, gen: run.gen, slot: run.slot, length: count,
          fnId: this.cfg.fnId, sender: this.cfg.key, tArrive: run.tArrive,
        }));
      });
    });
  }

  /** A call slot back to the gateway (an empty Error for a slot that is not its request's own). */
  private giveBack(reqId: number, slot: number, gen: number, tArrive: number): Descriptor {
    return blankDescriptor({
      key: GATEWAY_KEY, kind: Kind.Error, reqId, gen, slot, status: 502, fnId: GATEWAY_FN, sender: this.cfg.key, tArrive,
    });
  }
}

/** The function whose instance `key` is, or undefined. */
export function functionOfKey(functions: FunctionSpec[], key: number): number | undefined {
  return functions.find((f) => f.keys.includes(key))?.id;
}
