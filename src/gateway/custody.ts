// Custody of pool slots: the one place that decides when a slot is free.
//
// Which slots are free and which request owns each is the gateway's own memory, out of the
// workers' reach. Who *holds* an owned slot right now — the gateway (key 0) or a function
// instance — is recorded by the kernel in the custody map every time it delivers a
// descriptor (bpf/baton.bpf.c), and only the holder may send one for the slot. So the
// gateway knows exactly which instance holds a request, even one sitting unread in a dead
// instance's socket. A slot is freed only when no instance can touch it any more: its
// request is done and the gateway holds it, or the instance holding it has exited. A slot
// whose descriptor waits in a kernel queue (late binding) is held by nobody (HOLDER_QUEUED):
// whoever takes it out claims it with one compare-and-swap of its generation and holder —
// the kernel for an instance, or the gateway withdrawing a request that is over — so exactly
// one of them gets it, and a withdrawn one is passed over.
import { CLASS_SHIFT, GATEWAY_KEY, HOLDER_QUEUED, QUEUE_FN } from '../descriptor/index.ts';

/** u32 words of a custody entry (struct baton_custody in bpf/baton_shared.h); gen and holder
 *  share the entry's second u64 (gen | holder << 32), swapped as one. */
export const CUSTODY = { req: 0, queue: 1, gen: 2, holder: 3, words: 4 } as const;

export interface Overdue {
  slot: number;
  reqId: number;
  holder: number;
  /** ms since the request was done with it. */
  ms: number;
}

export class SlotTable {
  private readonly words: Uint32Array;
  /** The same memory as u64: each entry's gen | holder << 32 at index 2·slot + 1. */
  private readonly genHolder: BigUint64Array;
  /** Request owning each slot; 0: free. */
  private readonly owners: Uint32Array;
  private readonly gens: Uint32Array;
  /** Free slots of each domain (domain d owns slots d·perDomain … (d+1)·perDomain − 1). */
  private readonly freeSlots: number[][];
  /** Slots whose request is done while an instance still holds them: since when (ms). */
  private readonly quarantine = new Map<number, number>();

  readonly count: number;

  constructor(
    domains: number,
    readonly perDomain: number,
    /** The kernel's custody map, memory-mapped (or any memory of that layout). */
    custody: ArrayBuffer,
  ) {
    this.count = domains * perDomain;
    this.words = new Uint32Array(custody, 0, this.count * CUSTODY.words);
    this.words.fill(0);
    this.genHolder = new BigUint64Array(custody, 0, this.count * 2);
    this.owners = new Uint32Array(this.count);
    this.gens = new Uint32Array(this.count);
    // lowest slots first: a lightly loaded gateway keeps touching the same few pages
    this.freeSlots = Array.from({ length: domains }, (_, d) => Array.from({ length: perDomain }, (_, i) => (d + 1) * perDomain - 1 - i));
  }

  /** Free slots, in all domains or in one. */
  free(domain?: number): number {
    if (domain !== undefined) return this.freeSlots[domain]!.length;
    return this.freeSlots.reduce((n, f) => n + f.length, 0);
  }

  get quarantined(): number {
    return this.quarantine.size;
  }

  /** Quarantined slots of one domain. */
  quarantinedIn(domain: number): number {
    let n = 0;
    for (const slot of this.quarantine.keys()) if (Math.floor(slot / this.perDomain) === domain) n++;
    return n;
  }

  /** Takes a free slot of `domain` for request `reqId` of class `cls`, held by the gateway;
   *  undefined when none is free. */
  acquire(reqId: number, domain = 0, cls = 0): { slot: number; gen: number } | undefined {
    const slot = this.freeSlots[domain]!.pop();
    if (slot === undefined) return undefined;
    const gen = (this.gens[slot]! + 1) >>> 0 || 1;
    this.gens[slot] = gen;
    this.owners[slot] = reqId;
    const at = slot * CUSTODY.words;
    Atomics.store(this.words, at + CUSTODY.holder, GATEWAY_KEY);
    Atomics.store(this.words, at + CUSTODY.gen, gen);
    Atomics.store(this.words, at + CUSTODY.queue, cls << CLASS_SHIFT); // the kernel queues it by class
    Atomics.store(this.words, at + CUSTODY.req, reqId); // last: the kernel checks req first
    return { slot, gen };
  }

  /** The function whose kernel queue `slot`'s descriptor waits in (when its holder is
   *  HOLDER_QUEUED). */
  queuedAt(slot: number): number {
    return (Atomics.load(this.words, slot * CUSTODY.words + CUSTODY.queue) & QUEUE_FN) - 1;
  }

