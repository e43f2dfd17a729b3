// A scaling policy decides how many instances each function needs from the load it has seen.
// The scaler (scaler.ts) samples the load, asks the policy, and applies what it says within the
// chain file's bounds, a warm reserve and a hold-down before releasing instances. Policies are
// pure: time comes in as an argument, so the same code runs on the gateway's clock or on a
// virtual one.

/** One function's load at a sample. */
export interface FunctionLoad {
  fnId: number;
  name: string;
  /** Requests at the function: running in an instance, or waiting for one. */
  inFlight: number;
  /** Instances serving or on their way (what the scaler asked for last). */
  instances: number;
  minInstances: number;
  maxInstances: number;
  /** Requests in flight per instance to aim at. */
  target: number;
  /** Descriptors one instance runs at once. */
  concurrency: number;
  /** ms its latest instance took from start to ready (undefined: none started yet). */
  startMs?: number;
}

/** One hop of an answered request, as its trace recorded it. */
export interface HopRecord {
  fnId: number;
  /** Sent → its handler started (delivery, binding, queueing). */
  waitMs: number;
  runMs: number;
}

/** Instances a function needs, and why (logged at debug, shown in status). */
export interface Decision {
  fnId: number;
  want: number;
  reason: string;
}

export interface ScalingPolicy {
  readonly name: string;
  /** A sample of every function's load at `now` (ms). */
  observe(now: number, loads: readonly FunctionLoad[]): void;
  /** What each function needs at `now`; a function left out keeps what it has. */
  decide(now: number, loads: readonly FunctionLoad[]): Decision[];
  /** A request of chain `chainId` was answered, having run `hops` in order (for policies that
   *  learn the chains' shape and costs). */
  observeRequest?(now: number, chainId: number, hops: readonly HopRecord[]): void;
}
