// coldstart: from "start an instance" to it serving, per function of the text-pipeline
// example — from a warm spare (the default where a function can scale) and from nothing
// (spares: 0) — and from `baton up` to the first reply; against the same steps for an HTTP
// service (a fastify process: spawn → listening → first reply) and Node's own floor (a bare
// process: spawn → first IPC message). And scale from zero: a function at zero instances behind
// a running gateway (its code paths warmed by another route first), its first reply against a
// warm reply plus one instance start (the first reply waits for the start, then is served).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pack } from 'msgpackr';
import type { BenchContext, Scenario } from '../context.ts';
import { forkReady, stop } from '../procs.ts';
import { startBaton } from '../systems/baton.ts';
import { startService } from '../systems/http.ts';
import { sibling } from '../../paths.ts';
import { medianOf } from '../stats.ts';

const EXAMPLE = fileURLToPath(new URL('../../../examples/text-pipeline/', import.meta.url));
const NODE_FLOOR = sibling(import.meta.url, '../systems/ready.ts');

async function time<T>(f: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await f();
  return [performance.now() - t0, v];
}

/** What each example function takes (the output of the step before it). */
const INPUT: Record<string, Buffer | string> = {
  parse: 'a cold start',
  transform: pack({ words: ['a', 'cold', 'start'], chars: 12 }),
  render: pack({ words: 3, chars: 12, distinct: 3, top: [['a', 1]] }),
};

async function scale(adminUrl: string, fn: string, instances: number): Promise<void> {
  const res = await fetch(`${adminUrl}/scale`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ function: fn, instances }),
  });
  if (res.status !== 200) throw new Error(`scale answered ${res.status}`);
}

/** Until the gateway at `adminUrl` shows a warm spare. */
async function waitForSpare(adminUrl: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const status = (await (await fetch(`${adminUrl}/status`)).json()) as { functions: { instances: { state: string }[] }[] };
    if (status.functions.some((f) => f.instances.some((x) => x.state === 'spare'))) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('no spare warmed up within 5 s');
}

async function firstReply(url: string, body: Buffer | string): Promise<void> {
  const res = await fetch(url, { method: 'POST', body: body as BodyInit });
  if (res.status !== 200) throw new Error(`first reply was ${res.status}`);
  await res.arrayBuffer();
}

/** One function at zero instances behind a gateway whose code paths another route warmed:
 *  its first reply, then its warm replies' p50, and how long its instance took to start. */
async function scaleFromZero(ctx: BenchContext, fn: string, spares: number): Promise<{ first: number; warm: number; start: number }> {
  const module = path.join(EXAMPLE, `${fn}.ts`);
  const sys = await startBaton(ctx.tmp, `zero-${fn}`, {
    functions: { warmup: { module, instances: 1, spares: 0 }, [fn]: { module, instances: 0, minInstances: 0, maxInstances: 1, spares } },
    routes: [{ method: 'POST', path: '/w', chain: ['warmup'] }, { method: 'POST', path: '/f', chain: [fn] }],
  });
  try {
    for (let i = 0; i < 20; i++) await firstReply(`${sys.url}/w`, INPUT[fn]!);
    if (spares) await waitForSpare(sys.adminUrl);
    const [first] = await time(() => firstReply(`${sys.url}/f`, INPUT[fn]!));
    const warm: number[] = [];
    for (let i = 0; i < 20; i++) warm.push((await time(() => firstReply(`${sys.url}/f`, INPUT[fn]!)))[0]);
    const status = (await (await fetch(`${sys.adminUrl}/status`)).json()) as { functions: { name: string; instances: { state: string; coldStartMs: number | null }[] }[] };
    const start = status.functions.find((f) => f.name === fn)!.instances.find((i) => i.state === 'ready')!.coldStartMs!;
    return { first, warm: medianOf(warm).median, start };
  } finally {
    await sys.stop();
  }
}

