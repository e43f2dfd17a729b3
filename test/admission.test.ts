// Admission control on the real gateway: classes from the route and the x-baton-class header,
// 429 when the lowest class is full (with Retry-After, and nothing leaked), and the admit
// probability falling when a class misses its target, so its requests are downgraded.
import { afterEach, describe, expect, it } from 'vitest';
import type { ChainFileInput } from '../src/chain/index.ts';
import type { Gateway } from '../src/gateway/index.ts';
import { dataplaneUnavailable } from './helpers/env.ts';
import { poolSettled, startGateway, waitFor } from './helpers/gateway.ts';

type Classes = Record<string, { admitted: number; downgraded: number; rejected: number; answered: number; metSlo: number }>;

let gw: Gateway | undefined;
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});
/** A gateway for `doc` (any free port), stopped after the test. */
const launch = (doc: Record<string, unknown>) =>
  startGateway({ ...doc, gateway: { port: 0, ...(doc.gateway as object) } } as ChainFileInput).then((g) => (gw = g));
/** Function `work` behind two routes of one domain: /c critical, /b best-effort. */
const twoClasses = (work: Record<string, unknown>, admission: Record<string, unknown>) =>
  launch({
    gateway: { admission },
    functions: { work },
    routes: [
      { method: 'POST', path: '/c', chain: ['work'], class: 'critical', domain: 'one' },
      { method: 'POST', path: '/b', chain: ['work'], class: 'best-effort', domain: 'one' },
    ],
  });

describe.skipIf(dataplaneUnavailable)('admission control', () => {
  const start = (admission: Record<string, unknown>, route: Record<string, unknown> = {}, fn: Record<string, unknown> = {}) =>
    launch({
      gateway: { admission },
      functions: { work: { module: 'hold.ts', ...fn } },
      routes: [{ method: 'POST', path: '/work', chain: ['work'], ...route }],
    });
  const classes = (g: Gateway) => (g.status() as { admission: { classes: Classes } }).admission.classes;
  const post = (g: Gateway, query = '', headers: Record<string, string> = {}) => fetch(`${g.url}/work${query}`, { method: 'POST', body: 'x', headers });

  it('a client may lower its request\'s class with x-baton-class, never raise it', async () => {
    const g = await start({});
    for (const asked of [undefined, 'critical', 'best-effort', 'nonsense']) {
      const res = await post(g, '', asked ? { 'x-baton-class': asked } : {});
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    await waitFor('all four settled', () => Object.values(classes(g)).reduce((n, c) => n + c.answered, 0) === 4);
    const c = classes(g);
    expect([c.critical!.admitted, c.normal!.admitted, c['best-effort']!.admitted]).toEqual([0, 3, 1]);
    await poolSettled(g);
  });

  it('the lowest class full: 429 with Retry-After and BATON_ERR_OVERLOADED, before any slot is taken; nothing leaked', async () => {
    const g = await start({ enabled: true, lowestInFlight: 2, retryAfterS: 3 }, { class: 'best-effort' }, { instances: 2 });
    const held = [post(g, '?ms=400'), post(g, '?ms=400')];
    await waitFor('two in flight', () => g.requests.inFlight === 2);
    const free = g.slots.free();
    const refused = await post(g);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('3');
    expect(refused.headers.get('connection')).toBe('close'); // its body was never read
    expect(((await refused.json()) as { error: string }).error).toBe('BATON_ERR_OVERLOADED');
    expect(g.slots.free()).toBe(free);
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200]);
    await waitFor('their places freed', () => classes(g)['best-effort']!.answered === 2);
    expect((await post(g)).status).toBe(200); // room again
    expect(classes(g)['best-effort']!.rejected).toBe(1);
    await poolSettled(g);
  });

  it('a class that misses its target has its admit probability fall, and its requests are downgraded', async () => {
    const g = await start({ enabled: true, slo: { critical: 1 } }, { class: 'critical' });
    for (let i = 0; i < 150; i++) await (await post(g, '?ms=5')).arrayBuffer(); // every one misses 1 ms
    await waitFor('all settled', () => classes(g).critical!.admitted + classes(g).critical!.downgraded === 150);
    const c = classes(g);
    const p = (g.status() as { admission: { probabilities: { route: string; class: string; p: number }[] } }).admission.probabilities;
    expect(p).toEqual([expect.objectContaining({ route: 'POST /work', class: 'critical' })]);
    expect(p[0]!.p).toBeLessThan(0.5);
    expect(c.critical!.downgraded).toBeGreaterThan(0);
    expect(c['best-effort']!.answered).toBe(c.critical!.downgraded); // they ran as best-effort
    expect(c.critical!.metSlo).toBe(0);
    const metrics = await (await fetch(`${g.adminUrl}/metrics`)).text();
    expect(metrics).toContain(`baton_admission_total{class="critical",outcome="downgraded"} ${c.critical!.downgraded}`);
    expect(metrics).toMatch(/baton_admit_probability\{route="POST \/work",class="critical"\} 0\.\d+/);
    await poolSettled(g);
  });
});

