// Every request the gateway has taken in, from its first byte until the client is done with
// it, and the one answer each gets. A request is answered exactly once (a reply, or an
// error: timeout, crash, shutdown…) and closed exactly once (its response written, or its
// connection gone); only then does its slot go back, through the slot table.
import { randomFillSync } from 'node:crypto';
import type { Descriptor } from '../descriptor/index.ts';
import { batonError, type BatonError } from '../errors.ts';
import type { SlotTable } from './custody.ts';
import { Deadlines } from './deadlines.ts';

export type Outcome = { error: BatonError } | { reply: Descriptor };

export interface Request {
  readonly id: number;
  /** Pool slot and its generation; -1 until the request takes one. */
  slot: number;
  gen: number;
  /** Dead letters sent again for this request. */
  redeliveries: number;
  /** Its class (src/admission/classes.ts: 0 the highest), which orders the kernel's queues. */
  rank: number;
  /** Slots granted to its functions for nested calls (ctx.call), until they come back (made at
   *  the first call: most requests make none). */
  callSlots?: Set<number>;
  /** Functions (ids) it waited on while an instance of them started (scale from zero). */
  coldFor?: number[];
  /** One of those the node budget had no room for when it came to wait. */
  noRoomFor?: number;
  /** Set when it enters a chain: sends the answer. */
  answer?: (outcome: Outcome) => void;
  /** Its number among the requests started (tells its deadline from an earlier one's). */
  seq?: number;
  /** The chain it runs and when its timeout falls (performance.now()), once it is in it. */
  chainId?: number;
  deadline?: number;
  answered: boolean;
}

export interface RequestHooks {
  /** A request will not be answered by its chain any more (it timed out, or its client left):
   *  take it out of wherever it waits. */
  abandoned(req: Request): void;
  /** A request got its answer (or lost its client) while instances may still work on it: a
   *  caller waiting on its nested calls must hear it is over. */
  ended?(req: Request): void;
  /** What a request that timed out is told, when it is not the bare timeout (looked at before
   *  it is taken out of where it waits, so it can say where that was). */
  timedOut?(req: Request, timeoutMs: number): BatonError | undefined;
}

export class RequestTable {
  private readonly open = new Map<number, Request>();
  private waiting = 0;
  private readonly deadlines = new Deadlines((id, seq) => this.expire(id, seq));
  private timeoutMs = 0;
  private started = 0;
  /** Random ids, drawn a batch at a time. */
  private readonly random = new Uint32Array(1024);
  private drawn = this.random.length;

  constructor(
    private readonly slots: SlotTable,
    private readonly hooks: RequestHooks,
  ) {}

  /** Requests sent into a chain and not answered yet. */
  get inFlight(): number {
    return this.waiting;
  }

  /** Requests not closed yet (answered or not). */
  get size(): number {
    return this.open.size;
  }

  /** A new request. Ids are random in 1..2^31-1 (not guessable from one's own) and not reused
   *  while one is open. */
  create(): Request {
    let id: number;
    do {
      if (this.drawn === this.random.length) {
        randomFillSync(this.random);
        this.drawn = 0;
      }
      id = this.random[this.drawn++]! & 0x7fffffff;
    } while (id === 0 || this.open.has(id));
    const req: Request = { id, slot: -1, gen: 0, redeliveries: 0, rank: 1, answered: false };
    this.open.set(req.id, req);
    return req;
  }

  get(id: number): Request | undefined {
    return this.open.get(id);
  }

  /** Whether `id` is in a chain and still waits for its answer. */
  pending(id: number): boolean {
    const req = this.open.get(id);
    return req !== undefined && !req.answered && req.answer !== undefined;
  }

  /** Gives the request a slot of its domain's pool (once); throws BATON_ERR_POOL_EXHAUSTED
   *  when none is free. */
  takeSlot(req: Request, domain = 0): number {
    if (req.slot >= 0) return req.slot;
    const got = this.slots.acquire(req.id, domain, req.rank);
    if (!got) throw batonError('BATON_ERR_POOL_EXHAUSTED', `${this.slots.perDomain} slots in use`);
    req.slot = got.slot;
    req.gen = got.gen;
    return req.slot;
  }

  /** Another slot of the request's domain, for a nested call: owned by the request, held by
   *  the gateway until it is granted; undefined when none is free. */
  takeCallSlot(req: Request): { slot: number; gen: number } | undefined {
    const got = this.slots.acquire(req.id, Math.floor(req.slot / this.slots.perDomain), req.rank);
    if (got) (req.callSlots ??= new Set()).add(got.slot);
    return got;
  }

  /** A call slot came back to the gateway (its caller gave it back, or the caller is gone):
   *  free it. Returns whether it was one of the request's. */
  callSlotBack(req: Request, slot: number): boolean {
    if (!req.callSlots?.delete(slot)) return false;
    this.slots.release(slot, req.id);
    return true;
  }

  /** The request enters its chain: `answer` gets its one answer, at the latest after
   *  `timeoutMs` (the same for every request of a table). */
  start(req: Request, timeoutMs: number, answer: (outcome: Outcome) => void): void {
    req.answer = answer;
    this.waiting++;
    this.timeoutMs = timeoutMs;
    req.seq = this.started = (this.started + 1) >>> 0;
    req.deadline = performance.now() + timeoutMs;
    this.deadlines.add(req.id, req.seq, req.deadline);
  }

  /** The requests in a chain still waiting for their answer. */
  *pendingRequests(): IterableIterator<Request> {
    for (const req of this.open.values()) if (!req.answered && req.answer) yield req;
  }

  private expire(id: number, seq: number): void {
    const req = this.open.get(id);
    if (!req || req.seq !== seq || !this.pending(id)) return; // answered already, or the id now names another request
    const error = this.hooks.timedOut?.(req, this.timeoutMs) ?? batonError('BATON_ERR_TIMEOUT', `no answer within ${this.timeoutMs} ms`);
    this.hooks.abandoned(req); // queueing counts toward the timeout
    this.answer(id, { error });
  }

  /** Answers a request in a chain; false if it was answered already (or never sent). */
  answer(id: number, outcome: Outcome): boolean {
    const req = this.open.get(id);
    if (!req || req.answered || !req.answer) return false;
    req.answered = true;
    this.waiting--;
    req.answer(outcome);
    this.hooks.ended?.(req);
    return true;
  }

  /** The client is done with the request (response written, or connection gone): forget it
   *  and give its slot back. Returns whether it was still waiting for its answer. */
  close(id: number): boolean {
    const req = this.open.get(id);
    if (!req) return false;
    this.open.delete(id);
    const waited = req.answer !== undefined && !req.answered;
    if (waited) {
      req.answered = true;
      this.waiting--;
      this.hooks.abandoned(req);
      this.hooks.ended?.(req);
    }
    if (req.slot >= 0) this.slots.release(req.slot, req.id);
    for (const slot of req.callSlots ?? []) this.slots.release(slot, req.id);
    return waited;
  }

  /** Instance `key` is gone: the requests it held are answered with `error`. */
  instanceGone(key: number, error: () => BatonError): void {
    for (const id of this.slots.takeBackFrom(key)) this.answer(id, { error: error() });
  }

  /** Answers everything still waiting (shutdown). */
  failAll(error: () => BatonError): void {
    for (const req of [...this.open.values()]) this.answer(req.id, { error: error() });
  }
}
