// calls: what a nested call (ctx.call) costs next to a tail-forwarded hop, and fan-out next to
// the same calls made one after another. Each system at a fixed low load (paced, where a hop's
// latency is its own) and saturated. The cost of one hop or one call is its system's p50 minus
// the single function's, in the same run.
import path from 'node:path';
import type { ChainFileInput } from '../../chain/index.ts';
import type { BenchContext, Scenario } from '../context.ts';
import { httpLoad } from '../load/autocannon.ts';
import { BENCH_FUNCTIONS, echoChain, startBaton } from '../systems/baton.ts';

const CONNECTIONS = 4;
const FANOUT = 4;

function calling(calls: number, mode: 'parallel' | 'sequential'): ChainFileInput {
  return {
    functions: {
      caller: { module: path.join(BENCH_FUNCTIONS, 'caller.ts'), calls: ['callee'], env: { CALLS: String(calls), MODE: mode }, instances: 2 },
      callee: { module: path.join(BENCH_FUNCTIONS, 'echo.ts'), instances: Math.max(calls, 2) },
    },
    routes: [{ method: 'POST', path: '/chain', chain: ['caller'] }],
  };
}

const SYSTEMS: [string, ChainFileInput][] = [
  ['1 function', echoChain(1, { functions: { f1: { module: path.join(BENCH_FUNCTIONS, 'echo.ts'), instances: 2 } } })],
  ['2-function chain (tail hop)', echoChain(2)],
  ['1 nested call', calling(1, 'parallel')],
  [`${FANOUT} calls in parallel`, calling(FANOUT, 'parallel')],
  [`${FANOUT} calls in sequence`, calling(FANOUT, 'sequential')],
];

export const calls: Scenario = {
  name: 'calls',
  title: 'Nested calls (ctx.call) vs a tail-forwarded hop; fan-out vs sequential calls',
  baselines: ['2-function chain (tail hop)', `${FANOUT} calls in sequence`],
  async run(ctx: BenchContext) {
    const rate = ctx.pick({ smoke: 100, quick: 250, full: 250 });
    const duration = ctx.pick({ smoke: 1, quick: 3, full: 8 });
    const steps = SYSTEMS.length * ctx.reps * 2;
    let done = 0;
    const p50s = new Map<string, number[]>();
    for (const [name, chain] of SYSTEMS) {
      const sys = await startBaton(ctx.tmp, `calls-${p50s.size}`, chain);
      try {
        const url = `${sys.url}/chain`;
        await httpLoad({ url, connections: CONNECTIONS, duration: 1, bodyText: 'x'.repeat(256) }); // warm up
        const m = { p50: [] as number[], p99: [] as number[], rps: [] as number[] };
        for (let r = 0; r < ctx.reps; r++) {
          ctx.progress(done++, steps, `${name}: ${rate} req/s for ${duration} s (rep ${r + 1}/${ctx.reps})`);
          const paced = await httpLoad({ url, connections: CONNECTIONS, duration, overallRate: rate, bodyText: 'x'.repeat(256) });
          ctx.progress(done++, steps, `${name}: saturated for ${duration} s (rep ${r + 1}/${ctx.reps})`);
          const sat = await httpLoad({ url, connections: CONNECTIONS, duration, bodyText: 'x'.repeat(256) });
          for (const res of [paced, sat]) if (res.errors || res.non2xx) throw new Error(`${name}: ${res.errors} errors, ${res.non2xx} non-2xx`);
          m.p50.push(paced.latencyMs.p50 * 1000);
          m.p99.push(paced.latencyMs.p99 * 1000);
          m.rps.push(sat.rps);
        }
        const config = { rate, connections: CONNECTIONS, duration, payload: 256 };
        ctx.record.metric(name, `p50 latency at ${rate} req/s`, m.p50, 'µs', 'lower', config);
        ctx.record.metric(name, `p99 latency at ${rate} req/s`, m.p99, 'µs', 'lower', config);
        ctx.record.metric(name, 'saturated throughput', m.rps, 'req/s', 'higher', { connections: CONNECTIONS, duration });
        p50s.set(name, m.p50);
      } finally {
        await sys.stop();
      }
    }
    // one hop's or one call's own latency: its system's p50 minus the single function's
    const base = p50s.get('1 function')!;
    for (const name of ['2-function chain (tail hop)', '1 nested call']) {
      const added = p50s.get(name)!.map((v, i) => v - base[i]!);
      ctx.record.metric(name, `added p50 latency at ${rate} req/s`, added, 'µs', 'lower', { rate });
    }
  },
};
