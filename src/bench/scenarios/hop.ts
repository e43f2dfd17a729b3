// hop: one descriptor hop between two worker processes. Ping-pong of 64-byte descriptors
// (a round trip is two hops): latency with one in flight, then hops/s and CPU per hop at
// saturation. Systems: baton's sockmap redirect, the user-space broker (every hop relayed
// by one process over Unix sockets), an HTTP hop between Node services (keep-alive), and
// the C floor for the raw sockmap redirect.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { Sockmap } from '../../dataplane/sockmap.ts';
import { CUSTODY } from '../../gateway/custody.ts';
import { native } from '../../native/index.ts';
import type { BenchContext, Scenario } from '../context.ts';
import { cpuMs, forkReady, nextMessage, run, stop } from '../procs.ts';
import { distribution } from '../stats.ts';
import { sibling, sourceFile } from '../../paths.ts';

const PEER = sibling(import.meta.url, '../hop/peer.ts');
const BROKER = sibling(import.meta.url, '../hop/broker.ts');
export const INFLIGHT = 32;
/** The same hop through the reference program that checks nothing: what the checks cost. */
const SOCKMAP_UNCHECKED = 'sockmap, no kernel checks';

export interface HopSystem {
  name: string;
  /** Round-trip times in ns. */
  latency(n: number): Promise<number[]>;
  /** Round trips completed in `ms` with INFLIGHT descriptors circulating, and the CPU they took. */
  saturate(ms: number): Promise<{ trips: number; cpuMs: number }>;
  close(): Promise<void>;
}

/** Two Node peers: `a` drives, `b` echoes; `extra` processes (a broker) count for CPU. */
function nodePeers(name: string, a: ChildProcess, b: ChildProcess, extra: ChildProcess[], cleanup: () => void): HopSystem {
  const pids = [a, b, ...extra].map((c) => c.pid!);
  return {
    name,
    async latency(n) {
      a.send({ cmd: 'latency', n });
      return (await nextMessage<{ samples: number[] }>(a, (m) => 'samples' in (m as object))).samples;
    },
    async saturate(ms) {
      const before = cpuMs(pids);
      a.send({ cmd: 'saturate', inflight: INFLIGHT, ms });
      const { trips } = await nextMessage<{ trips: number }>(a, (m) => 'trips' in (m as object));
      return { trips, cpuMs: cpuMs(pids) - before };
    },
    async close() {
      await stop(a, b, ...extra);
      cleanup();
    },
  };
}

/** A sockmap with keys 1 (a, function 0) and 2 (b, function 1) that may call each other, where
 *  `a` holds slots 0..INFLIGHT-1 for requests 1..INFLIGHT: the program then accepts the peers'
 *  descriptors, checking them as baton's. */
function hopSockmap(checks = true): Sockmap {
  const map = new Sockmap({ checks });
  map.configure(INFLIGHT, 0);
  map.setFunction(0, 1, 1, 1);
  map.setFunction(1, 2, 1, 1);
  map.allowCalls(0, [1]);
  map.allowCalls(1, [0]);
  const custody = new Uint32Array(map.custodyBuffer());
  for (let slot = 0; slot < INFLIGHT; slot++) {
    custody.set([slot + 1, 0, 1, 1], slot * CUSTODY.words); // req, queue, gen, holder (key 1)
  }
  return map;
}

/** Two Node peers on the sockmap; `checks: false` runs the reference program that checks nothing. */
async function sockmapPeers(checks = true): Promise<HopSystem> {
  const map = hopSockmap(checks);
  const a = map.open(1, 0);
  const b = map.open(2, 1);
  const pb = await forkReady(PEER, ['b', 'sockmap'], { stdio: ['ignore', 'inherit', 'inherit', b.fd, 'ipc'] });
  const pa = await forkReady(PEER, ['a', 'sockmap'], { stdio: ['ignore', 'inherit', 'inherit', a.fd, 'ipc'] });
  native((x) => (x.closeFd(a.fd), x.closeFd(b.fd)));
  return nodePeers(checks ? 'baton (sockmap)' : SOCKMAP_UNCHECKED, pa, pb, [], () => map.destroy());
}

