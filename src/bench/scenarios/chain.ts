// chain: the Knative serving benchmark's warm-latency scenario. A chain of N trivial
// functions behind the gateway — and the text-pipeline example — driven by autocannon at
// fixed offered loads and at saturation: req/s and latency percentiles, against a bare
// fastify hello route (the gateway's ceiling: no chain at all) and an HTTP chain (each
// function a fastify service). Fixed loads come from a paced open-loop client, saturation
// from autocannon. For baton, the time of each hop also comes from the descriptors' own
// timestamps (the Server-Timing header), one request in flight.
import { fileURLToPath } from 'node:url';
import { loadChainFile } from '../../chain/index.ts';
import type { BenchContext, Scenario } from '../context.ts';
import { httpLoad } from '../load/autocannon.ts';
import { echoChain, startBaton, type RunningSystem } from '../systems/baton.ts';
import { startFastifyHello, startHttpChain } from '../systems/http.ts';

const CONNECTIONS = 16;
/** The same chain with the kernel's reference program that checks nothing: what the checks cost. */
const UNCHECKED = 'baton, no kernel checks';
const EXAMPLE_CHAIN = fileURLToPath(new URL('../../../examples/text-pipeline/chain.yaml', import.meta.url));
const TEXT = 'the quick brown fox jumps over the lazy dog and the dog sleeps '.repeat(16); // ~1 KiB

/** The example chain file as a chain document with absolute module paths. */
function exampleChain() {
  const d = loadChainFile(EXAMPLE_CHAIN);
  return {
    functions: Object.fromEntries(d.functions.map((f) => [f.name, { module: f.module, instances: f.instances }])),
    routes: [{ method: 'POST', path: '/stats', chain: d.chains[0]!.steps.map((s) => d.functions[s[0]!]!.name) }],
  };
}

/** Sequential requests; each one's hop times from its Server-Timing header (µs). */
async function hopTimes(url: string, body: string, n: number): Promise<{ gatewayHop: number[]; workerHop: number[]; total: number[] }> {
  const out = { gatewayHop: [] as number[], workerHop: [] as number[], total: [] as number[] };
  for (let i = 0; i < n; i++) {
    const res = await fetch(url, { method: 'POST', body });
    await res.arrayBuffer();
    const timing = res.headers.get('server-timing') ?? '';
    const waits = [...timing.matchAll(/h(\d+)-[\w-]+?-wait;dur=([\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2]) * 1000] as const);
    for (const [hop, us] of waits) (hop === 1 ? out.gatewayHop : out.workerHop).push(us);
    const back = /gw-wait;dur=([\d.]+)/.exec(timing);
    if (back) out.workerHop.push(Number(back[1]) * 1000); // the last worker → gateway hop
    const total = /total;dur=([\d.]+)/.exec(timing);
    if (total) out.total.push(Number(total[1]) * 1000);
  }
  return out;
}

export const chain: Scenario = {
  name: 'chain',
  title: 'A chain of trivial functions behind the gateway, warm, under HTTP load',
  baselines: ['bare fastify hello', 'HTTP chain', UNCHECKED],
  async run(ctx: BenchContext) {
    const n = ctx.pick({ smoke: 2, quick: 3, full: 5 });
    const rates = ctx.pick({ smoke: [100], quick: [250, 1000], full: [250, 1000, 2000] });
    const duration = ctx.pick({ smoke: 1, quick: 2, full: 10 });
    const systems: [string, () => Promise<RunningSystem>, string, string | undefined][] = [
      [`baton (${n} functions)`, () => startBaton(ctx.tmp, 'chain', echoChain(n)), '/chain', undefined],
      [UNCHECKED, () => startBaton(ctx.tmp, 'chain', echoChain(n), ['--bench-no-kernel-checks']), '/chain', undefined],
      ['baton example (text-pipeline)', () => startBaton(ctx.tmp, 'example', exampleChain()), '/stats', TEXT],
      ['bare fastify hello', startFastifyHello, '/', undefined],
      ['HTTP chain', () => startHttpChain(n), '/chain', undefined],
    ];
    const steps = systems.length * ctx.reps * (rates.length + 1);
    let done = 0;
    for (const [name, start, path, bodyText] of systems) {
      const sys = await start();
      try {
        const url = sys.url + path;
        if (ctx.mode !== 'smoke') await httpLoad({ url, connections: CONNECTIONS, duration: 1, bodyText }); // warm-up
        if (name.startsWith('baton')) {
          ctx.progress(done, steps, `${name}: hop times from descriptor timestamps, one request in flight`);
          const t = await hopTimes(url, bodyText ?? 'x', ctx.pick({ smoke: 20, quick: 300, full: 1000 }));
          ctx.record.distribution(name, 'gateway → worker hop (descriptor timestamps)', t.gatewayHop, 'µs');
          ctx.record.distribution(name, 'worker → worker/gateway hop (descriptor timestamps)', t.workerHop, 'µs');
          ctx.record.distribution(name, 'arrival → reply at the gateway (descriptor timestamps)', t.total, 'µs');
        }
        const byRate = new Map<number, { p50: number[]; p99: number[]; rps: number[] }>();
        const sat = { p50: [] as number[], p99: [] as number[], rps: [] as number[] };
        for (let r = 0; r < ctx.reps; r++) {
          for (const rate of rates) {
            ctx.progress(done++, steps, `${name}: ${rate} req/s for ${duration} s (rep ${r + 1}/${ctx.reps})`);
            const res = await httpLoad({ url, connections: CONNECTIONS, duration, overallRate: rate, bodyText });
            const m = byRate.get(rate) ?? { p50: [], p99: [], rps: [] };
            m.p50.push(res.latencyMs.p50);
            m.p99.push(res.latencyMs.p99);
            m.rps.push(res.rps);
            byRate.set(rate, m);
          }
          ctx.progress(done++, steps, `${name}: saturation, ${CONNECTIONS} connections for ${duration} s (rep ${r + 1}/${ctx.reps})`);
          const res = await httpLoad({ url, connections: CONNECTIONS, duration, bodyText });
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
