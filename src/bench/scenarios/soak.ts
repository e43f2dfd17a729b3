// soak: baton serving the text-pipeline example for minutes under steady load with a share of
// everything that goes wrong in production — unknown routes, bodies too large or too slow,
// clients that leave, handlers that throw, workers that crash — then the same questions
// hardening asks: did memory or open files grow, did any request get a wrong answer, and is
// every pool slot free again afterwards. Not part of `bench all` (it runs for minutes).
import net from 'node:net';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadChainFile } from '../../chain/index.ts';
import type { BenchContext, Scenario } from '../context.ts';
import { rssMiB } from '../procs.ts';
import { BENCH_FUNCTIONS, startBaton } from '../systems/baton.ts';

const EXAMPLE_CHAIN = fileURLToPath(new URL('../../../examples/text-pipeline/chain.yaml', import.meta.url));
const TEXT = 'the quick brown fox jumps over the lazy dog and the dog sleeps '.repeat(16);
const WORDS = TEXT.split(/\s+/).filter(Boolean).length;
const CLIENTS = 8;
const SYSTEM = 'baton (text-pipeline, with faults)';

/** What each request of the mix is, in proportion (out of 100), and what it must get. */
const MIX: [kind: string, share: number, expect: number][] = [
  ['ok', 82, 200],
  ['not found', 4, 404],
  ['handler throws', 4, 500],
  ['body too large', 3, 413],
  ['client leaves', 3, 0],
  ['slow body', 2, 408],
  ['worker crashes', 2, 502],
];

function chainDoc() {
  const d = loadChainFile(EXAMPLE_CHAIN);
  return {
    gateway: { timeoutMs: 5000, bodyTimeoutMs: 1000 },
    pool: { slotSize: '64KiB', slots: 64 },
    functions: {
      ...Object.fromEntries(d.functions.map((f) => [f.name, { module: f.module, instances: f.instances }])),
      faulty: { module: `${BENCH_FUNCTIONS}faulty.ts` },
    },
    routes: [
      { method: 'POST', path: '/stats', chain: d.chains[0]!.steps.map((s) => d.functions[s[0]!]!.name) },
      { method: 'POST', path: '/faulty', chain: ['faulty'] },
    ],
  };
}

/** Declares a body, sends one byte of it, and reads the answer (the gateway's 408). */
function slowBody(url: string): Promise<number> {
  return new Promise((resolve) => {
    const sock = net.connect(Number(new URL(url).port), '127.0.0.1');
    let got = '';
    sock.on('data', (c) => (got += c));
    sock.on('error', () => {});
    sock.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(got)?.[1] ?? 0)));
    sock.once('connect', () => sock.write('POST /stats HTTP/1.1\r\nhost: soak\r\ncontent-length: 100\r\n\r\nx'));
  });
}

async function one(url: string, kind: string): Promise<number> {
  const post = (path: string, body: string | Uint8Array, signal?: AbortSignal) => fetch(url + path, { method: 'POST', body: body as BodyInit, signal });
  switch (kind) {
    case 'not found':
      return (await post('/nowhere', 'x')).status;
    case 'handler throws':
      return (await post('/faulty?throw=1', 'x')).status;
    case 'worker crashes':
      return (await post('/faulty?exit=1', 'x')).status;
    case 'body too large':
      return (await post('/stats', Buffer.alloc(70 * 1024, 'a'))).status;
    case 'client leaves': {
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 1);
      return post('/stats', TEXT, abort.signal).then(
        async (r) => (await r.arrayBuffer(), 0),
        () => 0,
      );
    }
    case 'slow body':
      return slowBody(url);
    default: {
      const res = await post('/stats', TEXT);
      const body = (await res.json()) as { words?: number };
      return res.status === 200 && body.words !== WORDS ? -1 : res.status; // a wrong answer
    }
  }
}

function fds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