async function brokerPeers(tmp: string): Promise<HopSystem> {
  const sock = path.join(tmp, `broker-${process.pid}.sock`);
  const broker = await forkReady(BROKER, [sock]);
  const pb = await forkReady(PEER, ['b', 'broker', sock]);
  const pa = await forkReady(PEER, ['a', 'broker', sock]);
  return nodePeers('user-space broker', pa, pb, [broker], () => {});
}

async function httpPeers(): Promise<HopSystem> {
  const port = String(20000 + (process.pid % 20000));
  const pb = await forkReady(PEER, ['b', 'http', port]);
  const pa = await forkReady(PEER, ['a', 'http', port]);
  return nodePeers('HTTP (Node, keep-alive)', pa, pb, [], () => {});
}

/** The C floor: the same ping-pong without Node (also the chain scenario's per-hop CPU floor). */
export async function cFloor(tmp: string): Promise<HopSystem> {
  const bin = path.join(tmp, 'hop-floor');
  await run('cc', ['-O2', '-o', bin, sourceFile('bench/hop/floor.c')]);
  const map = hopSockmap();
  const a = map.open(1, 0);
  const b = map.open(2, 1);
  const stdio = ['ignore', 'pipe', 'inherit', a.fd, b.fd];
  return {
    name: 'C floor (sockmap)',
    async latency(n) {
      return (await run(bin, ['latency', String(n)], stdio)).trim().split('\n').map(Number);
    },
    async saturate(ms) {
      const [trips, cpu] = (await run(bin, ['saturate', String(INFLIGHT), String(ms)], stdio)).trim().split(' ').map(Number);
      return { trips: trips!, cpuMs: cpu! };
    },
    async close() {
      native((x) => (x.closeFd(a.fd), x.closeFd(b.fd)));
      map.destroy();
    },
  };
}

export const hop: Scenario = {
  name: 'hop',
  title: 'One hop between two processes (64-byte descriptor)',
  baselines: [SOCKMAP_UNCHECKED, 'user-space broker', 'HTTP (Node, keep-alive)', 'C floor (sockmap)'],
  async run(ctx: BenchContext) {
    const n = ctx.pick({ smoke: 200, quick: 2000, full: 20000 });
    const satMs = ctx.pick({ smoke: 200, quick: 1000, full: 3000 });
    const makers = (
      [
        ['baton (sockmap)', () => sockmapPeers()], [SOCKMAP_UNCHECKED, () => sockmapPeers(false)], ['user-space broker', () => brokerPeers(ctx.tmp)],
        ['HTTP (Node, keep-alive)', httpPeers], ['C floor (sockmap)', () => cFloor(ctx.tmp)],
      ] as const
    ).filter(([name]) => ctx.wants(name)).map(([, make]) => make);
    const steps = makers.length * (ctx.reps + 1);
    let done = 0;
    for (const make of makers) {
      const sys = await make();
      try {
        ctx.progress(done, steps, `${sys.name}: warm-up`);
        await sys.latency(Math.ceil(n / 10));
        const p50: number[] = [];
        const p99: number[] = [];
        const rate: number[] = [];
        const cpu: number[] = [];
        let all: number[] = [];
        for (let r = 0; r < ctx.reps; r++) {
          ctx.progress(++done, steps, `${sys.name}: ${n} round trips, then ${satMs} ms saturated (rep ${r + 1}/${ctx.reps})`);
          const hops = (await sys.latency(n)).map((ns) => ns / 2 / 1000); // one hop = half a round trip, µs
          const d = distribution(hops);
          p50.push(d.p50);
          p99.push(d.p99);
          all = hops;
          const sat = await sys.saturate(satMs);
          rate.push((2 * sat.trips) / (satMs / 1000));
          cpu.push((sat.cpuMs * 1000) / (2 * sat.trips));
        }
        ctx.record.distribution(sys.name, 'hop latency', all, 'µs');
        ctx.record.metric(sys.name, 'p50 latency', p50, 'µs', 'lower', { roundTrips: n });
        ctx.record.metric(sys.name, 'p99 latency', p99, 'µs', 'lower', { roundTrips: n });
        ctx.record.metric(sys.name, 'hops/s saturated', rate, 'hops/s', 'higher', { inflight: INFLIGHT, ms: satMs });
        ctx.record.metric(sys.name, 'CPU per hop', cpu, 'µs', 'lower', { inflight: INFLIGHT });
      } finally {
        await sys.close();
      }
      done++;
    }
  },
};
