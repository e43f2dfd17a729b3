// What the gateway tells a worker at spawn (env BATON_WORKER, JSON). The fds are the
// positions in the child's stdio array.
import type { Deployment } from '../chain/index.ts';

export const WORKER_SOCKET_FD = 3;
export const WORKER_POOL_FD = 4;
export const WORKER_ENV = 'BATON_WORKER';

export interface WorkerConfig {
  fnId: number;
  key: number;
  /** The worker dies with this process, whatever state it is in. */
  gatewayPid: number;
  /** Request timeout: a descriptor whose deadline passed before it ran is handed back. */
  timeoutMs: number;
  /** Whether a handler's ctx.willTake() sheds a run that cannot finish in time. */
  shed: boolean;
  deployment: Pick<Deployment, 'functions' | 'chains' | 'pool'>;
  /** The first slot of its domain's pool: descriptors number slots across all domains. */
  slotBase: number;
  /** Keys of each function's running instances (early binding picks among them). */
  live: number[][];
}

/** Messages a worker sends the gateway over the IPC channel. */
export type WorkerMessage =
  /** Runtime loaded, placed in its cgroup: it waits for 'serve' (a spare until then). */
  | { type: 'spare' }
  | { type: 'ready' }
  | { type: 'fatal'; message: string }
  | { type: 'log'; level: 'warn' | 'error'; message: string; reqId?: number }
  /** What function code wrote to process.stdout / process.stderr (console.*). */
  | { type: 'output'; stream: 'stdout' | 'stderr'; text: string; reqId?: number }
  /** (spinUs) it polls after each descriptor from now on, or not: the answer to 'spin'. */
  | { type: 'spin'; on: boolean };

/** Messages the gateway sends a worker: 'start' once it is in its cgroup, 'serve' to load the
 *  function's bundle (`entry`) and serve. A process started to serve at once gets `serve` with
 *  'start' and does not wait for the message (a later one is ignored); `collator`: its function
 *  compares strings by locale (warm ICU's collator up). */
export type GatewayMessage =
  | { type: 'live'; live: number[][] }
  | { type: 'start'; serve?: string; collator?: boolean }
  | { type: 'serve'; entry: string }
  /** (spinUs) whether to poll after each descriptor: not while the node's CPUs are busy. */
  | { type: 'spin'; on: boolean };
