// binding: containerConcurrency=1 and a heavy-tailed task mix — sizes [8000 … 1] units,
// 5% each — from 16 closed-loop clients for a fixed run length, early binding (round robin
// at arrival, each instance queues its own: Knative's default) vs late binding (first
// idle instance). The unit is scaled so the largest task takes a few seconds, and the
// timeout is one the largest task meets when it runs alone. Late binding runs twice: as it is,
// and with deadline-aware shedding (gateway.admission.shed: a waiting request whose median run
// time no longer fits in its timeout, or a task that says through ctx.willTake() that it needs
// more than is left, answered 503 at once).
import { fileURLToPath } from 'node:url';
import type { BenchContext, Scenario } from '../context.ts';
import { startBaton } from '../systems/baton.ts';

const WORK = fileURLToPath(new URL('../../../examples/heavy-tail/work.ts', import.meta.url));
export const TASK_MIX = [8000, 4000, 2000, 1000, 700, 500, 350, 250, 200, 150, 100, 50, 40, 30, 25, 15, 5, 3, 2, 1];
const CLIENTS = 16;
const INSTANCES = 4;

interface Outcome {
  units: number;
  status: number;
  jctMs: number;
  responseMs?: number;
  /** A 504 whose request was still waiting in a queue (not running) at its deadline. */
  timedOutWaiting?: boolean;
}

/** A deterministic shuffle of the mix, repeated: every size exactly 5% of the tasks. */
function deck(seed: number): () => number {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  let cards: number[] = [];
  return () => {
    if (cards.length === 0) {
      cards = [...TASK_MIX];
      for (let i = cards.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [cards[i], cards[j]] = [cards[j]!, cards[i]!];
      }
    }
    return cards.pop()!;
  };
}

async function drive(url: string, runMs: number): Promise<Outcome[]> {
  const next = deck(42);
  const out: Outcome[] = [];
  const until = performance.now() + runMs;
  await Promise.all(
    [...Array(CLIENTS)].map(async () => {
      while (performance.now() < until) {
        const units = next();
        const t0 = performance.now();
        const res = await fetch(`${url}/task?units=${units}`, { method: 'POST', headers: { 'x-baton-timing': '1' } });
        const text = await res.text();
        const timing = res.headers.get('server-timing') ?? '';
        const response = /(?:^|, )response;dur=([\d.]+)/.exec(timing);
        out.push({
          units, status: res.status, jctMs: performance.now() - t0, responseMs: response ? Number(response[1]) : undefined,
          timedOutWaiting: res.status === 504 && /still waiting/.test(text),
        });
      }
    }),
  );
  return out;
}

export const binding: Scenario = {
  name: 'binding',
  title: `Heavy-tailed tasks, ${CLIENTS} clients, ${INSTANCES} instances with concurrency 1: early vs late binding`,
  baselines: ['early binding'],
  async run(ctx: BenchContext) {
    const unitMs = ctx.pick({ smoke: 0.01, quick: 0.25, full: 0.5 }); // largest task: 0.08 s, 2 s, 4 s
    const runMs = ctx.pick({ smoke: 1500, quick: 15_000, full: 60_000 });
    const timeoutMs = Math.ceil(8000 * unitMs * 1.5) + 200;
    const modes = [
      { name: 'early binding', mode: 'early', shed: false },
      { name: 'late binding', mode: 'late', shed: false },
      { name: 'late binding, deadline shedding', mode: 'late', shed: true },
    ] as const;
    const steps = modes.length * ctx.reps;
    let done = 0;
    for (const { name, mode, shed } of modes) {
      const m = { completed: [] as number[], timeouts: [] as number[], waiting: [] as number[], shed: [] as number[], long: [] as number[], jct50: [] as number[], jct99: [] as number[], resp50: [] as number[], resp99: [] as number[] };
      let last: Outcome[] = [];
      for (let r = 0; r < ctx.reps; r++) {
        ctx.progress(done++, steps, `${name}: ${runMs / 1000} s of load (rep ${r + 1}/${ctx.reps})`);
        const sys = await startBaton(ctx.tmp, `binding-${mode}`, {
          binding: mode,
          gateway: { timeoutMs, admission: { shed } },
          pool: { slotSize: '16KiB', slots: 256 },
          functions: { work: { module: WORK, instances: INSTANCES, concurrency: 1, queueDepth: 4096, env: { UNIT_MS: String(unitMs), MODE: 'sleep' } } },
          routes: [{ method: 'POST', path: '/task', chain: ['work'] }],
        });
        try {
          last = await drive(sys.url, runMs);
        } finally {
          await sys.stop();
        }
        const ok = last.filter((o) => o.status === 200);
        const jct = ctx.record.distribution(name, `JCT rep ${r + 1}`, ok.map((o) => o.jctMs), 'ms');
        const resp = ok.map((o) => o.responseMs).filter((v): v is number => v !== undefined);
        const rd = resp.length ? ctx.record.distribution(name, `response time rep ${r + 1}`, resp, 'ms') : undefined;
        m.completed.push(ok.length);
        m.timeouts.push(last.filter((o) => o.status === 504).length);
        m.waiting.push(last.filter((o) => o.timedOutWaiting).length);
        m.shed.push(last.filter((o) => o.status === 503).length);
        m.long.push(ok.filter((o) => o.units >= 2000).length);
        m.jct50.push(jct.p50);
        m.jct99.push(jct.p99);
        m.resp50.push(rd?.p50 ?? 0);
        m.resp99.push(rd?.p99 ?? 0);
      }
      const config = { unitMs, runMs, timeoutMs, clients: CLIENTS, instances: INSTANCES, mix: TASK_MIX };
      ctx.record.metric(name, 'completed', m.completed, 'requests', 'higher', config);
      ctx.record.metric(name, 'timed out', m.timeouts, 'requests', 'lower', config);
      ctx.record.metric(name, 'timed out in a kernel queue (late binding: not running yet)', m.waiting, 'requests', 'lower', config);
      ctx.record.metric(name, 'shed (503: could not meet its deadline)', m.shed, 'requests', 'lower', config);
      ctx.record.metric(name, 'long tasks completed (≥2000 units)', m.long, 'requests', 'higher', config);
      ctx.record.metric(name, 'JCT p50', m.jct50, 'ms', 'lower', config);
      ctx.record.metric(name, 'JCT p99', m.jct99, 'ms', 'lower', config);
      ctx.record.metric(name, 'response time p50', m.resp50, 'ms', 'lower', config);
      ctx.record.metric(name, 'response time p99', m.resp99, 'ms', 'lower', config);
    }
  },
};
