// payload: bodies from 1 KiB to 1 MiB through 5 functions, baton (the payload stays in the
// pool, descriptors move) vs the HTTP chain (the body is copied through every service).
import type { BenchContext, Scenario } from '../context.ts';
import { httpLoad } from '../load/autocannon.ts';
import { echoChain, startBaton, type RunningSystem } from '../systems/baton.ts';
import { startHttpChain } from '../systems/http.ts';

const FUNCTIONS = 5;
const CONNECTIONS = 4;

export const payload: Scenario = {
  name: 'payload',
  title: `Payload size through ${FUNCTIONS} functions`,
  baselines: ['HTTP chain'],
  async run(ctx: BenchContext) {
    const sizes = ctx.pick({ smoke: [1024, 1024 * 1024], quick: [1024, 16384, 262144, 1048576], full: [1024, 16384, 262144, 1048576] });
    const duration = ctx.pick({ smoke: 1, quick: 2, full: 6 });
    const systems: [string, () => Promise<RunningSystem>][] = [
      ['baton', () => startBaton(ctx.tmp, 'payload', echoChain(FUNCTIONS, { pool: { slotSize: '1100KiB', slots: 64 } }))],
      ['HTTP chain', () => startHttpChain(FUNCTIONS)],
    ];
    const steps = systems.length * sizes.length * ctx.reps;
    let done = 0;
    for (const [name, start] of systems) {
      const sys = await start();
      try {
        const url = `${sys.url}/chain`;
        if (ctx.mode !== 'smoke') await httpLoad({ url, connections: CONNECTIONS, duration: 1, bodyBytes: 1024 });
        for (const size of sizes) {
          const m = { p50: [] as number[], p99: [] as number[], mbps: [] as number[] };
          for (let r = 0; r < ctx.reps; r++) {
            ctx.progress(done++, steps, `${name}: ${size} B bodies for ${duration} s (rep ${r + 1}/${ctx.reps})`);
            const res = await httpLoad({ url, connections: CONNECTIONS, duration, bodyBytes: size });
            if (res.errors || res.non2xx) throw new Error(`${name}: ${res.errors} errors, ${res.non2xx} non-2xx with ${size} B`);
            m.p50.push(res.latencyMs.p50);
            m.p99.push(res.latencyMs.p99);
            m.mbps.push((res.rps * size) / 2 ** 20);
          }
          const config = { x: size, xTitle: 'payload (bytes)', functions: FUNCTIONS, connections: CONNECTIONS };
          ctx.record.metric(name, 'p50 latency', m.p50, 'ms', 'lower', config);
          ctx.record.metric(name, 'p99 latency', m.p99, 'ms', 'lower', config);
          ctx.record.metric(name, 'payload throughput', m.mbps, 'MiB/s', 'higher', config);
        }
      } finally {
        await sys.stop();
      }
    }
  },
};
