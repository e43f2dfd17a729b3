// Idle tokens, shared with the kernel: IDLE_WORDS u64 words per function in the
// memory-mapped baton_idle map. An instance with concurrency c owns tokens
// [index·c, index·c + c); a set bit is an idle token. The SK_MSG program claims bits with
// atomic fetch-and; here the dispatcher returns them with atomic OR on the same memory.
import { IDLE_WORDS, MAX_FUNCTIONS } from '../descriptor/index.ts';

const ALL = (1n << 64n) - 1n;
// one bit and its complement per position: no BigInt arithmetic on the hot path
const BIT = Array.from({ length: 64 }, (_, i) => 1n << BigInt(i));
const CLEAR = BIT.map((b) => ALL ^ b);

export class IdleTokens {
  private readonly words: BigUint64Array;

  constructor(buffer: ArrayBuffer) {
    this.words = new BigUint64Array(buffer, 0, MAX_FUNCTIONS * IDLE_WORDS);
  }

  /** Marks one busy token of instance `index` idle; false if all its tokens already are. */
  give(fnId: number, index: number, concurrency: number): boolean {
    for (let t = index * concurrency; t < (index + 1) * concurrency; t++) {
      const w = fnId * IDLE_WORDS + (t >> 6);
      const bit = BIT[t & 63]!;
      if ((Atomics.or(this.words, w, bit) & bit) === 0n) return true;
    }
    return false;
  }

  /** Claims any idle token of `fnId`; returns its instance index, or -1 if none is idle. */
  take(fnId: number, concurrency: number): number {
    for (let i = 0; i < IDLE_WORDS; i++) {
      const w = fnId * IDLE_WORDS + i;
      for (let bits = Atomics.load(this.words, w); bits !== 0n; bits = Atomics.load(this.words, w)) {
        const low = bits & -bits;
        if ((Atomics.and(this.words, w, ALL ^ low) & low) !== 0n) {
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
      const w = fnId * IDLE_WORDS + (t >> 6);
      if ((Atomics.and(this.words, w, CLEAR[t & 63]!) & BIT[t & 63]!) !== 0n) idle++;
    }
    return idle;
  }

  /** Idle tokens of `fnId`. */
  count(fnId: number): number {
    let n = 0;
    for (let i = 0; i < IDLE_WORDS; i++) {
      for (let bits = Atomics.load(this.words, fnId * IDLE_WORDS + i); bits !== 0n; bits &= bits - 1n) n++;
    }
    return n;
  }

  clear(fnId: number): void {
    for (let i = 0; i < IDLE_WORDS; i++) Atomics.store(this.words, fnId * IDLE_WORDS + i, 0n);
  }

}

function bitIndex(powerOfTwo: bigint): number {
  let n = 0;
  for (let b = powerOfTwo; b > 1n; b >>= 1n) n++;
  return n;
}