describe.skipIf(dataplaneUnavailable)('class-ordered queues (in the kernel)', () => {
  /** One instance of `work`, /c critical and /b best-effort. */
  const start = (starvationShare: number) => twoClasses({ module: 'tagged.ts', spares: 0 }, { starvationShare });

  /** Holds function `fnId`'s one instance with a request to `holder`, queues `order` (paths)
   *  behind it one by one, does `then` (if any), and returns the tags in the order they were
   *  answered (a failure as "tag status"). */
  async function served(g: Gateway, order: string[], opts: { holder?: string; holdMs?: number; fnId?: number; then?: () => void } = {}): Promise<string[]> {
    const { holder = '/b', holdMs = 300, fnId = 0 } = opts;
    const done: string[] = [];
    const all: Promise<void>[] = [];
    const send = (path: string, tag: string, ms: number) =>
      all.push(fetch(`${g.url}${path}?ms=${ms}`, { method: 'POST', body: tag }).then(async (r) => {
        done.push(r.status === 200 ? ((await r.json()) as { tag: string }).tag : `${tag} ${r.status}`);
      }));
    send(holder, 'holder', holdMs);
    await waitFor('the instance busy', () => g.dispatcher.inFlight(fnId) === 1);
    for (const [i, path] of order.entries()) {
      send(path, `${path.slice(1)}${i}`, 5);
      await waitFor(`${i + 1} queued`, () => g.dispatcher.queued(fnId) === i + 1);
    }
    opts.then?.();
    await Promise.all(all);
    return done;
  }

  it('an idle instance takes the highest class waiting first, whatever came before it', async () => {
    const g = await start(0);
    expect(await served(g, ['/b', '/b', '/b', '/c', '/b', '/c'])).toEqual(['holder', 'c3', 'c5', 'b0', 'b1', 'b2', 'b4']);
    await poolSettled(g);
  });

  it('a client lowering its class with the header is queued behind the route\'s class', async () => {
    const g = await start(0);
    const done: string[] = [];
    const post = (tag: string, ms: number, cls?: string) =>
      fetch(`${g.url}/c?ms=${ms}`, { method: 'POST', body: tag, headers: cls ? { 'x-baton-class': cls } : {} }).then(async (r) => {
        done.push(((await r.json()) as { tag: string }).tag);
      });
    const all = [post('holder', 300)];
    await waitFor('the instance busy', () => g.dispatcher.inFlight(0) === 1);
    all.push(post('lowered', 5, 'best-effort'));
    await waitFor('1 queued', () => g.dispatcher.queued(0) === 1);
    all.push(post('critical', 5));
    await waitFor('2 queued', () => g.dispatcher.queued(0) === 2);
    await Promise.all(all);
    expect(done).toEqual(['holder', 'critical', 'lowered']);
    await poolSettled(g);
  });

  it('a hop a function forwards queues at its request\'s class: a best-effort chain\'s second step waits behind a critical request', async () => {
    // the class is the slot's, in custody only the gateway writes: what a function sends
    // carries no class it could set
    const g = await launch({
      gateway: { admission: { starvationShare: 0 } },
      functions: { front: { module: 'echo.ts' }, work: { module: 'tagged.ts', spares: 0 } },
      routes: [
        { method: 'POST', path: '/b', chain: ['front', 'work'], class: 'best-effort', domain: 'one' },
        { method: 'POST', path: '/c', chain: ['work'], class: 'critical', domain: 'one' },
      ],
    });
    const fnId = g.deployment.functions.find((f) => f.name === 'work')!.id;
    expect(await served(g, ['/b', '/b', '/c'], { holder: '/c', fnId })).toEqual(['holder', 'c2', 'b0', 'b1']);
    await poolSettled(g);
  });

  it('kill -9 of the instance while two classes wait: its request 502, the replacement takes what waits by class, nothing leaked', async () => {
    const g = await start(0);
    const kill = () => process.kill(g.instances.of(0)[0]!.child!.pid!, 'SIGKILL');
    expect(await served(g, ['/b', '/b', '/c'], { holdMs: 5000, then: kill })).toEqual(['holder 502', 'c2', 'b0', 'b1']);
    await poolSettled(g);
  });

  it('a function at zero: what waits while its instance starts is handed over by class too, the moment it is ready', async () => {
    const g = await twoClasses({ module: 'slow-import.ts', instances: 0, minInstances: 0, maxInstances: 1, spares: 0, env: { IMPORT_MS: '500' } }, { starvationShare: 0 });
    const done: string[] = [];
    const all: Promise<void>[] = [];
    for (const [i, path] of ['/b', '/b', '/c'].entries()) {
      all.push(fetch(`${g.url}${path}`, { method: 'POST', body: `${path.slice(1)}${i}` }).then(async (r) => {
        done.push(((await r.json()) as { tag: string }).tag);
      }));
      await waitFor(`${i + 1} waiting`, () => g.dispatcher.queued(0) === i + 1);
    }
    await Promise.all(all);
    expect(done).toEqual(['c2', 'b0', 'b1']);
    // nothing was bound to the instance while it started: its own Idle notice took the
    // critical one first, in the kernel (the gateway handed it nothing)
    expect(g.dispatcher.stats.handedFromQueue).toBe(0);
    await poolSettled(g);
  });

  it('the lowest class is not starved: with starvationShare 0.5 every second taking serves it first', async () => {
    const g = await start(0.5);
    expect(await served(g, ['/b', '/b', '/b', '/c', '/c', '/c'])).toEqual(['holder', 'c3', 'b0', 'c4', 'b1', 'c5', 'b2']);
    await poolSettled(g);
  });
});

