// Late and early binding under real concurrent load: the dispatcher's invariant, the
// per-instance concurrency limit, instances joining, leaving and crashing mid-load with
// every request answered exactly once, queue timeouts and a full queue.
import { afterEach, describe, expect, it } from 'vitest';
import type { Gateway } from '../src/gateway/index.ts';
import { dataplaneUnavailable } from './helpers/env.ts';
import { poolSettled, startGateway, waitFor } from './helpers/gateway.ts';

interface Outcome {
  status: number;
  tag?: string;
  error?: string;
  /** The instance's process, and the most handlers it had run at once when it answered. */
  pid?: number;
  peak?: number;
  sent: string;
}

/** `clients` concurrent closed-loop clients send `total` tagged requests between them. */
async function load(gw: Gateway, total: number, clients: number, ms: number, during?: () => Promise<void>): Promise<Outcome[]> {
  const out: Outcome[] = [];
  let next = 0;
  const client = async () => {
    while (next < total) {
      const sent = `req-${next++}`;
      const res = await fetch(`${gw.url}/work?ms=${ms}`, { method: 'POST', body: sent });
      const body = (await res.json()) as Omit<Outcome, 'status' | 'sent'>;
      out.push({ status: res.status, ...body, sent });
    }
  };
  await Promise.all([...Array(clients)].map(client).concat(during ? [during()] : []));
  return out;
}

/** Checks the invariant at every turn of the event loop while `work` runs: a function with
 *  live waiting descriptors has no idle token. The kernel changes that state on other CPUs, so
 *  only a consistent snapshot counts (nothing changed while it was read), and only a state
 *  that stays put for 2 ms with nothing happening meanwhile — not the instant between the
 *  kernel queueing a descriptor and looking for a token. A sample can only miss a violation,
 *  never invent one, so 0 violations is a sound assertion; whether the queue was used is read
 *  from the kernel's counters, not from samples. */
async function watchInvariant(gw: Gateway, fnId: number, work: Promise<unknown>): Promise<{ samples: number; violations: number }> {
  let done = false;
  void work.finally(() => (done = true));
  const r = { samples: 0, violations: 0 };
  const stuck = () => {
    const s = gw.dispatcher.snapshot(fnId);
    return s.consistent && s.queued > 0 && s.idle > 0 ? s : undefined;
  };
  while (!done) {
    const first = stuck();
    if (first) {
      await new Promise((res) => setTimeout(res, 2));
      const again = stuck();
      if (again && again.events === first.events) r.violations++;
    }
    r.samples++;
    await new Promise((res) => setImmediate(res));
  }
  return r;
}

