// Distributions and summaries. Percentiles come from Node's built-in HDR histogram
// (perf_hooks.createHistogram, HdrHistogram in Node's core), not from code of ours.
import { createHistogram } from 'node:perf_hooks';

export interface Distribution {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** Summarises samples (any unit; recorded at 1/1000 of a unit's resolution). */
export function distribution(samples: number[]): Distribution {
  const h = createHistogram();
  for (const s of samples) h.record(Math.max(1, Math.round(s * 1000)));
  const at = (p: number) => h.percentile(p) / 1000;
  return {
    count: h.count, min: h.min / 1000, p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: h.max / 1000, mean: h.mean / 1000,
  };
}

/** The median of repeated measurements and their spread ((max − min) / median). */
export function medianOf(values: number[]): { median: number; spread: number } {
  // exact, unlike the histogram's buckets (which also cannot hold a 0)
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const range = sorted[sorted.length - 1]! - sorted[0]!;
  return { median, spread: median ? range / median : 0 };
}
