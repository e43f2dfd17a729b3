// idle: what a deployment of 10 functions costs while nothing happens — CPU over a window
// and resident memory, in all and per function instance (a worker process; a service) —
// baton (gateway + 10 workers) vs 10 fastify services.
import type { BenchContext, Scenario } from '../context.ts';
import { cpuMs, rssMiB } from '../procs.ts';
import { echoChain, startBaton, workerPids, type RunningSystem } from '../systems/baton.ts';
import { startHttpChain } from '../systems/http.ts';

const FUNCTIONS = 10;

export const idle: Scenario = {
  name: 'idle',
  title: `${FUNCTIONS} deployed functions doing nothing`,
  baselines: ['HTTP services'],
  async run(ctx: BenchContext) {
    const windowMs = ctx.pick({ smoke: 1000, quick: 3000, full: 10_000 });
    const systems: [string, () => Promise<RunningSystem & { adminUrl?: string }>][] = [
      ['baton', () => startBaton(ctx.tmp, 'idle', echoChain(FUNCTIONS))],
      ['HTTP services', () => startHttpChain(FUNCTIONS)],
    ];
    let done = 0;
    for (const [name, start] of systems) {
      const cpu: number[] = [];
      const mem: number[] = [];
      const perInstance: number[] = [];
      const sys = await start();
      try {
        // V8 keeps tidying up for several seconds after a process goes quiet; measure after that
        await new Promise((r) => setTimeout(r, ctx.pick({ smoke: 500, quick: 8000, full: 10_000 })));
        for (let r = 0; r < ctx.reps; r++) {
          ctx.progress(done++, systems.length * ctx.reps, `${name}: ${windowMs / 1000} s idle (rep ${r + 1}/${ctx.reps})`);
          const pids = sys.pids();
          const before = cpuMs(pids);
          await new Promise((res) => setTimeout(res, windowMs));
          cpu.push((100 * (cpuMs(pids) - before)) / windowMs);
          mem.push(rssMiB(pids));
          const instances = sys.adminUrl ? await workerPids(sys.adminUrl) : pids;
          perInstance.push(rssMiB(instances) / instances.length);
        }
      } finally {
        await sys.stop();
      }
      ctx.record.metric(name, 'CPU while idle', cpu, '% of a core', 'lower', { functions: FUNCTIONS, windowMs });
      ctx.record.metric(name, 'resident memory', mem, 'MiB', 'lower', { functions: FUNCTIONS });
      ctx.record.metric(name, 'resident memory per instance', perInstance, 'MiB', 'lower', { functions: FUNCTIONS });
    }
  },
};
