// Nested calls (ctx.call) through the real data plane: results come back to the caller, calls
// run in parallel on other instances, a callee with fewer instances than calls queues them
// (no deadlock: calls form a DAG), failures and crashes reach the caller, and nothing leaks.
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../src/gateway/index.ts';
import { dataplaneUnavailable } from './helpers/env.ts';
import { poolSettled, startGateway, waitFor } from './helpers/gateway.ts';

interface Result {
  status: number;
  type?: string;
  body: { pid: number; fn: string; input: unknown; type: string; url: string };
}

describe.skipIf(dataplaneUnavailable).each(['late', 'early'] as const)('nested calls, %s binding', (binding) => {
  let gw: Gateway;
  const logs: string[] = [];
  const plan = async (p: object) => {
    const res = await fetch(`${gw.url}/fan`, { method: 'POST', body: JSON.stringify(p), headers: { 'x-baton-timing': '1' } });
    const text = await res.text();
    return { status: res.status, timing: res.headers.get('server-timing') ?? '', body: JSON.parse(text) as { results: Result[]; error?: string; message?: string } };
  };

  beforeAll(async () => {
    gw = await startGateway(
      {
        pool: { slotSize: '64KiB', slots: 32 },
        binding,
        functions: {
          fanout: { module: 'fanout.ts', calls: ['wide', 'narrow'] },
          wide: { module: 'callee.ts', instances: 2 },
          narrow: { module: 'callee.ts' },
        },
        routes: [{ method: 'POST', path: '/fan', chain: ['fanout'] }],
      },
      { timeoutMs: 3000, logger: pino({ level: 'error' }, new Writable({ write: (c, _e, done) => (logs.push(String(c)), done()) })) },
    );
  });
  afterAll(() => gw?.stop());

  it('a call returns the callee\'s status, type and body; payloads keep their type', async () => {
    const { status, body, timing } = await plan({
      calls: [
        { fn: 'wide', payload: { hello: 1, status: 201 } },
        { fn: 'narrow', payload: 'plain text' },
      ],
    });
    expect(status).toBe(200);
    expect(body.results[0]).toMatchObject({ status: 201, type: 'application/json', body: { fn: 'wide', input: { hello: 1, status: 201 }, type: 'application/json', url: '/wide' } });
    expect(body.results[1]).toMatchObject({ status: 200, body: { fn: 'narrow', input: { text: 'plain text' }, type: 'text/plain; charset=utf-8' } });
    // the calls' entries (in the order they answered), then the caller's own hop
    expect(timing).toMatch(/call-wide-wait;dur=[\d.]+, call-wide;dur=[\d.]+/);
    expect(timing).toMatch(/call-narrow;dur=[\d.]+, h1-fanout-wait;dur=[\d.]+, h1-fanout;dur=|call-wide;dur=[\d.]+, h1-fanout-wait;dur=[\d.]+, h1-fanout;dur=/);
    await poolSettled(gw);
  });

  it('parallel calls run on different instances; more calls than instances queue and all finish', async () => {
    const { body } = await plan({ calls: [...Array(4)].map((_, i) => ({ fn: 'wide', payload: { sleep: 100, i } })) });
    expect(body.results.map((r) => (r.body.input as { i: number }).i)).toEqual([0, 1, 2, 3]);
    expect(new Set(body.results.map((r) => r.body.pid)).size).toBe(2);
    const narrow = await plan({ calls: [...Array(6)].map((_, i) => ({ fn: 'narrow', payload: { i } })) });
    expect(narrow.body.results).toHaveLength(6);
    expect(new Set(narrow.body.results.map((r) => r.body.pid)).size).toBe(1);
    await poolSettled(gw);
  });

  it('many requests fanning out at once all complete (no instance waits on another forever)', async () => {
    const all = await Promise.all([...Array(12)].map((_, i) => plan({ calls: [{ fn: 'narrow', payload: { i } }, { fn: 'wide', payload: { i } }] })));
    expect(all.map((r) => r.status)).toEqual(all.map(() => 200));
    await poolSettled(gw);
  });

  it('a callee that throws makes the call reject: 502 BATON_ERR_CALL_FAILED with the callee\'s message', async () => {
    const { status, body } = await plan({ calls: [{ fn: 'wide', payload: { throw: true } }] });
    expect(status).toBe(502);
    expect(body).toMatchObject({ error: 'BATON_ERR_CALL_FAILED', message: expect.stringMatching(/'fanout' called 'wide', which answered 500: .*the callee threw/) });
    await poolSettled(gw);
  });

  it('a call to a function not in `calls` is refused by the SDK with what it may call', async () => {
    const { status, body } = await plan({ calls: [{ fn: 'fanout' }] });
    expect(status).toBe(500);
    expect(body).toMatchObject({ error: 'BATON_ERR_BAD_CALL', message: expect.stringMatching(/'fanout' called 'fanout'; it may call wide, narrow/) });
    await poolSettled(gw);
  });

  it('a caller that returns without awaiting its calls: answered, and the late results are given back', async () => {
    const { status, body } = await plan({ leave: true, calls: [{ fn: 'wide', payload: { sleep: 50 } }, { fn: 'narrow', payload: { sleep: 50 } }] });
    expect(status).toBe(200);
    expect(body).toEqual({ left: 2 });
    await poolSettled(gw);
  });

  it('a request whose client leaves while its caller waits on calls: the caller hears it is over at once', async () => {
    const ac = new AbortController();
    const gone = fetch(`${gw.url}/fan`, { method: 'POST', body: JSON.stringify({ calls: [{ fn: 'narrow', payload: { sleep: 400 } }] }), signal: ac.signal });
    await waitFor('the call to be running', () => gw.requests.inFlight === 1 && gw.slots.free() === gw.slots.count - 2);
    ac.abort();
    await expect(gone).rejects.toThrow();
    // the caller's call rejects with the gateway's notice (not its deadline, not the result)
    await waitFor('the caller to hear', () => logs.some((l) => /'fanout' failed: .*the request was answered already/.test(l)));
    expect((await plan({ calls: [{ fn: 'wide', payload: 1 }] })).status).toBe(200);
    await poolSettled(gw);
  });

  it('no instance was killed or refused by the kernel along the way', () => {
    expect(gw.inbox.stats.badDescriptors).toBe(0);
    expect(gw.instances.all.filter((i) => i.wanted).map((i) => i.restarts)).toEqual([0, 0, 0, 0]);
    for (const i of gw.instances.all) expect(gw.dataplane.counters(i.key).refused).toBe(0);
  });

  it('a callee that crashes mid-call: 502, the callee is replaced, every slot comes back', async () => {
    const { status } = await plan({ calls: [{ fn: 'narrow', payload: { exit: true } }] });
    expect(status).toBe(502);
    const narrow = gw.instances.all.find((i) => gw.deployment.functions[i.fnId]!.name === 'narrow')!;
    await waitFor('the callee to be replaced', () => narrow.state === 'ready');
    await poolSettled(gw);
    expect((await plan({ calls: [{ fn: 'narrow', payload: 1 }] })).status).toBe(200);
  });

  it('a callee stopped (SIGSTOP) mid-call: 504 at the deadline, the caller freed, the callee killed and replaced', async () => {
    const narrow = gw.instances.all.find((i) => gw.deployment.functions[i.fnId]!.name === 'narrow')!;
    const pid = narrow.child!.pid!;
    // freed by its own deadline or by the gateway's notice, whichever comes first (both at ~3 s)
    const heard = () => logs.filter((l) => /'fanout' failed: .*(the request was answered already|before the request's deadline)/.test(l)).length;
    const heardBefore = heard();
    const answer = plan({ calls: [{ fn: 'narrow', payload: { sleep: 200 } }] });
    await waitFor('the callee to hold the call', () => [...Array(gw.slots.count).keys()].some((s) => gw.slots.holder(s) === narrow.key));
    process.kill(pid, 'SIGSTOP');
    const { status, body } = await answer;
    expect(status).toBe(504);
    expect(body).toMatchObject({ error: 'BATON_ERR_TIMEOUT' });
    await waitFor('the caller to hear', () => heard() === heardBefore + 1);
    await waitFor('the stopped callee to be replaced', () => narrow.state === 'ready' && narrow.child?.pid !== pid);
    await poolSettled(gw);
    expect((await plan({ calls: [{ fn: 'narrow', payload: 1 }] })).status).toBe(200);
  });
});
