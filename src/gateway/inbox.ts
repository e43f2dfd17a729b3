// Key 0's inbox: everything the kernel delivers to the gateway's socket. The kernel has
// already checked each frame's framing, signature, custody and true sender, so the sender
// field can be believed; what the gateway checks on top (the rest of the fields, what a
// function may say) is blamed on that sender, which is killed. Frames are:
//   - a chain's reply or error, for a request waiting for it;
//   - a call addressed to a function with no idle instance: the dispatcher's;
//   - a dead letter: a call for a key with no socket, sent again elsewhere or answered 502;
//   - an instance's Idle notice the kernel left to the dispatcher (late binding: a draining
//     instance, or one the program could not settle in a few steps);
//   - the kernel's acknowledgement of a call it queued (ignored);
//   - a function's request for call slots (Alloc), granted from its request's domain;
//   - a call slot coming back (given back by its caller, or a result whose caller is gone);
//   - anything for a request already answered: its slot can be freed.
import type { Dispatcher } from '../binding/dispatcher.ts';
import {
  blankDescriptor, decode, F, FN_ADDR, GATEWAY_FN, GATEWAY_KEY, Kind, NO_SLOT, type Descriptor, DescriptorError,
} from '../descriptor/index.ts';
import { batonError } from '../errors.ts';
import type { Router } from '../worker/router.ts';
import type { SlotTable } from './custody.ts';
import type { RequestTable } from './requests.ts';

/** Dead letters sent again per request before it is answered 502. */
export const MAX_REDELIVERIES = 3;
/** Call slots one Alloc may ask for. */
export const MAX_GRANTS = 64;

/** A failed Grant with status 410: request `reqId` is over (answered, timed out, or its client
 *  left); whoever waits on its calls can stop. */
export function requestOverNotice(key: number, reqId: number): Descriptor {
  return blankDescriptor({ key, kind: Kind.Grant, reqId, slot: NO_SLOT, status: 410, sender: GATEWAY_KEY, fnId: GATEWAY_FN });
}

export interface InboxStats {
  /** Frames the gateway refused (each killed its sender). */
  badDescriptors: number;
  deadLetters: number;
  /** Frames for a request no longer known, whose slot was already free. */
  strayDescriptors: number;
  /** Bytes skipped because the stream lost alignment (never expected: the kernel frames). */
  skippedBytes: number;
}

export interface InboxDeps {
  requests: RequestTable;
  slots: SlotTable;
  dispatcher: Dispatcher;
  router: Router;
  send(...ds: Descriptor[]): void;
  /** The function whose instance `key` is (a reserved key, running or not). */
  functionOf(key: number): number | undefined;
  describe(key: number): string;
  /** Whether function `fnId` may call others (its chain file `calls`). */
  mayCall(fnId: number): boolean;
  /** Empties a slot's header before it is granted for a call. */
  resetSlot(slot: number): void;
  /** Kill instance `key`: it sent something no function may send. */
  refuse(key: number, why: string): void;
  warn(fields: object, message: string): void;
}

/** Idle notices no work explains that one instance may send in a second before it is taken
 *  for hostile and killed: each costs the gateway a read, and a flood would cost every other
 *  request its time. (A healthy instance sends none; a race may explain the odd one.) */
export const SPURIOUS_IDLE_PER_S = 64;

export class Inbox {
  readonly stats: InboxStats = { badDescriptors: 0, deadLetters: 0, strayDescriptors: 0, skippedBytes: 0 };
  /** Unexplained Idle notices per sender in the current second. */
  private readonly spurious = new Map<number, { since: number; n: number }>();

  constructor(private readonly deps: InboxDeps) {}

  onFrame(frame: Buffer): void {
    if (frame[F.kind] === Kind.Ack) return; // the kernel queued a call we sent: nothing to do
    const sender = frame.readUInt32LE(F.sender);
    // Idle notices are most of the traffic here under late binding: read just what they say
    if (frame.readUInt8(F.kind) === Kind.Idle) {
      const fnId = frame.readUInt16LE(F.fnId);
      if (this.deps.functionOf(sender) !== fnId || !this.deps.dispatcher.accepts(fnId)) {
        this.bad(sender, `sent an Idle notice for function ${fnId}`);
      } else if (!this.deps.dispatcher.onIdle(fnId, sender)) {
        this.unexplainedIdle(sender);
      }
      return;
    }
    let d: Descriptor;
    try {
      d = decode(frame);
    } catch (err) {
      this.bad(sender, `sent a malformed descriptor: ${(err as Error).message}`, (err as DescriptorError).reqId);
      return;
    }
    if (!this.deps.requests.pending(d.reqId)) {
      // a caller asking for call slots for a request already over: tell it so
      if (d.kind === Kind.Alloc) return this.deps.send(requestOverNotice(d.sender, d.reqId));
      // an answer to a request already answered (timeout, a crash elsewhere): free its slot
      if (!this.deps.slots.returned(d.slot, d.gen) && !this.deps.requests.get(d.reqId)) this.stats.strayDescriptors++;
      return;
    }
    if (d.kind === Kind.Alloc) this.grant(d);
    else if (d.kind === Kind.Call && d.key & FN_ADDR) this.forDispatcher(d);
    else if (d.kind === Kind.Call) this.deadLetter(d);
    else if (d.slot !== this.deps.requests.get(d.reqId)!.slot) this.callSlotBack(d);
    else if (d.kind === Kind.Reply || d.kind === Kind.Error) this.answer(d);
    else this.bad(d.sender, `sent kind ${d.kind} to the gateway`, d.reqId);
  }