describe.skipIf(dataplaneUnavailable)('deadline-aware shedding', () => {
  const start = (shed: boolean, module = 'hold.ts') =>
    launch({
      gateway: { timeoutMs: 1000, admission: { shed } },
      functions: { work: { module, spares: 0 } },
      routes: [{ method: 'POST', path: '/work', chain: ['work'] }],
    });

  /** The run time measured at 300 ms; then a request waits behind one holding the only
   *  instance past its 1 s deadline: it can never make it. */
  async function waitBehindHolder(g: Gateway): Promise<{ status: number; error: string; message?: string }> {
    expect((await fetch(`${g.url}/work?ms=300`, { method: 'POST', body: 'x' })).status).toBe(200);
    const holder = fetch(`${g.url}/work?ms=1500`, { method: 'POST', body: 'x' });
    await waitFor('the instance busy', () => g.dispatcher.inFlight(0) === 1);
    const res = await fetch(`${g.url}/work?ms=300`, { method: 'POST', body: 'x' });
    const body = (await res.json()) as { error: string; message: string };
    await holder;
    return { status: res.status, error: body.error, ...(res.status === 504 ? { message: body.message } : {}) };
  }

  it('on: a waiting request whose chain no longer fits its deadline is answered 503 SHED before its timeout, its slot freed', async () => {
    const g = await start(true);
    expect(await waitBehindHolder(g)).toEqual({ status: 503, error: 'BATON_ERR_SHED' });
    expect((g.status() as { admission: { classes: Record<string, { shed: number }> } }).admission.classes.normal!.shed).toBe(1);
    expect(g.dispatcher.queued(0)).toBe(0);
    await poolSettled(g);
  });

  it('on: a function that says it needs more than is left (ctx.willTake) sheds its own run: 503 SHED at once, counted; its instance goes on serving', async () => {
    const g = await start(true, 'costly.ts');
    const res = await fetch(`${g.url}/work?ms=5000`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'BATON_ERR_SHED', message: expect.stringMatching(/function 'work' needs ~5000 ms for it; \d+ ms were left$/) });
    await waitFor('counted', () => (g.status() as { admission: { classes: Record<string, { shed: number }> } }).admission.classes.normal!.shed === 1);
    // what fits runs, and sees what is left of its 1 s (in ms, counted from its arrival)
    const ok = await fetch(`${g.url}/work?ms=5`, { method: 'POST', body: 'x' });
    expect(ok.status).toBe(200);
    const { left } = (await ok.json()) as { left: number };
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(1000);
    expect((g.status() as { stats: { timeouts: unknown } }).stats.timeouts).toEqual({ queued: 0, held: 0 });
    await poolSettled(g);
  });

  it('off: ctx.willTake() does not shed; the run goes on to its 504', async () => {
    const g = await start(false, 'costly.ts');
    const res = await fetch(`${g.url}/work?ms=1500`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(504);
    expect((g.status() as { stats: { timeouts: unknown } }).stats.timeouts).toEqual({ queued: 0, held: 1 });
    await poolSettled(g);
  });

  it('off: the same request waits its turn and times out (504), saying where it was; the holder times out running', async () => {
    const g = await start(false);
    expect(await waitBehindHolder(g)).toEqual({ status: 504, error: 'BATON_ERR_TIMEOUT', message: expect.stringMatching(/still waiting for 'work' in its queue$/) });
    expect((g.status() as { stats: { timeouts: unknown } }).stats.timeouts).toEqual({ queued: 1, held: 1 });
    await poolSettled(g);
  });
});
