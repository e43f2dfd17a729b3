// What a scenario gets to work with: the run's settings, a place for temporary files,
// progress output, and a recorder for its figures.
import type { Distribution } from './stats.ts';

export interface Recorder {
  /** A figure measured `values.length` times: its median and spread are kept. */
  metric(system: string, metric: string, values: number[], unit: string, better: 'lower' | 'higher', config?: unknown): void;
  /** A distribution of samples; returns its summary. */
  distribution(system: string, metric: string, samples: number[], unit: string): Distribution;
  /** Values over time (seconds into the measurement), one line per `series` (a function, say). */
  series(system: string, metric: string, points: SeriesPoint[], unit: string): void;
}

export interface SeriesPoint {
  t: number;
  series: string;
  value: number;
}

/** smoke: seconds, for the test suite; quick: about two minutes for all; full: stable medians. */
export type BenchMode = 'smoke' | 'quick' | 'full';

export interface BenchContext {
  mode: BenchMode;
  /** The setting for this mode. */
  pick<T>(by: Record<BenchMode, T>): T;
  /** Repetitions of each measurement (medians over them). */
  reps: number;
  /** A scratch directory for this run. */
  tmp: string;
  record: Recorder;
  /** Whether system `name` is to run (bench --systems). */
  wants(name: string): boolean;
  /** Reports progress within the scenario: `done` of `total` steps, and what runs now. */
  progress(done: number, total: number, step: string): void;
}

export interface Scenario {
  name: string;
  title: string;
  /** Systems the others are compared with, first is the main one. */
  baselines: string[];
  /** false: only when named (long runs such as soak); default true. */
  inAll?: boolean;
  run(ctx: BenchContext): Promise<void>;
}