  /** A function asks for slots to call other functions with (ctx.call): each is granted from
   *  its request's domain, or refused (503) when none is free. */
  private grant(d: Descriptor): void {
    const fnId = this.deps.functionOf(d.sender);
    if (fnId === undefined || !this.deps.mayCall(fnId) || d.length < 1 || d.length > MAX_GRANTS) {
      this.bad(d.sender, `asked for ${d.length} call slots`, d.reqId);
      return;
    }
    const req = this.deps.requests.get(d.reqId)!;
    const grants: Descriptor[] = [];
    for (let i = 0; i < d.length; i++) {
      const got = this.deps.requests.takeCallSlot(req);
      if (got) this.deps.resetSlot(got.slot);
      grants.push(blankDescriptor({
        key: d.sender, kind: Kind.Grant, reqId: d.reqId, gen: got?.gen ?? 0, slot: got?.slot ?? NO_SLOT,
        status: got ? 0 : 503, fnId, tArrive: d.tArrive,
      }));
    }
    this.deps.send(...grants); // one write for the whole ask, however many it asked for
  }

  /** A call slot back at the gateway: given back by its caller, handed back unrun, or a
   *  callee's result whose caller is gone (a dead letter). */
  private callSlotBack(d: Descriptor): void {
    if (!this.deps.requests.callSlotBack(this.deps.requests.get(d.reqId)!, d.slot)) {
      this.bad(d.sender, `returned slot ${d.slot}, which its request never had`, d.reqId);
    }
  }

  /** The stream lost alignment and `bytes` were skipped. */
  onGarbage(bytes: number): void {
    this.stats.skippedBytes += bytes;
    this.deps.warn({ bytes }, 'descriptor stream lost alignment; skipped to the next descriptor');
  }

  private answer(d: Descriptor): void {
    const { requests } = this.deps;
    if (d.kind === Kind.Error && d.length === 0) {
      // handed back without running: its deadline had passed (504), or it could not serve it
      const error =
        d.status === 504
          ? batonError('BATON_ERR_TIMEOUT', `${this.deps.describe(d.sender)} got it after its deadline`)
          : batonError('BATON_ERR_BAD_DESCRIPTOR', `${this.deps.describe(d.sender)} could not serve it`);
      requests.answer(d.reqId, { error });
      return;
    }
    requests.answer(d.reqId, { reply: d });
  }

  private forDispatcher(d: Descriptor): void {
    if ((d.key & 0xffff) !== d.fnId || !this.deps.dispatcher.accepts(d.fnId)) {
      this.bad(d.sender, `addressed function ${d.key & 0xffff} for function ${d.fnId}`, d.reqId);
      return;
    }
    this.deps.dispatcher.onCall(d);
  }

  /** A call for a key with no socket never reached an instance, so it is safe to send again
   *  to a live one (an instance that died a moment ago may still be in an early-binding
   *  sender's list). */
  private deadLetter(d: Descriptor): void {
    this.stats.deadLetters++;
    this.deps.warn({ reqId: d.reqId, key: d.key, sender: d.sender }, 'dead letter: no socket under key');
    const req = this.deps.requests.get(d.reqId)!;
    if (this.deps.functionOf(d.key) === d.fnId && req.redeliveries < MAX_REDELIVERIES) {
      try {
        const to = this.deps.router.address(d.fnId, d.key);
        req.redeliveries++;
        this.deps.send({ ...d, key: to, sender: GATEWAY_KEY });
        return;
      } catch {
        // no other live instance: answered below
      }
    }
    this.deps.requests.answer(d.reqId, {
      error: batonError('BATON_ERR_DEAD_LETTER', `${this.deps.describe(d.key)} is not running`),
    });
  }

  /** A frame no function may send: its sender is killed, and a request it names (now in the
   *  gateway's hands) answered 502. */
  private unexplainedIdle(sender: number): void {
    const now = Date.now();
    let c = this.spurious.get(sender);
    if (!c || now - c.since >= 1000) this.spurious.set(sender, (c = { since: now, n: 0 }));
    if (++c.n <= SPURIOUS_IDLE_PER_S) return;
    this.spurious.delete(sender);
    this.bad(sender, `sent more than ${SPURIOUS_IDLE_PER_S} Idle notices within a second for work it was not given`);
  }

  private bad(sender: number, why: string, reqId?: number): void {
    this.stats.badDescriptors++;
    this.deps.warn({ sender, reqId }, `rejected descriptor: ${this.deps.describe(sender)} ${why}`);
    if (sender !== GATEWAY_KEY) this.deps.refuse(sender, why);
    if (reqId !== undefined) {
      this.deps.requests.answer(reqId, { error: batonError('BATON_ERR_BAD_DESCRIPTOR', `${this.deps.describe(sender)} ${why}`) });
    }
  }
}
