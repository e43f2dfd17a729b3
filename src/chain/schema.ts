// What a chain file may say. zod reports each problem with its path, so an error reads
// "routes.0.chain.1: unknown function 'transfrom'".
import { z } from 'zod';
import { CLASSES } from '../admission/classes.ts';

const UNITS: Record<string, number> = { b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, kb: 1000, mb: 1000 ** 2 };

/** A byte size: a number, or a string like "512KiB" or "2MiB". */
export const byteSize = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v) : null;
  const unit = m ? UNITS[(m[2] || 'b').toLowerCase()] : 1;
  const n = typeof v === 'number' ? v : m && unit ? Math.round(Number(m[1]) * unit) : NaN;
  if (!Number.isInteger(n) || n <= 0) {
    ctx.addIssue({ code: 'custom', message: `expected a byte size such as 65536, "512KiB" or "2MiB", got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return n;
});

export const FUNCTION_NAME = /^[a-z][a-z0-9-]{0,62}$/;

const step = z.union([z.string(), z.array(z.string()).min(2, 'a branch lists at least two functions')]);

const binding = z.enum(['late', 'early']);

export const chainFileSchema = z.strictObject({
  /** late: bind each descriptor to an idle instance (default); early: round robin at send. */
  binding: binding.default('late'),
  gateway: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8080),
      timeoutMs: z.number().int().positive().default(30_000),
      /** A request body must arrive within this (408 otherwise); headers too. */
      bodyTimeoutMs: z.number().int().positive().default(10_000),
      /** A client must take its response within this, or loses the connection. */
      sendTimeoutMs: z.number().int().positive().default(10_000),
      /** Each step of an instance start (the process up and warm; its module loaded) must finish within this. */
      startTimeoutMs: z.number().int().positive().default(10_000),
      logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /** Server-Timing on a successful answer: when the request asks (x-baton-timing), or always. */
      serverTiming: z.enum(['asked', 'always']).default('asked'),
      /** After each descriptor, keep polling this long before sleeping (see README: costs CPU). */
      spinUs: z.number().int().min(0).max(1_000_000).default(0),
      /** Functions with spinUs stop polling, and work at normal priority, once processes other
       *  than their instances use this share of the node's CPU two seconds running (back after
       *  a second below half of it). */
      spinStopsAt: z.number().gt(0).max(1).default(0.4),
      /** Where descriptors are routed: the kernel's SK_MSG program (sockmap), the user-space
       *  broker, or auto (the kernel's, else the broker after a warning). */
      dataplane: z.enum(['auto', 'sockmap', 'broker']).default('auto'),
      /** OpenTelemetry spans per request and hop, out through OTLP/HTTP (see README). */
      tracing: z
        .strictObject({
          otlp: z.url({ protocol: /^https?$/ }).optional(),
          serviceName: z.string().min(1).default('baton'),
        })
        .prefault({}),
      /** Who sizes each function's instance pool at run time (see README "Scaling"). */
      scaler: z
        .strictObject({
          /** static: what is configured (and POST /_baton/scale); reactive: Knative's KPA;
           *  kraken: Kraken's DAG-aware proactive and reactive passes. */
          policy: z.enum(['static', 'reactive', 'kraken']).default('static'),
          /** How often the load is sampled, and how often the policy decides. */
          sampleMs: z.number().int().min(10).max(60_000).default(500),
          tickMs: z.number().int().min(10).max(600_000).default(2000),
          /** reactive: the windows the load is averaged over, and when to panic. */
          stableWindowMs: z.number().int().min(10).max(3_600_000).default(60_000),
          panicWindowMs: z.number().int().min(10).max(3_600_000).default(6000),
          panicThreshold: z.number().min(1).max(100).default(2),
          targetUtilization: z.number().positive().max(1).default(0.7),
          /** kraken: the load predictor's EWMA weight, how fast learned branch probabilities
           *  follow new requests, the extra weight of Connectivity and Commonality and its cap,
           *  the SLO of a route without its own. */
          ewmaAlpha: z.number().positive().max(1).default(0.5),
          /** kraken: the proactive pass's window at least (and at least the measured start). */
          predictWindowMs: z.number().int().min(10).max(600_000).default(1000),
          /** kraken: a window whose arrivals lie this many standard deviations (Poisson: the
           *  square root of those predicted) from the prediction restarts the predictor from it
           *  (0: never). */
          changeSigmas: z.number().min(0).max(100).default(3),
          probabilityAlpha: z.number().positive().max(1).default(0.05),
          connectivityWeight: z.number().min(0).max(10).default(0.5),
          commonalityWeight: z.number().min(0).max(10).default(0.5),
          weightCap: z.number().min(1).max(10).default(2),
          sloMs: z.number().int().positive().default(1000),
        })
        .prefault({}),
      /** Request classes and Aequitas' admission control (see README "Admission control"). */
      admission: z
        .strictObject({
          /** Off: classes are counted, nothing is downgraded or refused. */
          enabled: z.boolean().default(false),
          /** Each class's latency target, ms. */
          slo: z
            .strictObject({
              critical: z.number().positive().default(100),
              normal: z.number().positive().default(1000),
              'best-effort': z.number().positive().default(10_000),
            })
            .prefault({}),
          /** The admit probability's additive increase, its decrease per unit of size on a miss,
           *  its floor, the bytes of one unit, and the least time between two updates. */
          alpha: z.number().positive().max(1).default(0.01),
          beta: z.number().positive().max(1).default(0.01),
          floor: z.number().min(0).max(1).default(0.1),
          sizeUnit: byteSize.default(64 * 1024),
          windowMs: z.number().positive().max(60_000).default(10),
          /** best-effort requests in flight at once, beyond which one is refused 429. */
          lowestInFlight: z.number().int().min(1).max(1_000_000).default(256),
          /** Of the takings from a function's queues, the share that serves best-effort first
           *  (so it is never starved by higher classes; 0: strict priority). */
          starvationShare: z.number().min(0).max(0.5).default(0.05),
          /** Shed a waiting request as soon as the rest of its chain (median run times) no longer
           *  fits in its timeout (503 BATON_ERR_SHED), looked at every shedCheckMs. */
          shed: z.boolean().default(false),
          shedCheckMs: z.number().int().min(1).max(10_000).default(10),
          /** Retry-After of a 429, seconds. */
          retryAfterS: z.number().int().min(0).max(3600).default(1),
        })
        .prefault({}),
      /** Status and scaling: an address apart from the public one (0: any free port). */
      admin: z
        .strictObject({
          host: z.string().default('127.0.0.1'),
          port: z.number().int().min(0).max(65535).default(9180),
        })
        .prefault({}),
    })
    .prefault({}),
  node: z
    .strictObject({
      /** What the functions' processes (instances and spares, each at its function's `memory`)
       *  may take together; default: 80% of the machine's memory. */
      memory: byteSize.optional(),
    })
    .prefault({}),
  isolation: z
    .strictObject({
      /** Function i's instances run as uid and gid uidBase + i (when the gateway is root). */
      uidBase: z.number().int().min(1000).max(2 ** 31 - 1 - 256).default(200_000),
    })
    .prefault({}),
  pool: z
    .strictObject({
      slotSize: byteSize.default(2 * 1024 * 1024),
      slots: z.number().int().min(1).max(65536).default(64),
    })
    .prefault({}),
  functions: z.record(
    z.string(), // names are checked in load.ts: zod's record-key errors do not carry a message
    z.strictObject({
      module: z.string().min(1),
      /** Instances started with the gateway (0: the first request starts one; late binding). */
      instances: z.number().int().min(0).max(512).default(1),
      /** Bounds for run-time scaling (default: the starting count). minInstances 0: the
       *  scaler may release every instance when idle (late binding). */
      minInstances: z.number().int().min(0).max(512).optional(),
      maxInstances: z.number().int().min(1).max(512).optional(),
      /** Idle instances the scaler keeps above what the load needs (a warm reserve). */
      warm: z.number().int().min(0).max(512).default(0),
      /** An instance the load no longer needs is released only after this long (to zero too). */
      idleAfterMs: z.number().int().min(0).max(86_400_000).default(30_000),
      /** The reactive policy's target: requests in flight per instance (default: concurrency
       *  × gateway.scaler.targetUtilization). */
      target: z.number().positive().max(100_000).optional(),
      /** Processes kept started, runtime loaded, for instances to come (default 1 when it can
       *  scale up, else 0): adding an instance then costs loading the module only. */
      spares: z.number().int().min(0).max(512).optional(),
      /** Descriptors one instance runs at once (containerConcurrency). */
      concurrency: z.number().int().min(1).max(512).default(1),
      binding: binding.optional(),
      /** Late binding: descriptors that may wait for an idle instance before 503. */
      queueDepth: z.number().int().min(1).max(1_000_000).default(1024),
      /** Functions it may call with ctx.call() (in its own domain); calls must not form a cycle. */
      calls: z.array(z.string()).default([]),
      /** Extra environment variables for the function's processes. */
      env: z.record(z.string(), z.string()).default({}),
      /** Per instance: memory (no swap), tasks, and optionally CPU cores; enforced by cgroups. */
      memory: byteSize.default(512 * 1024 * 1024),
      pids: z.number().int().min(16).max(100_000).default(128),
      cpu: z.number().positive().max(1024).optional(),
      /** After each descriptor, its instances keep polling this long before sleeping. */
      spinUs: z.number().int().min(0).max(1_000_000).default(0),
    }),
  ),
  routes: z
    .array(
      z.strictObject({
        method: z
          .string()
          .transform((m) => m.toUpperCase())
          .pipe(z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'])),
        path: z.string().startsWith('/', 'a path starts with /'),
        /** Routes naming the same domain share a pool and instances; by default each is its own. */
        domain: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'a domain name is letters, digits, dots, dashes and underscores').optional(),
        chain: z.array(step).min(1, 'a chain has at least one function'),
        /** ms a request may take end to end (the kraken policy splits it across the stages). */
        slo: z.number().int().positive().optional(),
        /** Its requests' class (a client may lower it with x-baton-class). */
        class: z.enum(CLASSES).default('normal'),
      }),
    )
    .min(1, 'at least one route'),
});

export type ChainFileInput = z.input<typeof chainFileSchema>;
export type ChainFile = z.output<typeof chainFileSchema>;
