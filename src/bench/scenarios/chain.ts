// chain: the Knative serving benchmark's warm-latency scenario. Chains of N trivial
// functions behind the gateway — and the text-pipeline example — at fixed offered loads and
// at saturation: req/s and latency percentiles, against a bare fastify hello route (the
// gateway's ceiling: no chain at all) and an HTTP chain (each function a fastify service).
// Fixed loads come from a paced open-loop client, saturation from autocannon. For baton, the
// time of each hop comes from the answers' Server-Timing (the descriptors' own timestamps)
// at every fixed load, and the CPU each process spends at saturation is divided among the
// requests answered: the gateway's per request, the workers' per hop — next to bare
// fastify's per request and the C floor's per sockmap hop, measured in the same scenario.
// Full runs also measure the 3-function chain with its workers spinning 5 ms after each
// descriptor (spinUs), and the CPU every system's processes use at each paced load. The main
// chain also runs on the user-space broker data plane (--dataplane broker), beside the kernel's.
import { fileURLToPath } from 'node:url';
import { loadChainFile } from '../../chain/index.ts';
import type { BenchContext, Scenario } from '../context.ts';
import { httpLoad } from '../load/autocannon.ts';
import { cpuMs } from '../procs.ts';
import { medianOf } from '../stats.ts';
import { echoChain, spinningAgain, startBaton, workerPids, type RunningSystem } from '../systems/baton.ts';
import { startFastifyHello, startHttpChain } from '../systems/http.ts';
import { cFloor } from './hop.ts';

const CONNECTIONS = 16;
/** The same chain with the kernel's reference program that checks nothing: what the checks cost. */
const UNCHECKED = 'baton, no kernel checks';
const FLOOR = 'C floor (sockmap hop)';
/** The same 3-function chain with its workers polling 5 ms after each descriptor (spinUs): longer
 *  than the gap between requests at the lowest paced load (4 ms at 250 req/s), so a descriptor
 *  finds its worker awake; shorter windows only cost. The gateway does not spin: on 2 vCPUs a
 *  fourth spinning process delayed the load generator (p99 35–44 ms in 2 of 3 tries, by hand). */
const SPIN_US = 5000;
const SPIN = `baton (3 functions, spinUs ${SPIN_US})`;
/** The main chain on the user-space broker (the data plane where eBPF cannot load). */
const BROKER = (n: number) => `baton (${n} functions, broker data plane)`;
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

interface ChainSystem {
  name: string;
  start(): Promise<RunningSystem & { adminUrl?: string }>;
  path: string;
  body?: string;
  /** Functions a request passes through (hops between processes: functions + 1). */
  functions: number;
  /** baton: the gateway is the first pid, the workers are listed by its admin status. */
  baton: boolean;
  /** Its functions have spinUs: the paced loads start once they poll again after the warm-up. */
  spins?: boolean;
}

