// chain: the Knative serving benchmark's warm-latency scenario. A chain of N trivial
// functions behind the gateway, driven by autocannon at fixed offered loads and at
// saturation: req/s and latency percentiles, against a bare fastify hello route (the
// gateway's ceiling: no chain at all) and an HTTP chain (each function a fastify service).
import type { BenchContext, Scenario } from '../context.ts';
import { httpLoad } from '../load/autocannon.ts';
import { echoChain, startBaton, type RunningSystem } from '../systems/baton.ts';
import { startFastifyHello, startHttpChain } from '../systems/http.ts';

const CONNECTIONS = 16;

export const chain: Scenario = {
  name: 'chain',
  title: 'A chain of trivial functions behind the gateway, warm, under HTTP load',
  baselines: ['bare fastify hello', 'HTTP chain'],
  async run(ctx: BenchContext) {
    const n = ctx.pick({ smoke: 2, quick: 3, full: 5 });
    const rates = ctx.pick({ smoke: [100], quick: [250, 1000], full: [250, 1000, 2000] });
    const duration = ctx.pick({ smoke: 1, quick: 3, full: 10 });
    const systems: [string, () => Promise<RunningSystem>, string][] = [
      [`baton (${n} functions)`, () => startBaton(ctx.tmp, 'chain', echoChain(n)), '/chain'],
      ['bare fastify hello', startFastifyHello, '/'],
      ['HTTP chain', () => startHttpChain(n), '/chain'],
    ];
    const steps = systems.length * ctx.reps * (rates.length + 1);
    let done = 0;
    for (const [name, start, path] of systems) {
      const sys = await start();
      try {
        const url = sys.url + path;
        if (ctx.mode !== 'smoke') await httpLoad({ url, connections: CONNECTIONS, duration: 1 }); // warm-up
        const byRate = new Map<number, { p50: number[]; p99: number[]; rps: number[] }>();
        const sat = { p50: [] as number[], p99: [] as number[], rps: [] as number[] };
        for (let r = 0; r < ctx.reps; r++) {
          for (const rate of rates) {
            ctx.progress(done++, steps, `${name}: ${rate} req/s for ${duration} s (rep ${r + 1}/${ctx.reps})`);
            const res = await httpLoad({ url, connections: CONNECTIONS, duration, overallRate: rate });
            const m = byRate.get(rate) ?? { p50: [], p99: [], rps: [] };
            m.p50.push(res.latencyMs.p50);
            m.p99.push(res.latencyMs.p99);
            m.rps.push(res.rps);
            byRate.set(rate, m);
          }
          ctx.progress(done++, steps, `${name}: saturation, ${CONNECTIONS} connections for ${duration} s (rep ${r + 1}/${ctx.reps})`);
          const res = await httpLoad({ url, connections: CONNECTIONS, duration });
          if (res.errors || res.non2xx) throw new Error(`${name}: ${res.errors} errors, ${res.non2xx} non-2xx at saturation`);
          sat.p50.push(res.latencyMs.p50);
          sat.p99.push(res.latencyMs.p99);
          sat.rps.push(res.rps);
        }
        for (const [rate, m] of byRate) {
          const config = { x: rate, xTitle: 'offered load (req/s)', connections: CONNECTIONS, duration, functions: n };
          ctx.record.metric(name, 'p50 latency', m.p50, 'ms', 'lower', config);
          ctx.record.metric(name, 'p99 latency', m.p99, 'ms', 'lower', config);
        }
        const config = { connections: CONNECTIONS, duration, functions: n };
        ctx.record.metric(name, 'saturated throughput', sat.rps, 'req/s', 'higher', config);
        ctx.record.metric(name, 'p50 latency at saturation', sat.p50, 'ms', 'lower', config);
        ctx.record.metric(name, 'p99 latency at saturation', sat.p99, 'ms', 'lower', config);
      } finally {
        await sys.stop();
      }
    }
  },
};
