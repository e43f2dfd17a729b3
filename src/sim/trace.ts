// What `baton simulate` reads: a model node, its functions (exec-time distribution, start time,
// memory, scaling bounds), routes (chains with run-time branches whose probabilities may shift
// over the run) and arrivals (Poisson, or bursty: on/off), as JSON. Validated with zod so a
// mistake reads "routes.0.branches.1: ...".
import { z } from 'zod';

const dist = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('constant'), ms: z.number().nonnegative() }),
  z.strictObject({ kind: z.literal('exponential'), meanMs: z.number().positive() }),
  /** lognormal by its median and the sigma of its log */
  z.strictObject({ kind: z.literal('lognormal'), medianMs: z.number().positive(), sigma: z.number().nonnegative() }),
]);

export const traceSchema = z.strictObject({
  durationMs: z.number().int().positive(),
  seed: z.number().int().default(1),
  node: z.strictObject({ memoryMiB: z.number().positive().default(1e9) }).prefault({}),
  functions: z.record(
    z.string(),
    z.strictObject({
      exec: dist,
      startMs: z.number().nonnegative().default(100),
      memoryMiB: z.number().positive().default(512),
      instances: z.number().int().min(0).default(1),
      minInstances: z.number().int().min(0).default(0),
      maxInstances: z.number().int().min(1).default(64),
      warm: z.number().int().min(0).default(0),
      idleAfterMs: z.number().int().min(0).default(30_000),
      concurrency: z.number().int().min(1).default(1),
    }),
  ),
  routes: z
    .array(
      z.strictObject({
        chain: z.array(z.union([z.string(), z.array(z.string()).min(2)])).min(1),
        slo: z.number().positive().optional(),
        /** Per branch step (its index in chain): from `atMs` on, the arms' probabilities. */
        branches: z.record(z.string(), z.array(z.strictObject({ atMs: z.number().nonnegative(), p: z.array(z.number().nonnegative()) })).min(1)).default({}),
      }),
    )
    .min(1),
  arrivals: z
    .array(
      z.strictObject({
        route: z.number().int().min(0),
        /** Requests per second; several entries: the rate from each `atMs` on. */
        rate: z.array(z.strictObject({ atMs: z.number().nonnegative(), perSecond: z.number().nonnegative() })).min(1),
        /** bursty: the rate holds for onMs, then nothing for offMs, repeated. */
        pattern: z.union([z.literal('poisson'), z.strictObject({ onMs: z.number().positive(), offMs: z.number().nonnegative() })]).default('poisson'),
      }),
    )
    .min(1),
});

export type Trace = z.output<typeof traceSchema>;
export type TraceInput = z.input<typeof traceSchema>;
export type Distribution = z.output<typeof dist>;
