// Admission control on the real gateway: classes from the route and the x-baton-class header,
// 429 when the lowest class is full (with Retry-After, and nothing leaked), and the admit
// probability falling when a class misses its target, so its requests are downgraded.
import { afterEach, describe, expect, it } from 'vitest';
import type { ChainFileInput } from '../src/chain/index.ts';
import type { Gateway } from '../src/gateway/index.ts';
import { dataplaneUnavailable } from './helpers/env.ts';
import { poolSettled, startGateway, waitFor } from './helpers/gateway.ts';

type Classes = Record<string, { admitted: number; downgraded: number; rejected: number; answered: number; metSlo: number }>;

describe.skipIf(dataplaneUnavailable)('admission control', () => {
  let gw: Gateway | undefined;
  afterEach(() => gw?.stop());
  const start = (admission: Record<string, unknown>, route: Record<string, unknown> = {}, fn: Record<string, unknown> = {}) =>
    startGateway({
      gateway: { port: 0, admission },
      functions: { work: { module: 'hold.ts', ...fn } },
      routes: [{ method: 'POST', path: '/work', chain: ['work'], ...route }],
    } as ChainFileInput).then((g) => (gw = g));
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
