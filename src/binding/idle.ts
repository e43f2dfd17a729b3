// Late binding's state per function, shared with the kernel: the memory-mapped baton_idle map,
// IDLE_STRIDE u64 words per function (struct baton_idle in bpf/baton_shared.h). An instance
// with concurrency c owns tokens [index·c, index·c + c): a set bit in `bits` is an idle token,
// a set bit in `members` a token of an instance that takes new work. `queued` counts the
// function's kernel queue, `events` every change to tokens or queue (a snapshot taken while it
// stays the same is consistent). The SK_MSG program claims and returns bits with atomic
// fetch-and and fetch-or; the dispatcher does the same here on the same memory.
import { IDLE_STRIDE, IDLE_WORDS, MAX_FUNCTIONS } from '../descriptor/index.ts';

const ALL = (1n << 64n) - 1n;
// one bit and its complement per position: no BigInt arithmetic on the hot path
const BIT = Array.from({ length: 64 }, (_, i) => 1n << BigInt(i));
const CLEAR = BIT.map((b) => ALL ^ b);
/** Word offsets within a function's entry. */
const BITS = 0;
const MEMBERS = IDLE_WORDS;
const QUEUED = 2 * IDLE_WORDS;
const EVENTS = QUEUED + 1;
const STALE = QUEUED + 2;
const WITHDRAWN = QUEUED + 3;

export class IdleTokens {
  private readonly words: BigUint64Array;

  constructor(buffer: ArrayBuffer) {
    this.words = new BigUint64Array(buffer, 0, MAX_FUNCTIONS * IDLE_STRIDE);
  }

  private at(fnId: number, offset: number): number {
    return fnId * IDLE_STRIDE + offset;
  }

  private changed(fnId: number): void {
    Atomics.add(this.words, this.at(fnId, EVENTS), 1n);
  }

  /** Marks one busy token of instance `index` idle; returns it, or -1 if all its tokens already
   *  are. */
  give(fnId: number, index: number, concurrency: number): number {
    for (let t = index * concurrency; t < (index + 1) * concurrency; t++) {
      const bit = BIT[t & 63]!;
      if ((Atomics.or(this.words, this.at(fnId, BITS + (t >> 6)), bit) & bit) === 0n) {
        this.changed(fnId);
        return t;
      }
    }
    return -1;
  }

  /** Takes token `t` back if it is still idle. */
  takeBack(fnId: number, t: number): boolean {
    const bit = BIT[t & 63]!;
    if ((Atomics.and(this.words, this.at(fnId, BITS + (t >> 6)), CLEAR[t & 63]!) & bit) === 0n) return false;
    this.changed(fnId);
    return true;
  }

  /** Claims any idle token of `fnId`; returns its instance index, or -1 if none is idle. */
  take(fnId: number, concurrency: number): number {
    for (let i = 0; i < IDLE_WORDS; i++) {
      const w = this.at(fnId, BITS + i);
      for (let bits = Atomics.load(this.words, w); bits !== 0n; bits = Atomics.load(this.words, w)) {
        const low = bits & -bits;
        if ((Atomics.and(this.words, w, ALL ^ low) & low) !== 0n) {
          this.changed(fnId);
          return Math.floor((i * 64 + bitIndex(low)) / concurrency);
        }
      }
    }
    return -1;
  }

  /** Clears every token of instance `index`; returns how many were idle. */
  revoke(fnId: number, index: number, concurrency: number): number {
    let idle = 0;
    for (let t = index * concurrency; t < (index + 1) * concurrency; t++) {
      if (this.takeBack(fnId, t)) idle++;
    }
    return idle;
  }

  /** Whether instance `index` takes new work (its tokens are members), and setting it. */
  member(fnId: number, index: number, concurrency: number): boolean {
    const t = index * concurrency;
    return (Atomics.load(this.words, this.at(fnId, MEMBERS + (t >> 6))) & BIT[t & 63]!) !== 0n;
  }

  setMember(fnId: number, index: number, concurrency: number, on: boolean): void {
    for (let t = index * concurrency; t < (index + 1) * concurrency; t++) {
      const w = this.at(fnId, MEMBERS + (t >> 6));
      if (on) Atomics.or(this.words, w, BIT[t & 63]!);
      else Atomics.and(this.words, w, CLEAR[t & 63]!);
    }
  }

  /** Idle tokens of `fnId`. */
  count(fnId: number): number {
    let n = 0;
    for (let i = 0; i < IDLE_WORDS; i++) {
      for (let bits = Atomics.load(this.words, this.at(fnId, BITS + i)); bits !== 0n; bits &= bits - 1n) n++;
    }
    return n;
  }

  /** Descriptors in `fnId`'s kernel queue (withdrawn ones included until a pop passes them over). */
  queued(fnId: number): number {
    return Number(Atomics.load(this.words, this.at(fnId, QUEUED)));
  }

  /** The queue length changed by `n` (the dispatcher queued or took one itself). */
  addQueued(fnId: number, n: number): void {
    Atomics.add(this.words, this.at(fnId, QUEUED), BigInt.asUintN(64, BigInt(n)));
    this.changed(fnId);
  }

  /** Withdrawn descriptors passed over at a pop, in all. */
  stale(fnId: number): number {
    return Number(Atomics.load(this.words, this.at(fnId, STALE)));
  }

  addStale(fnId: number): void {
    Atomics.add(this.words, this.at(fnId, STALE), 1n);
  }

  /** One of `fnId`'s queued descriptors was withdrawn (the gateway counts, the kernel passes it
   *  over later). */
  addWithdrawn(fnId: number): void {
    Atomics.add(this.words, this.at(fnId, WITHDRAWN), 1n);
  }

  /** Queued descriptors not withdrawn: those really waiting. */
  live(fnId: number): number {
    const pendingStale = Number(Atomics.load(this.words, this.at(fnId, WITHDRAWN))) - this.stale(fnId);
    return Math.max(0, this.queued(fnId) - pendingStale);
  }

  /** Live waiting descriptors and idle tokens read at one instant: `consistent` if nothing
   *  changed while they were read (a snapshot that is not may show a state that never existed). */
  snapshot(fnId: number): { queued: number; idle: number; consistent: boolean; events: number } {
    const before = Atomics.load(this.words, this.at(fnId, EVENTS));
    const queued = this.live(fnId);
    const idle = this.count(fnId);
    const events = Atomics.load(this.words, this.at(fnId, EVENTS));
    return { queued, idle, consistent: events === before, events: Number(events) };
  }

  clear(fnId: number): void {
    for (let i = 0; i < IDLE_STRIDE; i++) Atomics.store(this.words, this.at(fnId, i), 0n);
  }
}

function bitIndex(powerOfTwo: bigint): number {
  let n = 0;
  for (let b = powerOfTwo; b > 1n; b >>= 1n) n++;
  return n;
}
