// Warm spares: a function that can scale keeps a process warmed (baton's runtime loaded, no
// function) on a key no instance uses; adding an instance turns that process into one, and a
// new spare is warmed behind it. Spares take no work, do not count as instances, die harmlessly
// and go with the gateway.
import { afterEach, describe, expect, it } from 'vitest';
import type { Gateway } from '../src/gateway/index.ts';
import { dataplaneUnavailable } from './helpers/env.ts';
import { alive } from './helpers/system.ts';
import { poolSettled, startGateway, waitFor } from './helpers/gateway.ts';


describe.skipIf(dataplaneUnavailable)('warm spares', () => {
  let gw: Gateway | undefined;
  afterEach(() => gw?.stop());

  const start = (fn: Record<string, unknown>) =>
    startGateway({
      functions: { work: { module: 'tagged.ts', instances: 1, maxInstances: 3, ...fn } },
      routes: [{ method: 'POST', path: '/work', chain: ['work'] }],
    }).then((g) => (gw = g));
  const states = (g: Gateway) => g.instances.of(0).map((i) => i.state);
  const spares = (g: Gateway) => g.instances.of(0).filter((i) => i.state === 'spare');
  const call = async (g: Gateway) => (await fetch(`${g.url}/work`, { method: 'POST', body: 'x' })).json() as Promise<{ pid: number }>;

  it('keeps one warm by default where the function can scale; scaling up serves from it, and warms the next', async () => {
    const g = await start({});
    await waitFor('a spare', () => spares(g).length === 1);
    const sparePid = spares(g)[0]!.child!.pid!;
    expect(g.status().functions[0]!.instances.map((i) => i.state)).toEqual(['ready', 'spare']);
    // a spare takes no work: every answer comes from the instance
    const first = g.instances.of(0)[0]!.child!.pid!;
    for (let i = 0; i < 5; i++) expect((await call(g)).pid).toBe(first);
    await g.scale('work', 2);
    expect(g.instances.of(0)[1]!.child!.pid).toBe(sparePid); // the spare became the instance
    await waitFor('the next spare', () => spares(g).length === 1);
    expect(states(g)).toEqual(['ready', 'ready', 'spare']);
    await g.scale('work', 3); // the last key: nothing left to warm
    expect(states(g)).toEqual(['ready', 'ready', 'ready']);
    // three at once: each instance takes one
    const slow = () => fetch(`${g.url}/work?ms=300`, { method: 'POST', body: 'x' }).then((r) => r.json() as Promise<{ pid: number }>);
    const pids = new Set((await Promise.all([slow(), slow(), slow()])).map((r) => r.pid));
    expect(pids).toEqual(new Set(g.instances.of(0).map((i) => i.child!.pid)));
    await poolSettled(g);
  });

  it('keeps none with spares: 0, or where the function cannot scale', async () => {
    const g = await start({ spares: 0 });
    await new Promise((r) => setTimeout(r, 300));
    expect(states(g)).toEqual(['ready', 'stopped', 'stopped']);
    await g.stop();
    const fixed = await start({ maxInstances: 1 });
    expect(states(fixed)).toEqual(['ready']);
  });

  it('a spare that dies is nobody\'s loss: no error, no restart loop, and the function still scales', async () => {
    const g = await start({});
    await waitFor('a spare', () => spares(g).length === 1);
    const pid = spares(g)[0]!.child!.pid!;
    process.kill(pid, 'SIGKILL');
    await waitFor('the spare to be gone', () => spares(g).length === 0 && !alive(pid));
    expect((await fetch(`${g.url}/work`, { method: 'POST', body: 'x' })).status).toBe(200);
    expect(g.instances.of(0).reduce((n, i) => n + i.restarts, 0)).toBe(0);
    await g.scale('work', 2); // from nothing, then
    expect(states(g).filter((s) => s === 'ready')).toHaveLength(2);
  });

  it('go with the gateway', async () => {
    const g = await start({});
    await waitFor('a spare', () => spares(g).length === 1);
    const pid = spares(g)[0]!.child!.pid!;
    await g.stop();
    gw = undefined;
    await waitFor('the spare process to exit', () => !alive(pid));
  });
});
