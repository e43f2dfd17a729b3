// Every request the gateway has sent into a chain, from dispatch to answer, and what
// happens to its pool slot. A slot is freed only when no worker can still touch it:
// if a request is answered while a worker holds it (timeout, forged descriptor), the slot
// waits in quarantine until that worker hands the descriptor back or exits.
import type { Logger } from 'pino';
import { GATEWAY_KEY, type Descriptor } from '../descriptor/index.ts';
import type { BatonError } from '../errors.ts';
import type { Pool } from '../pool/index.ts';

export interface PendingRequest {
  reqId: number;
  slot: number;
  gen: number;
  /** The request's content type, the response's default. */
  contentType?: string;
  timer: NodeJS.Timeout;
  /** Sends the answer; the table has already forgotten the request. */
  answer(outcome: { error: BatonError } | { reply: Descriptor }): void;
}

interface Quarantined {
  slot: number;
  gen: number;
  since: number;
}

export class RequestTable {
  private readonly pending = new Map<number, PendingRequest>();
  private readonly quarantine = new Map<number, Quarantined>();
  private readonly reaper: NodeJS.Timeout;

  constructor(
    private readonly pool: Pool,
    private readonly log: Logger,
    /** How long a quarantined slot waits for its holder before it is freed anyway. */
    private readonly quarantineMs: number,
  ) {
    this.reaper = setInterval(() => this.reap(), Math.min(1000, quarantineMs)).unref();
  }

  get size(): number {
    return this.pending.size;
  }
  get quarantined(): number {
    return this.quarantine.size;
  }

  /** Requests in flight whose slot instance `key` holds. */
  heldBy(key: number): number {
    let n = 0;
    for (const p of this.pending.values()) if (this.pool.holder(p.slot) === key) n++;
    return n;
  }

  /** Ids of the requests in flight, oldest first. */
  ids(): number[] {
    return [...this.pending.keys()];
  }

  add(p: PendingRequest): void {
    this.pending.set(p.reqId, p);
  }

  get(reqId: number): PendingRequest | undefined {
    return this.pending.get(reqId);
  }

  /** Removes a request (its answer is being sent) and returns it. */
  take(reqId: number): PendingRequest | undefined {
    const p = this.pending.get(reqId);
    if (!p) return undefined;
    clearTimeout(p.timer);
    this.pending.delete(reqId);
    return p;
  }

  fail(reqId: number, error: BatonError): void {
    this.take(reqId)?.answer({ error });
  }

  /** The response for `reqId` is written out (or aborted): free its slot, or quarantine it. */
  release(reqId: number, slot: number): void {
    if (this.pool.owner(slot) !== reqId) return;
    if (this.pool.holder(slot) === GATEWAY_KEY) {
      this.pool.free(slot, reqId);
    } else {
      this.quarantine.set(reqId, { slot, gen: this.pool.gen(slot), since: Date.now() });
    }
  }

  /** A descriptor came back for a request already answered: its slot can go now. */
  settleLate(reqId: number, gen: number): boolean {
    const q = this.quarantine.get(reqId);
    if (!q || q.gen !== gen) return false;
    this.quarantine.delete(reqId);
    this.pool.free(q.slot, reqId);
    return true;
  }

  /** Hands a slot back to the gateway when its holder is known to be done with it. */
  reclaimFrom(slot: number, key: number): void {
    if (this.pool.holder(slot) === key) this.pool.setHolder(slot, GATEWAY_KEY);
  }

  /** Instance `key` is gone: everything it held is answered or freed. */
  instanceGone(key: number, error: () => BatonError): void {
    for (const p of [...this.pending.values()]) {
      if (this.pool.holder(p.slot) === key) {
        this.pool.setHolder(p.slot, GATEWAY_KEY);
        this.fail(p.reqId, error());
      }
    }
    for (const [reqId, q] of this.quarantine) {
      if (this.pool.holder(q.slot) === key) {
        this.quarantine.delete(reqId);
        this.pool.free(q.slot, reqId);
      }
    }
  }

  /** Answers everything still pending (shutdown). */
  failAll(error: () => BatonError): void {
    for (const reqId of [...this.pending.keys()]) this.fail(reqId, error());
  }

  close(): void {
    clearInterval(this.reaper);
  }

  private reap(): void {
    const now = Date.now();
    for (const [reqId, q] of this.quarantine) {
      if (this.pool.owner(q.slot) !== reqId) {
        this.quarantine.delete(reqId);
      } else if (now - q.since > this.quarantineMs) {
        this.log.warn({ reqId, slot: q.slot, holder: this.pool.holder(q.slot) }, 'freeing a slot whose holder never handed it back');
        this.quarantine.delete(reqId);
        this.pool.free(q.slot, reqId);
      }
    }
  }
}