export const soak: Scenario = {
  name: 'soak',
  title: 'Minutes of steady load with faults mixed in: memory, open files, wrong answers, slots',
  baselines: [],
  inAll: false,
  async run(ctx: BenchContext) {
    const seconds = ctx.pick({ smoke: 4, quick: 60, full: 600 });
    const rate = ctx.pick({ smoke: 50, quick: 200, full: 200 }); // requests per second in all
    const warmup = Math.min(10, seconds / 4);
    const deck = MIX.flatMap(([kind, share]) => Array(share).fill(kind) as string[]);
    const sys = await startBaton(ctx.tmp, 'soak', chainDoc());
    const gateway = sys.child.pid!;
    const workers = () => sys.pids().filter((p) => p !== gateway);
    const counts = new Map<string, number>();
    const wrong: string[] = [];
    let sent = 0;
    let start: { gateway: number; workers: number; fds: number } | undefined;
    try {
      const t0 = Date.now();
      const until = t0 + seconds * 1000;
      const client = async (c: number) => {
        for (let i = c; Date.now() < until; i += CLIENTS) {
          const due = t0 + (i * 1000) / rate;
          if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
          const kind = deck[(i * 37) % deck.length]!; // a fixed shuffle of the mix
          const expected = MIX.find(([k]) => k === kind)![2];
          const status = await one(sys.url, kind).catch(() => -2);
          sent++;
          counts.set(kind, (counts.get(kind) ?? 0) + 1);
          if (status !== expected) wrong.push(`${kind}: ${status}`);
        }
      };
      const sampler = (async () => {
        await new Promise((r) => setTimeout(r, warmup * 1000));
        start = { gateway: rssMiB([gateway]), workers: rssMiB(workers()), fds: fds(gateway) };
        for (let s = warmup; Date.now() < until; s = (Date.now() - t0) / 1000) {
          ctx.progress(Math.floor(s), seconds, `${sent} requests, ${wrong.length} wrong answers`);
          await new Promise((r) => setTimeout(r, 1000));
        }
      })();
      await Promise.all([...[...Array(CLIENTS).keys()].map(client), sampler]);
      await new Promise((r) => setTimeout(r, 2000)); // let the last crashes be replaced
      const end = { gateway: rssMiB([gateway]), workers: rssMiB(workers()), fds: fds(gateway) };
      const status = (await (await fetch(`${sys.adminUrl}/status`)).json()) as {
        pool: { slots: number; free: number; quarantined: number };
        functions: { instances: { restarts: number }[] }[];
      };
      const restarts = status.functions.flatMap((f) => f.instances).reduce((n, i) => n + i.restarts, 0);
      const config = { seconds, rate, mix: Object.fromEntries(counts) };
      ctx.record.metric(SYSTEM, 'gateway RSS at start', [start!.gateway], 'MiB', 'lower', config);
      ctx.record.metric(SYSTEM, 'gateway RSS at end', [end.gateway], 'MiB', 'lower', config);
      ctx.record.metric(SYSTEM, 'gateway RSS growth', [end.gateway / start!.gateway], '×', 'lower', config);
      ctx.record.metric(SYSTEM, 'workers RSS at start', [start!.workers], 'MiB', 'lower', config);
      ctx.record.metric(SYSTEM, 'workers RSS at end', [end.workers], 'MiB', 'lower', config);
      ctx.record.metric(SYSTEM, 'gateway open files at start', [start!.fds], 'fds', 'lower', config);
      ctx.record.metric(SYSTEM, 'gateway open files at end', [end.fds], 'fds', 'lower', config);
      ctx.record.metric(SYSTEM, 'requests', [sent], 'requests', 'higher', config);
      ctx.record.metric(SYSTEM, 'wrong answers', [wrong.length], 'requests', 'lower', { ...config, first: wrong.slice(0, 20) });
      ctx.record.metric(SYSTEM, 'slots not free after', [status.pool.slots - status.pool.free + status.pool.quarantined], 'slots', 'lower', config);
      ctx.record.metric(SYSTEM, 'instance restarts', [restarts], 'restarts', 'lower', config);
      const kinds = new Map<string, number>();
      for (const w of wrong) kinds.set(w, (kinds.get(w) ?? 0) + 1);
      if (wrong.length) ctx.progress(seconds, seconds, `wrong answers: ${[...kinds].map(([k, n]) => `${n} × ${k}`).join(', ')}`);
    } finally {
      await sys.stop();
    }
  },
};