describe.skipIf(dataplaneUnavailable)('binding', () => {
  let gw: Gateway | undefined;
  afterEach(() => gw?.stop());

  const start = (binding: 'late' | 'early', fn: Record<string, unknown> = {}, timeoutMs = 20_000) =>
    startGateway(
      {
        binding,
        pool: { slotSize: '8KiB', slots: 256 },
        functions: { work: { module: 'tagged.ts', instances: 3, maxInstances: 5, minInstances: 1, ...fn } },
        routes: [{ method: 'POST', path: '/work', chain: ['work'] }],
      },
      { timeoutMs },
    ).then((g) => (gw = g));

  it('late: no descriptor waits while an instance is idle, and none runs more than its limit', async () => {
    const g = await start('late', { concurrency: 2 });
    // first make the slow path certain: 6 long requests take every token, a 7th must queue
    const long = [...Array(7)].map((_, i) => fetch(`${g.url}/work?ms=300`, { method: 'POST', body: `long-${i}` }));
    await waitFor('a queued descriptor', () => g.dispatcher.queued(0) === 1);
    const work = Promise.all([Promise.all(long.map(async (r) => (await r).status)), load(g, 300, 16, 2)]);
    const inv = await watchInvariant(g, 0, work);
    const [longStatuses, results] = await work;
    expect(longStatuses).toEqual(Array(7).fill(200));
    expect(results.every((r) => r.status === 200 && r.tag === r.sent)).toBe(true);
    expect(inv.violations).toBe(0);
    expect(Math.max(...results.map((r) => r.peak!))).toBeLessThanOrEqual(2);
    const binds = g.kernelBinds();
    expect(binds.boundFast).toBeGreaterThan(0); // bound at send to an idle instance, in the kernel
    expect(binds.queued).toBeGreaterThan(0); // waited in the kernel queue: the slow path really ran
    expect(binds.handed).toBeGreaterThan(0); // handed by the kernel to an instance reporting idle
    await poolSettled(g);
    expect(g.dispatcher.idleTokens(0)).toBe(6); // every token came back
  });

  it('early: round robin at send, each instance queues its own, still within its limit', async () => {
    const g = await start('early');
    const results = await load(g, 150, 16, 2);
    expect(results.every((r) => r.status === 200 && r.tag === r.sent)).toBe(true);
    expect(Math.max(...results.map((r) => r.peak!))).toBe(1);
    const pids = new Set(results.map((r) => r.pid));
    expect(pids.size).toBe(3); // round robin reached every instance
    expect(pids).toEqual(new Set(g.instances.of(0).filter((i) => i.state === 'ready').map((i) => i.child!.pid)));
    expect(g.kernelBinds().boundFast).toBe(0);
    await poolSettled(g);
  });

  for (const binding of ['late', 'early'] as const) {
    it(`${binding}: instances join, leave and crash under load; every request is answered exactly once`, async () => {
      const g = await start(binding);
      const changes = async () => {
        await waitFor('load to start', () => g.requests.size > 0);
        await g.scale('work', 5); // join
        await new Promise((r) => setTimeout(r, 100));
        await g.scale('work', 2); // leave: drained, nothing dropped
        const victim = g.instances.of(0).find((i) => i.state === 'ready')!;
        const pid = victim.child!.pid!;
        process.kill(pid, 'SIGKILL'); // crash: its requests get 502, it is replaced
        await waitFor('replacement', () => victim.state === 'ready' && victim.child?.pid !== pid);
      };
      const results = await load(g, 400, 16, 3, changes);
      expect(results).toHaveLength(400);
      expect(new Set(results.map((r) => r.sent)).size).toBe(400); // one answer per request
      for (const r of results) {
        if (r.status === 200) expect(r.tag).toBe(r.sent);
        else expect(r).toMatchObject({ status: 502, error: 'BATON_ERR_WORKER_CRASHED' }); // only what the victim held
      }
      const failed = results.filter((r) => r.status !== 200).length;
      // late, cc=1: the victim held at most one request; early: also whatever queued at it
      expect(failed).toBeLessThanOrEqual(binding === 'late' ? 1 : 16);
      expect(g.inbox.stats.strayDescriptors).toBe(0); // no reply arrived twice
      expect(g.instances.of(0).filter((i) => i.state === 'ready')).toHaveLength(2);
      await poolSettled(g);
      if (binding === 'late') await waitFor('all tokens back', () => g.dispatcher.idleTokens(0) === 2);
    });
  }

  it('late: a request that times out while queued gets 504, leaves the queue and frees its slot', async () => {
    const g = await start('late', { instances: 1, minInstances: 1 }, 600);
    const long = fetch(`${g.url}/work?ms=1000`, { method: 'POST', body: 'long' });
    await waitFor('the instance to be busy', () => g.dispatcher.idleTokens(0) === 0);
    const queued = fetch(`${g.url}/work`, { method: 'POST', body: 'queued' });
    await waitFor('a queued descriptor', () => g.dispatcher.queued(0) === 1);
    const res = await queued;
    expect(res.status).toBe(504);
    expect(g.dispatcher.queued(0)).toBe(0); // withdrawn: its slot is free, its descriptor is passed over
    expect((await long).status).toBe(504); // 1000 ms > 600 ms too; its slot waits in quarantine
    await poolSettled(g);
    expect(g.dispatcher.idleTokens(0)).toBe(1);
    expect(g.kernelBinds().handed).toBe(0); // the instance never got the withdrawn one
  });

  it('late: a client that leaves while its request waits takes it out of the queue', async () => {
    const g = await start('late', { instances: 1, minInstances: 1 });
    const busy = fetch(`${g.url}/work?ms=500`, { method: 'POST', body: 'busy' });
    await waitFor('the instance to be busy', () => g.dispatcher.idleTokens(0) === 0);
    const abort = new AbortController();
    const leaving = fetch(`${g.url}/work`, { method: 'POST', body: 'leaving', signal: abort.signal }).catch((e: Error) => e);
    await waitFor('a queued descriptor', () => g.dispatcher.queued(0) === 1);
    abort.abort();
    expect(await leaving).toBeInstanceOf(Error);
    await waitFor('the queue to empty', () => g.dispatcher.queued(0) === 0);
    expect((await busy).status).toBe(200);
    await poolSettled(g);
    expect(g.dispatcher.idleTokens(0)).toBe(1); // the token came back, not handed to a ghost
  });

  it('late: a full queue answers 503', async () => {
    const g = await start('late', { instances: 1, minInstances: 1, queueDepth: 1 });
    const busy = fetch(`${g.url}/work?ms=400`, { method: 'POST', body: 'a' });
    await waitFor('the instance to be busy', () => g.dispatcher.idleTokens(0) === 0);
    const waiting = fetch(`${g.url}/work`, { method: 'POST', body: 'b' });
    await waitFor('a queued descriptor', () => g.dispatcher.queued(0) === 1);
    const rejected = await fetch(`${g.url}/work`, { method: 'POST', body: 'c' });
    expect(rejected.status).toBe(503);
    expect(await rejected.json()).toMatchObject({ error: 'BATON_ERR_QUEUE_FULL' });
    expect([(await busy).status, (await waiting).status]).toEqual([200, 200]);
    await poolSettled(g);
  });

  it('refuses to scale outside min/max', async () => {
    const g = await start('late');
    await expect(g.scale('work', 6)).rejects.toThrow(/1\.\.5 instances, not 6/);
    await expect(g.scale('nope', 1)).rejects.toThrow(/no function named/);
    const res = await fetch(`${g.adminUrl}/scale`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ function: 'work', instances: 4 }),
    });
    expect(res.status).toBe(200);
    expect(g.instances.of(0).filter((i) => i.state === 'ready')).toHaveLength(4);
  });
});
