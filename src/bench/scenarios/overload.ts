// overload: request classes under 1×, 2× and 3× a function pool's capacity. One function (40 ms
// per request, 4 instances: 100 req/s; slow enough that the pool, not the gateway's CPU, is what
// overflows on 2 cores) behind three routes of one domain, one per class — critical (SLO 120 ms,
// 20% of requests), normal (400 ms, 30%), best-effort (5 s, 50%) — under
// open-loop Poisson arrivals. Three gateways: every request equal (today's FIFO: the routes
// carry no class), classes without admission (priority queues only), and admission control
// (classes, Aequitas' admit probabilities, the best-effort limit, deadline-aware shedding).
// Per class: latency percentiles of the successful answers, goodput (answers within the
// class's SLO per second), and what admission did (admitted, downgraded, refused, shed).
import type { ChainFileInput } from '../../chain/index.ts';
import { forkReady, nextMessage, stop } from '../procs.ts';
import type { BenchContext, Scenario, SeriesPoint } from '../context.ts';
import { startBaton, BENCH_FUNCTIONS } from '../systems/baton.ts';
import type { KindResult, MixJob } from '../load/mix-child.ts';
import { sibling } from '../../paths.ts';

const MIX = sibling(import.meta.url, '../load/mix-child.ts');
const EXEC_MS = 40;
const INSTANCES = 4;
const CAPACITY = (INSTANCES * 1000) / EXEC_MS;
const CLASSES = [
  { name: 'critical', sloMs: 120, weight: 0.2 },
  { name: 'normal', sloMs: 400, weight: 0.3 },
  { name: 'best-effort', sloMs: 5000, weight: 0.5 },
] as const;
const SYSTEMS = ['every request equal (FIFO)', 'classes, no admission', 'admission control'] as const;
type System = (typeof SYSTEMS)[number];

function chain(system: System): ChainFileInput {
  const classes = system !== SYSTEMS[0];
  return {
    gateway: {
      timeoutMs: 5000,
      admission: {
        enabled: system === 'admission control', shed: system === 'admission control',
        slo: Object.fromEntries(CLASSES.map((c) => [c.name, c.sloMs])) as Record<(typeof CLASSES)[number]['name'], number>,
      },
    },
    pool: { slots: 8192, slotSize: '64KiB' },
    functions: { work: { module: `${BENCH_FUNCTIONS}stage.ts`, instances: INSTANCES, spares: 0, queueDepth: 100_000, env: { SLEEP_MS: String(EXEC_MS) } } },
    routes: CLASSES.map((c) => ({ method: 'POST', path: `/${c.name}`, chain: ['work'], domain: 'one', ...(classes ? { class: c.name } : {}) })),
  };
}

type AdmissionCounts = Record<string, { admitted: number; downgraded: number; rejected: number; shed: number }>;

export const overload: Scenario = {
  name: 'overload',
  title: 'Request classes at 1×, 2× and 3× capacity: FIFO, priority queues, admission control',
  baselines: [SYSTEMS[0]],
  async run(ctx: BenchContext) {
    const seconds = ctx.pick({ smoke: 1, quick: 5, full: 15 });
    const loads = ctx.pick({ smoke: [3], quick: [1, 2, 3], full: [1, 2, 3] });
    let step = 0;
    for (const system of SYSTEMS) {
      for (const x of loads) {
        ctx.progress(step++, SYSTEMS.length * loads.length, `${system}: ${x}× capacity (${x * CAPACITY} req/s) for ${seconds} s`);
        const sys = await startBaton(ctx.tmp, 'overload', chain(system));
        const client = await forkReady(MIX, []);
        try {
          const run = async (rate: number, duration: number) => {
            const job: MixJob = { origin: new URL(sys.url).origin, connections: 2048, duration, rate, seed: 7, kinds: CLASSES.map((c) => ({ path: `/${c.name}`, weight: c.weight, sloMs: c.sloMs })) };
            client.send(job);
            return (await nextMessage<{ kinds: KindResult[] }>(client, (m) => 'kinds' in (m as object))).kinds;
          };
          await run(CAPACITY / 2, Math.min(1, seconds)); // run times measured, code paths warm
          const before = await counts(sys.adminUrl);
          // the admit probabilities over the run, four times a second
          const probabilities: SeriesPoint[] = [];
          const t0 = performance.now();
          const sampler = setInterval(async () => {
            const t = Math.round((performance.now() - t0) / 100) / 10;
            for (const p of (await admission(sys.adminUrl)).probabilities) probabilities.push({ t, series: p.class, value: p.p });
          }, 250);
          const kinds = await run(x * CAPACITY, seconds).finally(() => clearInterval(sampler));
          const after = await counts(sys.adminUrl);
          if (system === 'admission control') ctx.record.series(system, `admit probability at ${x}× capacity`, probabilities, 'p');
          const config = { x, xTitle: 'offered load (× capacity)' };
          CLASSES.forEach((c, i) => {
            const k = kinds[i]!;
            ctx.record.metric(system, `${c.name} p50`, [k.p50], 'ms', 'lower', config);
            ctx.record.metric(system, `${c.name} p99`, [k.p99], 'ms', 'lower', config);
            ctx.record.metric(system, `${c.name} p99.9`, [k.p999], 'ms', 'lower', config);
            ctx.record.metric(system, `${c.name} goodput (within SLO)`, [k.withinSlo / seconds], 'req/s', 'higher', config);
            const failed = Object.entries(k.statuses).filter(([s]) => !s.startsWith('2')).reduce((n, [, v]) => n + v, 0);
            ctx.record.metric(system, `${c.name} not answered 2xx`, [(100 * failed) / Math.max(1, k.sent)], '%', 'lower', { ...config, statuses: k.statuses });
            const d = (f: 'admitted' | 'downgraded' | 'rejected' | 'shed') => (after[c.name]?.[f] ?? 0) - (before[c.name]?.[f] ?? 0);
            if (system === 'admission control') {
              const asked = d('admitted') + d('downgraded') + d('rejected');
              ctx.record.metric(system, `${c.name} admitted at its class`, [(100 * d('admitted')) / Math.max(1, asked)], '%', 'higher', config);
              ctx.record.metric(system, `${c.name} downgraded`, [d('downgraded')], 'requests', 'lower', config);
              ctx.record.metric(system, `${c.name} refused 429`, [d('rejected')], 'requests', 'lower', config);
              ctx.record.metric(system, `${c.name} shed`, [d('shed')], 'requests', 'lower', config);
            }
          });
        } finally {
          await stop(client);
          await sys.stop();
        }
      }
    }
  },
};

async function admission(adminUrl: string): Promise<{ classes: AdmissionCounts; probabilities: { class: string; p: number }[] }> {
  return ((await (await fetch(`${adminUrl}/status`)).json()) as { admission: { classes: AdmissionCounts; probabilities: { class: string; p: number }[] } }).admission;
}

async function counts(adminUrl: string): Promise<AdmissionCounts> {
  return (await admission(adminUrl)).classes;
}