export const coldstart: Scenario = {
  name: 'coldstart',
  title: 'Cold start: start an instance → serving, and start → first reply',
  baselines: ['HTTP service (fastify)', 'node floor (no code)'],
  async run(ctx: BenchContext) {
    const reps = ctx.pick({ smoke: 1, quick: 2, full: 10 });
    const fns = ctx.pick({ smoke: ['parse'], quick: ['parse', 'transform', 'render'], full: ['parse', 'transform', 'render'] });
    const steps = fns.length * 8 * reps;
    let done = 0;

    // the baselines are measured between baton's repetitions, not after them all: this VM's
    // speed drifts over minutes, and the ratios would carry the drift
    const httpReady: number[] = [];
    const httpFirst: number[] = [];
    const floor: number[] = [];
    const baselines = async (label: string) => {
      ctx.progress(done++, steps, `HTTP service: spawn → listening → first reply (${label})`);
      const t0 = performance.now();
      const svc = await startService('-', 'echo');
      httpReady.push(performance.now() - t0);
      await firstReply(svc.url + '/f', 'a cold start');
      httpFirst.push(performance.now() - t0);
      await stop(svc.child);
      ctx.progress(done++, steps, `node floor: spawn → ready (${label})`);
      const [ms, child] = await time(() => forkReady(NODE_FLOOR, []));
      floor.push(ms);
      await stop(child);
    };

    for (const fn of fns) {
      const ready: number[] = [];
      const cold: number[] = [];
      const first: number[] = [];
      const chain = (spares: number) => ({
        functions: { [fn]: { module: path.join(EXAMPLE, `${fn}.ts`), instances: 1, maxInstances: 2, spares } },
        routes: [{ method: 'POST', path: '/f', chain: [fn] }],
      });
      for (let r = 0; r < reps; r++) {
        for (const spares of [1, 0]) {
          ctx.progress(done++, steps, `baton: up → first reply (${fn}, spares: ${spares}, ${r + 1}/${reps})`);
          const t0 = performance.now();
          const sys = await startBaton(ctx.tmp, `cold-${fn}`, chain(spares));
          try {
            await firstReply(`${sys.url}/f`, INPUT[fn]!);
            if (spares) first.push(performance.now() - t0);
            ctx.progress(done++, steps, `baton: one more ${fn} instance → ready (spares: ${spares}, ${r + 1}/${reps})`);
            if (spares) await waitForSpare(sys.adminUrl); // warmed after start, in the background
            const [readyMs] = await time(() => scale(sys.adminUrl, fn, 2));
            (spares ? ready : cold).push(readyMs);
          } finally {
            await sys.stop();
          }
        }
        await baselines(`${fn}, ${r + 1}/${reps}`);
      }
      ctx.record.metric(`baton instance (${fn})`, 'start → serving', ready, 'ms', 'lower');
      ctx.record.metric(`baton instance, no spare (${fn})`, 'start → serving', cold, 'ms', 'lower');
      ctx.record.metric(`baton up (${fn})`, 'start → first reply', first, 'ms', 'lower');
      for (const spares of [1, 0]) {
        const fromZero = { first: [] as number[], warm: [] as number[], start: [] as number[], ratio: [] as number[] };
        for (let r = 0; r < reps; r++) {
          ctx.progress(done++, steps, `baton: ${fn} from zero → first reply (spares: ${spares}, ${r + 1}/${reps})`);
          const m = await scaleFromZero(ctx, fn, spares);
          for (const k of ['first', 'warm', 'start'] as const) fromZero[k].push(m[k]);
          fromZero.ratio.push(m.first / (2 * m.warm + m.start));
        }
        const system = `baton from zero${spares ? '' : ', no spare'} (${fn})`;
        ctx.record.metric(system, 'first reply', fromZero.first, 'ms', 'lower');
        ctx.record.metric(system, 'warm reply (p50 of 20)', fromZero.warm, 'ms', 'lower');
        ctx.record.metric(system, 'its instance start → ready', fromZero.start, 'ms', 'lower');
        ctx.record.metric(system, 'first reply / (2 × warm reply + instance start)', fromZero.ratio, '×', 'lower');
      }
    }

    ctx.record.metric('HTTP service (fastify)', 'start → serving', httpReady, 'ms', 'lower');
    ctx.record.metric('HTTP service (fastify)', 'start → first reply', httpFirst, 'ms', 'lower');
    ctx.record.metric('node floor (no code)', 'start → serving', floor, 'ms', 'lower');
  },
};