export const chain: Scenario = {
  name: 'chain',
  title: 'Chains of trivial functions behind the gateway, warm, under HTTP load',
  baselines: ['bare fastify hello', 'HTTP chain', UNCHECKED, FLOOR, 'baton (3 functions)', 'baton (5 functions)'],
  async run(ctx: BenchContext) {
    const lengths = ctx.pick({ smoke: [2], quick: [3], full: [5, 3] });
    const main = lengths[0]!;
    const rates = ctx.pick({ smoke: [100], quick: [250, 1000], full: [250, 1000, 2000] });
    const duration = ctx.pick({ smoke: 1, quick: 2, full: 10 });
    const spinning = (n: number) => {
      const c = echoChain(n);
      for (const f of Object.values(c.functions!)) Object.assign(f, { spinUs: SPIN_US });
      return c;
    };
    const systems: ChainSystem[] = [
      ...lengths.map((n) => ({ name: `baton (${n} functions)`, start: () => startBaton(ctx.tmp, `chain${n}`, echoChain(n)), path: '/chain', functions: n, baton: true })),
      ...(ctx.mode === 'full'
        ? [{ name: SPIN, start: () => startBaton(ctx.tmp, 'spin', spinning(3)), path: '/chain', functions: 3, baton: true, spins: true }]
        : []),
      { name: UNCHECKED, start: () => startBaton(ctx.tmp, 'chain', echoChain(main), ['--bench-no-kernel-checks']), path: '/chain', functions: main, baton: true },
      { name: BROKER(main), start: () => startBaton(ctx.tmp, 'broker', echoChain(main), ['--dataplane', 'broker']), path: '/chain', functions: main, baton: true },
      { name: 'baton example (text-pipeline)', start: () => startBaton(ctx.tmp, 'example', exampleChain()), path: '/stats', body: TEXT, functions: 3, baton: true },
      { name: 'bare fastify hello', start: startFastifyHello, path: '/', functions: 0, baton: false },
      { name: 'HTTP chain', start: () => startHttpChain(main), path: '/chain', functions: main, baton: false },
    ];
    const chosen = systems.filter((s) => ctx.wants(s.name));
    const floorToo = ctx.wants(FLOOR);
    const steps = chosen.length * ctx.reps * (rates.length + 1) + (floorToo ? 1 : 0);
    let done = 0;
    // repetition by repetition, every system in turn, each started afresh: this VM's speed
    // drifts over minutes, and a system measured only at the start of a run and its baseline
    // only at the end would carry that drift into their ratio
    const figures = new Map(chosen.map((s) => [s.name, {
      byRate: new Map<number, { p50: number[]; p99: number[]; hop: number[]; cpu: number[] }>(),
      hops: { first: [] as number[], inside: [] as number[], back: [] as number[] },
      sat: { p50: [] as number[], p99: [] as number[], rps: [] as number[], gateway: [] as number[], worker: [] as number[], all: [] as number[] },
    }]));
    for (let r = 0; r < ctx.reps; r++) {
      for (const s of chosen) {
        const { byRate, hops, sat } = figures.get(s.name)!;
        const sys = await s.start();
        try {
          const url = sys.url + s.path;
          if (ctx.mode !== 'smoke') await httpLoad({ url, connections: CONNECTIONS, duration: 1, bodyText: s.body }); // warm-up
          if (s.spins && !(await spinningAgain(sys.adminUrl!))) {
            ctx.progress(done, steps, `${s.name}: its functions do not poll 12 s after the warm-up (the node's other processes are busy); measured as they are`);
          }
          for (const rate of rates) {
            ctx.progress(done++, steps, `${s.name}: ${rate} req/s for ${duration} s (rep ${r + 1}/${ctx.reps})`);
            const before = cpuMs(sys.pids());
            const t0 = performance.now();
            const res = await httpLoad({ url, connections: CONNECTIONS, duration, overallRate: rate, bodyText: s.body, timing: s.baton });
            const m = byRate.get(rate) ?? { p50: [], p99: [], hop: [], cpu: [] };
            m.cpu.push((100 * (cpuMs(sys.pids()) - before)) / (performance.now() - t0));
            m.p50.push(res.latencyMs.p50);
            m.p99.push(res.latencyMs.p99);
            if (res.hops) {
              if (res.hops.inside.length) m.hop.push(medianOf(res.hops.inside).median);
              if (rate === rates[0]) for (const k of ['first', 'inside', 'back'] as const) hops[k].push(...res.hops[k]);
            }
            byRate.set(rate, m);
          }
          ctx.progress(done++, steps, `${s.name}: saturation, ${CONNECTIONS} connections for ${duration} s (rep ${r + 1}/${ctx.reps})`);
          const pids = sys.pids();
          const workers = s.baton ? await workerPids(sys.adminUrl!) : [];
          const gateway = s.baton || s.functions === 0 ? [pids[0]!] : [];
          const before = { gateway: cpuMs(gateway), workers: cpuMs(workers), all: cpuMs(pids) };
          const res = await httpLoad({ url, connections: CONNECTIONS, duration, bodyText: s.body });
          if (res.errors || res.non2xx) throw new Error(`${s.name}: ${res.errors} errors, ${res.non2xx} non-2xx at saturation`);
          const perRequest = (ms: number) => (ms * 1000) / Math.max(1, res.total);
          sat.p50.push(res.latencyMs.p50);
          sat.p99.push(res.latencyMs.p99);
          sat.rps.push(res.rps);
          sat.all.push(perRequest(cpuMs(pids) - before.all));
          if (gateway.length) sat.gateway.push(perRequest(cpuMs(gateway) - before.gateway));
          if (s.baton) sat.worker.push(perRequest(cpuMs(workers) - before.workers) / s.functions);
          else if (s.functions > 0) sat.worker.push(perRequest(cpuMs(pids) - before.all) / s.functions);
        } finally {
          await sys.stop();
        }
      }
    }
    for (const s of chosen) {
      const { byRate, hops, sat } = figures.get(s.name)!;
      for (const [rate, m] of byRate) {
        const config = { x: rate, xTitle: 'offered load (req/s)', connections: CONNECTIONS, duration, functions: s.functions };
        ctx.record.metric(s.name, 'p50 latency', m.p50, 'ms', 'lower', config);
        ctx.record.metric(s.name, 'p99 latency', m.p99, 'ms', 'lower', config);
        if (m.hop.length) ctx.record.metric(s.name, 'p50 hop inside the chain (Server-Timing)', m.hop, 'µs', 'lower', config);
        ctx.record.metric(s.name, 'CPU of its processes at this load', m.cpu, '% of a core', 'lower', config);
      }
      if (s.baton) {
        ctx.record.distribution(s.name, `gateway → first function hop at ${rates[0]} req/s`, hops.first, 'µs');
        ctx.record.distribution(s.name, `function → function hop at ${rates[0]} req/s`, hops.inside, 'µs');
        ctx.record.distribution(s.name, `last function → gateway hop at ${rates[0]} req/s`, hops.back, 'µs');
      }
      const config = { connections: CONNECTIONS, duration, functions: s.functions };
      ctx.record.metric(s.name, 'saturated throughput', sat.rps, 'req/s', 'higher', config);
      ctx.record.metric(s.name, 'p50 latency at saturation', sat.p50, 'ms', 'lower', config);
      ctx.record.metric(s.name, 'p99 latency at saturation', sat.p99, 'ms', 'lower', config);
      ctx.record.metric(s.name, 'CPU per request, all processes', sat.all, 'µs', 'lower', config);
      if (sat.gateway.length) ctx.record.metric(s.name, 'gateway CPU per request', sat.gateway, 'µs', 'lower', config);
      if (sat.worker.length) ctx.record.metric(s.name, 'worker CPU per hop', sat.worker, 'µs', 'lower', config);
    }
    if (!floorToo) return;
    // the floor of a hop's CPU: two C processes ping-ponging descriptors through the same program
    ctx.progress(done++, steps, `${FLOOR}: saturated for ${duration} s`);
    const floor = await cFloor(ctx.tmp);
    try {
      const perHop: number[] = [];
      for (let r = 0; r < ctx.reps; r++) {
        const { trips, cpuMs: ms } = await floor.saturate(Math.min(3000, duration * 1000));
        perHop.push((ms * 1000) / (2 * trips));
      }
      ctx.record.metric(FLOOR, 'worker CPU per hop', perHop, 'µs', 'lower', {});
    } finally {
      await floor.close();
    }
  },
};
