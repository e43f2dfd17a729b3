// A chain file compiled into what runs: numbered functions, each function's sockmap keys,
// and chains as steps of function ids (a step with several ids is a run-time branch).
// The gateway builds it once; every worker receives it, so all agree on ids and keys.
import type { DataplaneChoice } from '../dataplane/dataplane.ts';
import type { TracingSettings } from '../gateway/tracing.ts';
import type { AdmissionSettings } from '../admission/admission.ts';
import { GATEWAY_KEY } from '../descriptor/index.ts';
import type { PoolGeometry } from '../pool/index.ts';

export type Binding = 'late' | 'early';

/** A function as it runs in one security domain: a function used by routes of two domains is
 *  two of these, each with its own instances, keys and id (the kernel's function address). */
export interface FunctionSpec {
  id: number;
  name: string;
  domain: number;
  /** `name`, or `name@domain` where the name runs in several domains (status, timing). */
  label: string;
  /** Absolute path of the module. */
  module: string;
  /** Instances started with the gateway. */
  instances: number;
  minInstances: number;
  maxInstances: number;
  /** Warm processes kept for instances to come (at most the keys no instance uses). */
  spares: number;
  /** Idle instances the scaler keeps above the load's need. */
  warm: number;
  /** How long an instance the load no longer needs is kept before it is released. */
  idleAfterMs: number;
  /** Requests in flight per instance the reactive policy aims at. */
  target: number;
  concurrency: number;
  binding: Binding;
  queueDepth: number;
  env: Record<string, string>;
  /** Per-instance limits: bytes of memory, tasks, cores (undefined: no CPU limit). */
  memory: number;
  pids: number;
  cpu?: number;
  /** µs its instances keep polling after each descriptor before they sleep (0: never). */
  spinUs: number;
  /** Sockmap keys reserved for its instances, maxInstances of them: instance i has keys[i]. */
  keys: number[];
  /** Functions (ids, same domain) it may call with ctx.call(). */
  calls: number[];
}

export interface ChainSpec {
  id: number;
  domain: number;
  /** Function ids (of the chain's domain) per step; several: a run-time branch. */
  steps: number[][];
}

/** A security domain: its routes' requests live in its own pool, which only its instances map.
 *  Its slots are slotBase..slotBase+pool.slotCount-1 of the kernel's custody map. */
export interface DomainSpec {
  id: number;
  name: string;
  slotBase: number;
}

export interface RouteSpec {
  method: string;
  path: string;
  chainId: number;
  /** ms a request may take end to end (used by the kraken policy). */
  slo?: number;
  /** Its requests' class (src/admission/classes.ts; 0 is the highest). */
  classRank: number;
}

export interface Deployment {
  functions: FunctionSpec[];
  chains: ChainSpec[];
  routes: RouteSpec[];
  domains: DomainSpec[];
  /** Every domain's pool has this geometry. */
  pool: PoolGeometry;
  isolation: { uidBase: number };
  /** The node budget: bytes the functions' processes may take together (see the scaler). */
  node: { memory: number };
  gateway: {
    host: string;
    port: number;
    timeoutMs: number;
    bodyTimeoutMs: number;
    sendTimeoutMs: number;
    startTimeoutMs: number;
    logLevel: string;
    /** Server-Timing on successful answers: when the request asks for it, or always. */
    serverTiming: 'asked' | 'always';
    /** µs the gateway keeps polling after each descriptor before it sleeps (0: never). */
    spinUs: number;
    /** Share of the node's CPU used by other processes at which spinning functions stop polling. */
    spinStopsAt: number;
    /** The data plane asked for (BATON_DATAPLANE and --dataplane override it). */
    dataplane: DataplaneChoice;
    tracing: TracingSettings;
    scaler: ScalerSettings;
    admission: AdmissionSettings;
    admin: { host: string; port: number };
  };
}

/** gateway.scaler in the chain file. */
export interface ScalerSettings {
  policy: 'static' | 'reactive' | 'kraken';
  sampleMs: number;
  tickMs: number;
  stableWindowMs: number;
  panicWindowMs: number;
  panicThreshold: number;
  targetUtilization: number;
  ewmaAlpha: number;
  predictWindowMs: number;
  changeSigmas: number;
  probabilityAlpha: number;
  connectivityWeight: number;
  commonalityWeight: number;
  weightCap: number;
  sloMs: number;
}

export { GATEWAY_KEY };
export type { AdmissionSettings };

/** Keys are handed out densely after the gateway's 0. */
export function assignKeys(instanceCounts: number[]): number[][] {
  let next = GATEWAY_KEY + 1;
  return instanceCounts.map((n) => Array.from({ length: n }, () => next++));
}

/** For each function, the functions it may call: any function of the step after one of its own,
 *  in any chain (run-time branches included), and its `calls`. Replies to the gateway are
 *  always allowed. */
export function callees(d: Pick<Deployment, 'functions' | 'chains'>): number[][] {
  const out = d.functions.map((f) => new Set<number>(f.calls));
  for (const { steps } of d.chains) {
    for (let i = 0; i + 1 < steps.length; i++) for (const from of steps[i]!) for (const to of steps[i + 1]!) out[from]!.add(to);
  }
  return out.map((s) => [...s].sort((a, b) => a - b));
}

/** For each function, the functions it may return a result to: those that may ctx.call() it. */
export function callers(d: Pick<Deployment, 'functions'>): number[][] {
  const out = d.functions.map(() => [] as number[]);
  for (const f of d.functions) for (const c of f.calls) out[c]!.push(f.id);
  return out;
}
