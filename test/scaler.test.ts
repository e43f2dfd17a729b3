// The instance lifecycle on the real runtime: scale from zero (a request for a function with no
// instance waits in its queue while one starts: the activator), release of idle instances after
// idleAfterMs down to zero, the warm reserve, and nothing leaked on the way.
import { afterEach, describe, expect, it } from 'vitest';
import type { ChainFileInput } from '../src/chain/index.ts';
import type { Gateway, GatewayOptions } from '../src/gateway/index.ts';
import { dataplaneUnavailable } from './helpers/env.ts';
import { alive } from './helpers/system.ts';
import { EXAMPLES, poolSettled, startGateway, waitFor } from './helpers/gateway.ts';
import type { KrakenPolicy } from '../src/scaler/kraken.ts';

/** Fast windows, so a test sees the reactive policy act within a second. */
const FAST = { policy: 'reactive', sampleMs: 20, tickMs: 20, stableWindowMs: 300, panicWindowMs: 60 } as const;

describe.skipIf(dataplaneUnavailable)('instance lifecycle', () => {
  let gw: Gateway | undefined;
  afterEach(() => gw?.stop());

  const start = (doc: Partial<ChainFileInput> & Pick<ChainFileInput, 'functions' | 'routes'>, options: GatewayOptions = {}) =>
    startGateway({ gateway: { port: 0, ...doc.gateway }, ...doc } as ChainFileInput, options).then((g) => (gw = g));
  /** One function `name`, the only step of POST /<name>. */
  const startOne = (name: string, fn: Record<string, unknown>, gateway: ChainFileInput['gateway'] = {}, options: GatewayOptions = {}) =>
    start({ gateway, functions: { [name]: fn } as ChainFileInput['functions'], routes: [{ method: 'POST', path: `/${name}`, chain: [name] }] }, options);
  /** The instance of function 0 that is loading its module, once there is one. */
  const starting = async (g: Gateway) => {
    await waitFor('an instance starting', () => g.instances.of(0).some((i) => i.state === 'starting' && i.child?.pid !== undefined));
    return g.instances.of(0).find((i) => i.state === 'starting')!;
  };
  const ready = (g: Gateway, fn = 0) => g.instances.of(fn).filter((i) => i.state === 'ready').length;
  const post = (g: Gateway, path: string, headers: Record<string, string> = {}) =>
    fetch(`${g.url}${path}`, { method: 'POST', body: 'x', headers });

  it('scales from zero: the first request waits while an instance starts, is answered, and its Server-Timing says so', async () => {
    const g = await startOne('work', { module: 'tagged.ts', instances: 0, minInstances: 0, maxInstances: 2, spares: 0 });
    expect(ready(g)).toBe(0);
    expect(g.instances.of(0).every((i) => !i.child)).toBe(true); // no process at all
    const readyz = await fetch(`${g.adminUrl}/readyz`);
    expect(readyz.status).toBe(200); // a function that may run none is not "not ready"
    const res = await post(g, '/work', { 'x-baton-timing': '1' });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { tag: string }).tag).toBe('x');
    expect(res.headers.get('server-timing')).toMatch(/cold-work;desc=/);
    expect(ready(g)).toBe(1);
    expect(g.scaler.decisions.fromZero).toBe(1);
    // warm now: no cold mark
    const again = await post(g, '/work', { 'x-baton-timing': '1' });
    expect(again.headers.get('server-timing')).not.toMatch(/cold-/);
    await poolSettled(g);
  });

  it('scales from zero in the middle of a chain: the kernel passes the hop to the dispatcher, which wakes the function', async () => {
    const g = await start({
      functions: {
        first: { module: 'echo.ts' },
        work: { module: 'tagged.ts', instances: 0, minInstances: 0, maxInstances: 1 },
      },
      routes: [{ method: 'POST', path: '/chain', chain: ['first', 'work'] }],
    });
    const burst = await Promise.all([...Array(8)].map(() => post(g, '/chain')));
    expect(burst.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(g.scaler.decisions.fromZero).toBe(1); // one start for all of them
    expect(g.dispatcher.stats.queued).toBeGreaterThanOrEqual(1); // queued by the dispatcher, not in the kernel
    expect(ready(g, 1)).toBe(1);
    await poolSettled(g);
  });

  it('every request that waited for a start from zero says so, whoever queued its hop; the instance takes them itself once ready', async () => {
    const g = await start({
      functions: {
        first: { module: 'echo.ts' },
        work: { module: 'slow-import.ts', instances: 0, minInstances: 0, maxInstances: 1, spares: 0, env: { IMPORT_MS: '300' } },
      },
      routes: [{ method: 'POST', path: '/chain', chain: ['first', 'work'] }],
    });
    const work = g.deployment.functions.find((f) => f.name === 'work')!.id;
    const burst = Promise.all([...Array(4)].map(() => post(g, '/chain', { 'x-baton-timing': '1' })));
    // the first hop passed to the dispatcher (nothing was coming), the others queued by the
    // kernel once an instance was starting
    await waitFor('4 waiting', () => g.dispatcher.queued(work) === 4);
    const res = await burst;
    expect(res.map((r) => r.status)).toEqual(Array(4).fill(200));
    expect(res.map((r) => /cold-work;desc=/.test(r.headers.get('server-timing') ?? ''))).toEqual(Array(4).fill(true));
    // bound by the kernel at the instance's own Idle notices, not handed over by the gateway
    expect(g.dispatcher.stats.handedFromQueue).toBe(0);
    expect(g.scaler.decisions.fromZero).toBe(1);
    await poolSettled(g);
  });

  it('a function that cannot start answers its waiting requests 503 with the reason, and frees their slots', async () => {
    const g = await startOne('broken', { module: 'broken-at-import.ts', instances: 0, minInstances: 0, maxInstances: 1, spares: 0 });
    const answers = await Promise.all([...Array(3)].map(() => post(g, '/broken')));
    expect(answers.map((r) => r.status)).toEqual([503, 503, 503]);
    const body = (await answers[0]!.json()) as { error: string; message: string };
    expect(body.error).toBe('BATON_ERR_COLD_START_FAILED');
    expect(body.message).toMatch(/'broken' \(see the gateway's log\)$/); // no path or stack to the client
    await poolSettled(g);
  });

  it('kill -9 of an instance starting from zero: what waits for it is served by its restart, nothing lost', async () => {
    const g = await startOne('work', { module: 'slow-import.ts', instances: 0, minInstances: 0, maxInstances: 1, spares: 0, env: { IMPORT_MS: '1000' } });
    const answers = Promise.all(['a', 'b'].map((tag) => fetch(`${g.url}/work`, { method: 'POST', body: tag })));
    const inst = await starting(g);
    const pid = inst.child!.pid!;
    process.kill(pid, 'SIGKILL');
    const res = await answers;
    expect(res.map((r) => r.status)).toEqual([200, 200]);
    const bodies = (await Promise.all(res.map((r) => r.json()))) as { tag: string; pid: number }[];
    expect(bodies.map((b) => b.tag)).toEqual(['a', 'b']);
    expect(bodies.every((b) => b.pid !== pid)).toBe(true);
    expect(inst.restarts).toBe(1);
    expect(g.scaler.decisions.fromZero).toBe(1); // the restart, not a second wake-up
    await poolSettled(g);
  });

  it('SIGSTOP of an instance starting from zero: killed at the start timeout, what waits gets 503 at once, the next start serves', async () => {
    const g = await startOne('work', { module: 'slow-import.ts', instances: 0, minInstances: 0, maxInstances: 1, spares: 0, env: { IMPORT_MS: '300' } }, {}, { startTimeoutMs: 1500 });
    const first = post(g, '/work');
    const inst = await starting(g);
    const pid = inst.child!.pid!;
    process.kill(pid, 'SIGSTOP');
    const res = await first;
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: string }).error).toBe('BATON_ERR_COLD_START_FAILED');
    await waitFor('the frozen process gone', () => !alive(pid));
    const again = await post(g, '/work');
    expect(again.status).toBe(200);
    expect(((await again.json()) as { pid: number }).pid).not.toBe(pid);
    await poolSettled(g);
  });

  it('SIGSTOP of an idle instance does not stop its release to zero: it is killed, and the next request starts a new one', async () => {
    const g = await startOne('work', { module: 'tagged.ts', instances: 1, minInstances: 0, maxInstances: 1, spares: 0, idleAfterMs: 200 }, { scaler: FAST });
    expect((await post(g, '/work')).status).toBe(200);
    const pid = g.instances.of(0)[0]!.child!.pid!;
    process.kill(pid, 'SIGSTOP');
    await waitFor('the frozen instance released and gone', () => ready(g) === 0 && !alive(pid));
    const res = await post(g, '/work');
    expect(res.status).toBe(200);
    expect(((await res.json()) as { pid: number }).pid).not.toBe(pid);
    expect(g.scaler.decisions.fromZero).toBeGreaterThanOrEqual(1);
    await poolSettled(g);
  });

  it('node budget: a start that does not fit releases an idle instance of another function first; the budget is never exceeded', async () => {
    const fn = { module: 'tagged.ts', minInstances: 0, maxInstances: 1, spares: 0, memory: '64MiB' };
    const g = await start({
      node: { memory: '64MiB' }, // room for one instance in all
      functions: { a: { ...fn, instances: 1 }, b: { ...fn, instances: 0 } },
      routes: [{ method: 'POST', path: '/a', chain: ['a'] }, { method: 'POST', path: '/b', chain: ['b'] }],
    });
    for (const path of ['/b', '/a', '/b', '/a']) {
      const res = await post(g, path);
      expect(res.status).toBe(200);
    }
    // both at once: one waits until the other is idle and released
    const both = await Promise.all([post(g, '/a?ms=50'), post(g, '/b?ms=50')]);
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    expect(g.scaler.decisions.released).toBeGreaterThanOrEqual(4);
    const node = (g.status() as { node: { memory: number; peak: number } }).node;
    expect(node.peak).toBeLessThanOrEqual(node.memory);
    expect(node.peak).toBe(64 * 1024 * 1024);
    // by hand too: the one not running has no room while the other runs
    const other = g.instances.of(0).some((i) => i.wanted) ? 'b' : 'a';
    await expect(g.scale(other, 1)).rejects.toThrow(/node.memory \(67108864 bytes\) has room for 0/);
    await poolSettled(g);
  });

  it('node budget: another function\'s spare gives way to an instance (no instance released), and comes back once there is room', async () => {
    const fn = { module: 'tagged.ts', minInstances: 0, maxInstances: 2, memory: '64MiB' };
    const g = await start({
      node: { memory: '192MiB' }, // a's instance and spare, and b's one instance
      functions: { a: { ...fn, instances: 1, spares: 1 }, b: { ...fn, instances: 1, spares: 0 } },
      routes: [{ method: 'POST', path: '/a', chain: ['a'] }, { method: 'POST', path: '/b', chain: ['b'] }],
    });
    const spares = () => g.instances.of(0).filter((i) => !i.wanted && i.state === 'spare');
    await waitFor('a\'s spare warm', () => spares().length === 1);
    const spare = spares()[0]!.child!.pid!;
    await g.scale('b', 2); // no room left but a's spare's
    expect(g.instances.of(1).filter((i) => i.state === 'ready').length).toBe(2);
    expect(alive(spare)).toBe(false);
    expect(g.instances.of(0).filter((i) => i.state === 'ready').length).toBe(1); // a's instance untouched
    expect(g.scaler.decisions.released).toBe(0);
    const node = (g.status() as { node: { memory: number; peak: number } }).node;
    expect(node.peak).toBeLessThanOrEqual(node.memory);
    expect((await post(g, '/a')).status).toBe(200);
    expect((await post(g, '/b')).status).toBe(200);
    await g.scale('b', 1);
    await waitFor('a\'s spare back', () => spares().length === 1);
    expect((g.status() as { node: { peak: number } }).node.peak).toBeLessThanOrEqual(192 * 1024 * 1024);
    await poolSettled(g);
  });

  it('node budget: a request whose function has no room to start before its timeout gets 503 NO_CAPACITY, not 504', async () => {
    const fn = { module: 'hold.ts', minInstances: 0, maxInstances: 1, spares: 0, memory: '64MiB' };
    const g = await start({
      gateway: { timeoutMs: 1000 },
      node: { memory: '64MiB' },
      functions: { a: { ...fn, instances: 1 }, b: { ...fn, instances: 0 } },
      routes: [{ method: 'POST', path: '/a', chain: ['a'] }, { method: 'POST', path: '/b', chain: ['b'] }],
    });
    const busy = post(g, '/a?ms=3000'); // holds the only room past b's deadline
    await waitFor('a busy', () => g.dispatcher.inFlight(0) === 1);
    const res = await post(g, '/b');
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: string }).error).toBe('BATON_ERR_NO_CAPACITY');
    expect((await busy).status).toBe(504); // a's own request ran past the same timeout
    await poolSettled(g);
  });

  it('a hostile function cannot wake a function at zero its chains never lead to: the kernel refuses it, nothing starts', async () => {
    const g = await start({
      functions: {
        attacker: { module: 'attacker.ts' },
        victim: { module: 'tagged.ts', instances: 0, minInstances: 0, maxInstances: 2, spares: 0 },
      },
      routes: [{ method: 'POST', path: '/a', chain: ['attacker'] }, { method: 'POST', path: '/v', chain: ['victim'] }],
    });
    const victim = g.deployment.functions.find((f) => f.name === 'victim')!.id;
    const res = await post(g, `/a?attack=wake&fn=${victim}`);
    expect(res.status).toBe(502); // its instance was killed for it
    await waitFor('the attacker refused', () => g.inbox.stats.badDescriptors + g.dataplane.counters(g.instances.of(0)[0]!.key).refused > 0);
    expect(g.scaler.decisions.fromZero).toBe(0);
    expect(g.instances.of(victim).every((i) => !i.child)).toBe(true);
    expect((await post(g, '/v')).status).toBe(200); // the victim still starts for its own route
    await poolSettled(g);
  });

  it('reactive: releases idle instances after idleAfterMs down to zero (processes gone), then serves from zero again', async () => {
    const g = await startOne('work', { module: 'tagged.ts', instances: 2, minInstances: 0, maxInstances: 2, spares: 0, idleAfterMs: 200 }, { scaler: FAST });
    const pids = g.instances.of(0).map((i) => i.child!.pid!);
    expect((await post(g, '/work')).status).toBe(200);
    await waitFor('every instance released', () => ready(g) === 0 && pids.every((p) => !alive(p)));
    expect(g.scaler.decisions.down).toBeGreaterThanOrEqual(1);
    const status = g.status() as { scaler: { policy: string; functions: { want: number; reason: string }[] } };
    expect(status.scaler.policy).toBe('reactive');
    expect(status.scaler.functions[0]!.want).toBe(0);
    const res = await post(g, '/work', { 'x-baton-timing': '1' });
    expect(res.status).toBe(200);
    expect(res.headers.get('server-timing')).toMatch(/cold-work/);
    await poolSettled(g);
  });

  it('reactive: a load of concurrent requests scales up within maxInstances; the warm reserve stays when idle', async () => {
    const g = await startOne('work', { module: 'tagged.ts', instances: 0, minInstances: 0, maxInstances: 3, warm: 1, idleAfterMs: 100 }, { scaler: FAST });
    await waitFor('the warm instance', () => ready(g) === 1); // needs 0, keeps 1 warm
    // six at a time for a while: more instances, never more than 3
    let peak = 0;
    const until = Date.now() + 1500;
    const worker = async () => {
      while (Date.now() < until) {
        expect((await post(g, '/work?ms=30')).status).toBe(200);
        peak = Math.max(peak, g.instances.of(0).filter((i) => i.wanted).length);
      }
    };
    await Promise.all([...Array(6)].map(worker));
    expect(g.scaler.decisions.up).toBeGreaterThanOrEqual(1);
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(3);
    // idle again: down to the warm one, which stays for many decisions
    await waitFor('back to the warm reserve', () => ready(g) === 1 && g.instances.of(0).filter((i) => i.wanted).length === 1);
    const ticks = g.scaler.decisions.ticks;
    await waitFor('twenty more decisions', () => g.scaler.decisions.ticks >= ticks + 20);
    expect(ready(g)).toBe(1);
    await poolSettled(g);
  });

  it('kraken: learns a run-time branch mix from the answered requests and sizes the functions from it', async () => {
    const fn = (module: string) => ({ module, minInstances: 0, maxInstances: 3, spares: 0 });
    gw = await startGateway(
      {
        gateway: { port: 0, scaler: { policy: 'kraken', sampleMs: 20, tickMs: 100, probabilityAlpha: 0.05 } },
        functions: {
          triage: fn('branching/triage.ts'), 'summarize-short': fn('branching/summarize-short.ts'),
          'summarize-long': fn('branching/summarize-long.ts'), label: fn('branching/label.ts'),
        },
        routes: [{ method: 'POST', path: '/summarize', chain: ['triage', ['summarize-short', 'summarize-long'], 'label'], slo: 500 }],
      },
      {},
      EXAMPLES,
    );
    const g = gw;
    // 3 long texts in every 10, spread out
    for (let i = 0; i < 200; i++) {
      const long = (i * 0.3) % 1 < 0.3 - 1e-9;
      const res = await fetch(`${g.url}/summarize`, { method: 'POST', body: long ? 'word '.repeat(100) : 'Short text.' });
      expect(res.status).toBe(200);
    }
    const kraken = g.scaler.policy as KrakenPolicy;
    const id = (name: string) => g.deployment.functions.find((f) => f.name === name)!.id;
    expect(kraken.shape(0, id('summarize-long')).p).toBeCloseTo(0.3, 1);
    expect(kraken.shape(0, id('summarize-short')).p).toBeCloseTo(0.7, 1);
    expect(kraken.shape(0, id('triage')).p).toBeCloseTo(1, 6);
    await waitFor('a proactive pass', () => kraken.predictedRate(0) > 0);
    const status = g.status() as { scaler: { policy: string; functions: { name: string; reason: string }[] } };
    expect(status.scaler.policy).toBe('kraken');
    expect(status.scaler.functions.find((f) => f.name === 'triage')!.reason).toMatch(/^kraken: /);
    await poolSettled(g);
  });

  it('tells the workers which instances run only when an early-bound function\'s change: scaling a late-bound one sends no process a message', async () => {
    const g = await start({
      functions: {
        front: { module: 'echo.ts', instances: 1, maxInstances: 3, spares: 0 },
        back: { module: 'tagged.ts', binding: 'early', instances: 2 },
      },
      routes: [{ method: 'POST', path: '/chain', chain: ['front', 'back'] }],
    });
    const told: number[][][] = [];
    const broadcast = g.instances.broadcast.bind(g.instances);
    g.instances.broadcast = (msg) => {
      if (msg.type === 'live') told.push(msg.live);
      broadcast(msg);
    };
    await g.scale('front', 3);
    await g.scale('front', 1);
    expect(told).toEqual([]); // late-bound: addressed as a whole, the workers need no keys
    // an early-bound instance dies: the workers must stop picking it, then pick its replacement
    const victim = g.instances.of(1).find((i) => i.state === 'ready')!;
    victim.child!.kill('SIGKILL');
    await waitFor('the instance replaced', () => told.length >= 2 && ready(g, 1) === 2);
    expect(told[0]![1]).not.toContain(victim.key);
    expect(told.at(-1)![1]!.length).toBe(2);
    const answers = await Promise.all([...Array(6)].map(() => post(g, '/chain')));
    expect(answers.map((r) => r.status)).toEqual(Array(6).fill(200));
    await poolSettled(g);
  });
});
