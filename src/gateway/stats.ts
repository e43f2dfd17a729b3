// Timing aggregated per function and per request, from each reply's hop trace, for the admin
// status and the shedder. Recorded on the gateway's hot path (a 5-function request records 12
// values), so the histograms are plain typed arrays in JavaScript: node:perf_hooks' HDR
// histogram costs a call into C++ per value (~24 ns, ten times this; 1.7% of the gateway's CPU
// at saturation, perf). Values are microseconds.
import type { HopTrace } from '../pool/index.ts';
import { firstStart } from './timing.ts';

export interface Summary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** Bins per power of two: values below 2 × SUB are kept exactly, larger ones within 1/SUB. */
const SUB_BITS = 6;
const SUB = 1 << SUB_BITS;
/** Values up to 2^32 - 1 µs (71 minutes); larger ones count as that. */
const BINS = SUB + (32 - SUB_BITS) * SUB;

/** HDR's log-linear layout over whole microseconds: one bin per value below 2 × SUB, then SUB
 *  bins per power of two. */
export class MicrosHistogram {
  private readonly bins = new Float64Array(BINS);
  count = 0;
  max = 0;

  record(us: number): void {
    const v = us >= 0xffffffff ? 0xffffffff : us > 0 ? Math.round(us) >>> 0 : 0;
    this.bins[binOf(v)]!++;
    this.count++;
    if (v > this.max) this.max = v;
  }

  /** The value at percentile `p` (0–100): the largest value of its bin, at most the maximum. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BINS; i++) {
      seen += this.bins[i]!;
      if (seen >= rank) return Math.min(highestIn(i), this.max);
    }
    return this.max;
  }
}

function binOf(v: number): number {
  if (v < SUB) return v;
  const e = 31 - Math.clz32(v); // v is in [2^e, 2^(e+1)): SUB bins of 2^(e - SUB_BITS) values
  return SUB + (e - SUB_BITS) * SUB + ((v >>> (e - SUB_BITS)) - SUB);
}

function highestIn(bin: number): number {
  if (bin < SUB) return bin;
  const shift = (bin - SUB) >> SUB_BITS;
  const low = (SUB + ((bin - SUB) & (SUB - 1))) * 2 ** shift;
  return low + 2 ** shift - 1;
}

function summary(h: MicrosHistogram): Summary {
  return { count: h.count, p50: h.percentile(50), p99: h.percentile(99), max: h.max };
}

export class TimingStats {
  /** Per function: send → start (delivery, binding and queueing), start → end (run). */
  private readonly wait: MicrosHistogram[];
  private readonly run: MicrosHistogram[];
  /** Per request: arrival → first handler start (response time), arrival → reply (JCT). */
  private readonly response = new MicrosHistogram();
  private readonly jct = new MicrosHistogram();

  constructor(private readonly names: string[]) {
    this.wait = names.map(() => new MicrosHistogram());
    this.run = names.map(() => new MicrosHistogram());
  }

  record(trace: HopTrace[], received: number): void {
    for (const t of trace) {
      this.wait[t.fnId]?.record(t.start - t.sent);
      this.run[t.fnId]?.record(t.end - t.start);
    }
    if (trace.length) this.response.record(firstStart(trace));
    this.jct.record(received);
  }

  /** Function `fnId`'s median run time, µs (0: none measured). */
  runP50(fnId: number): number {
    return this.run[fnId]?.percentile(50) ?? 0;
  }

  snapshot() {
    return {
      unit: 'µs',
      responseTime: summary(this.response),
      jct: summary(this.jct),
      functions: Object.fromEntries(this.names.map((n, i) => [n, { wait: summary(this.wait[i]!), run: summary(this.run[i]!) }])),
    };
  }
}
