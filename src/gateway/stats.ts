// Timing aggregated per function and per request, from each reply's hop trace. Node's
// built-in HDR histograms (perf_hooks) keep the distributions; values are microseconds.
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import type { HopTrace } from '../pool/index.ts';
import { firstStart } from './timing.ts';

export interface Summary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

function summary(h: RecordableHistogram): Summary {
  return { count: h.count, p50: h.count ? h.percentile(50) : 0, p99: h.count ? h.percentile(99) : 0, max: h.count ? h.max : 0 };
}

export class TimingStats {
  /** Per function: send → start (delivery, binding and queueing), start → end (run). */
  private readonly wait: RecordableHistogram[];
  private readonly run: RecordableHistogram[];
  /** Per request: arrival → first handler start (response time), arrival → reply (JCT). */
  private readonly response = createHistogram();
  private readonly jct = createHistogram();

  constructor(private readonly names: string[]) {
    this.wait = names.map(() => createHistogram());
    this.run = names.map(() => createHistogram());
  }

  record(trace: HopTrace[], received: number): void {
    for (const t of trace) {
      this.wait[t.fnId]?.record(Math.max(1, Math.round(t.start - t.sent)));
      this.run[t.fnId]?.record(Math.max(1, Math.round(t.end - t.start)));
    }
    if (trace.length) this.response.record(Math.max(1, Math.round(firstStart(trace))));
    this.jct.record(Math.max(1, Math.round(received)));
  }

  /** Function `fnId`'s median run time, µs (0: none measured). */
  runP50(fnId: number): number {
    const h = this.run[fnId];
    return h?.count ? h.percentile(50) : 0;
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