  /** The class of the request `slot` was taken for. */
  classOf(slot: number): number {
    return Atomics.load(this.words, slot * CUSTODY.words + CUSTODY.queue) >>> CLASS_SHIFT;
  }

  /** The key holding `slot` now (GATEWAY_KEY: the gateway). */
  holder(slot: number): number {
    return Atomics.load(this.words, slot * CUSTODY.words + CUSTODY.holder);
  }

  owner(slot: number): number {
    return this.owners[slot] ?? 0;
  }

  /** Takes `slot` out of a kernel queue into the gateway's hands, if its descriptor waits
   *  there (its request is over: the kernel will pass the descriptor over, and `withdrawn`
   *  hears for which function). Returns whether it did; false if no descriptor of this
   *  allocation waits (an instance may have taken it). */
  withdraw(slot: number): boolean {
    if (!this.swapQueued(slot)) return false;
    this.withdrawn?.(this.queuedAt(slot));
    return true;
  }

  /** Told the function whose queue a withdrawn descriptor is left in. */
  withdrawn?: (fnId: number) => void;

  /** Claims a queued `slot` of generation `gen` for the gateway (a descriptor it took out of a
   *  kernel queue itself); false if it was withdrawn or claimed already: pass it over. */
  claim(slot: number, gen: number): boolean {
    return slot < this.count && this.gens[slot] === gen && this.swapQueued(slot);
  }

  /** holder: HOLDER_QUEUED → the gateway, for the slot's current generation, atomically. */
  private swapQueued(slot: number): boolean {
    const gen = BigInt(this.gens[slot]!);
    const queued = gen | (BigInt(HOLDER_QUEUED) << 32n);
    return Atomics.compareExchange(this.genHolder, slot * 2 + 1, queued, gen) === queued;
  }

  /** Marks `slot` as waiting in function `fnId`'s kernel queue (the gateway queues one of its
   *  descriptors). */
  park(slot: number, fnId: number): void {
    const at = slot * CUSTODY.words + CUSTODY.queue;
    Atomics.store(this.words, at, (Atomics.load(this.words, at) & ~QUEUE_FN) | (fnId + 1));
    Atomics.store(this.words, slot * CUSTODY.words + CUSTODY.holder, HOLDER_QUEUED);
  }

  /** Request `reqId` is done with `slot`: freed now if the gateway holds it (or it waited in a
   *  queue), otherwise kept from reuse until its holder hands it back or exits. Returns whether
   *  it was freed. */
  release(slot: number, reqId: number): boolean {
    if (this.owners[slot] !== reqId) return false;
    if (this.holder(slot) === GATEWAY_KEY || this.withdraw(slot)) {
      this.free1(slot);
      return true;
    }
    this.quarantine.set(slot, Date.now());
    return false;
  }

  /** A descriptor for `slot` came back to the gateway (the kernel made it the holder): a
   *  slot kept for a request already done can go now. */
  returned(slot: number, gen: number): boolean {
    if (!this.quarantine.has(slot) || this.gens[slot] !== gen || this.holder(slot) !== GATEWAY_KEY) return false;
    this.free1(slot);
    return true;
  }

  /** Instance `key` is gone, and its socket with it: every slot it held comes back. Slots of
   *  requests already done are freed; returns the requests in flight it held. */
  takeBackFrom(key: number): number[] {
    const inFlight: number[] = [];
    for (let slot = 0; slot < this.count; slot++) {
      if (this.owners[slot] === 0 || this.holder(slot) !== key) continue;
      Atomics.store(this.words, slot * CUSTODY.words + CUSTODY.holder, GATEWAY_KEY);
      if (this.quarantine.has(slot)) this.free1(slot);
      else inFlight.push(this.owners[slot]!);
    }
    return inFlight;
  }

  /** Frees kept slots that came back to the gateway; returns those still held by an instance
   *  longer than `ms` after their request was done. */
  sweep(ms: number): Overdue[] {
    const now = Date.now();
    const out: Overdue[] = [];
    for (const [slot, since] of this.quarantine) {
      const holder = this.holder(slot);
      if (holder === GATEWAY_KEY || this.withdraw(slot)) this.free1(slot);
      else if (now - since >= ms) out.push({ slot, reqId: this.owners[slot]!, holder, ms: now - since });
    }
    return out;
  }

  private free1(slot: number): void {
    this.quarantine.delete(slot);
    this.owners[slot] = 0;
    Atomics.store(this.words, slot * CUSTODY.words + CUSTODY.req, 0);
    this.freeSlots[Math.floor(slot / this.perDomain)]!.push(slot);
  }
}
