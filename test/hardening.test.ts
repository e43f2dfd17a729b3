// What hostile clients and broken or hostile functions must not be able to do to the node
// (issue 7): hold pool slots for good, break other routes, leave requests unanswered, hang an
// instance forever. Real gateway, real workers, raw sockets for HTTP abuse.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../src/gateway/index.ts';
import { readFileSync } from 'node:fs';
import { cgroupsUnavailable, dataplaneUnavailable, suiteDataplane } from './helpers/env.ts';
import { poolSettled, startGateway, waitFor } from './helpers/gateway.ts';

/** Writes `text` on a fresh connection; resolves with everything read until the connection
 *  closes (the client closes it itself right after writing, or once the first bytes arrive). */
function raw(url: string, text: string | Buffer, opts: { closeAfterWrite?: boolean; closeOnFirstByte?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(new URL(url).port), '127.0.0.1');
    let got = '';
    sock.on('data', (c) => {
      got += c;
      if (opts.closeOnFirstByte) sock.destroy();
    });
    sock.on('error', () => {}); // a reset at close is fine: we look at what arrived
    sock.on('close', () => resolve(got));
    sock.once('connect', () => {
      sock.write(text);
      if (opts.closeAfterWrite) sock.destroy();
    });
    setTimeout(() => reject(new Error(`connection still open; got: ${got.slice(0, 200)}`)), 15_000).unref();
  });
}

const post = (path: string, body = 'x') =>
  `POST ${path} HTTP/1.1\r\nhost: t\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe.skipIf(dataplaneUnavailable)('hardening', () => {
  let gw: Gateway;
  const instanceOf = (fn: string) => gw.instances.all.find((i) => gw.deployment.functions[i.fnId]!.name === fn)!;

  beforeAll(async () => {
    gw = await startGateway(
      {
        pool: { slotSize: '64KiB', slots: 8 },
        functions: {
          slow: { module: 'tagged.ts', concurrency: 8 },
          hostile: { module: 'hostile.ts', memory: '160MiB' },
          victim: { module: 'tagged.ts' },
          stoppable: { module: 'tagged.ts' },
        },
        routes: [
          { method: 'POST', path: '/slow', chain: ['slow'] },
          { method: 'POST', path: '/hostile', chain: ['hostile'] },
          { method: 'POST', path: '/victim', chain: ['victim'] },
          { method: 'POST', path: '/stoppable', chain: ['stoppable'] },
        ],
      },
      { timeoutMs: 1500, bodyTimeoutMs: 600 },
    );
  });
  afterAll(() => gw?.stop());

  describe('HTTP clients', () => {
    it('pipelined requests on a connection that closes leave no slot behind', async () => {
      // the first answer comes when all 16 have been read (8 hold slots, 8 wait with a 503)
      const pipelined = Array(16).fill(post('/slow?ms=200', 'p')).join('');
      await Promise.all([...Array(3)].map(() => raw(gw.url, pipelined, { closeOnFirstByte: true })));
      await poolSettled(gw); // bounded: the slow handlers finish, then every slot comes back
      const res = await fetch(`${gw.url}/victim`, { method: 'POST', body: 'after' });
      expect(await res.json()).toMatchObject({ tag: 'after' });
      expect(res.status).toBe(200);
      await poolSettled(gw);
    });

    it('pipelined requests are all answered, in order, when the client stays', async () => {
      const reply = raw(gw.url, Array(4).fill(post('/victim', 'q')).join('') + 'GET /nowhere HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n');
      const text = await reply;
      expect(text.match(/HTTP\/1\.1 (\d+)/g)).toEqual([...Array(4).fill('HTTP/1.1 200'), 'HTTP/1.1 404']);
      await poolSettled(gw);
    });

    it('a body that does not arrive in time gets 408 and frees its slot; the pool is not starved', async () => {
      const slow = 'POST /victim HTTP/1.1\r\nhost: t\r\ncontent-length: 1000\r\n\r\nx';
      const victim = gw.domainOf(gw.deployment.routes.find((r) => r.path === '/victim')!.chainId);
      const clients = [...Array(gw.slots.perDomain)].map(() => raw(gw.url, slow));
      await waitFor('every slot of its domain held by a slow body', () => gw.slots.free(victim) === 0);
      const during = await fetch(`${gw.url}/victim`, { method: 'POST', body: 'during' });
      expect(during.status).toBe(503); // at most for the body timeout
      for (const text of await Promise.all(clients)) {
        expect(text).toMatch(/^HTTP\/1\.1 408/);
        expect(text).toMatch(/"error":"BATON_ERR_BODY_TIMEOUT"/);
      }
      await poolSettled(gw);
      expect((await fetch(`${gw.url}/victim`, { method: 'POST', body: 'after' })).status).toBe(200);
    });

    it('headers that do not arrive in time get 408 and a closed connection', async () => {
      const text = await raw(gw.url, 'POST /victim HTTP/1.1\r\nhost: t\r\n');
      expect(text).toMatch(/^HTTP\/1\.1 408/);
      expect(text).toMatch(/BATON_ERR_BODY_TIMEOUT/);
    });

    it('a client that leaves mid-request frees its slot', async () => {
      await raw(gw.url, post('/slow?ms=300', 'gone'), { closeAfterWrite: true });
      await raw(gw.url, 'POST /slow HTTP/1.1\r\nhost: t\r\ncontent-length: 100\r\n\r\nhalf', { closeAfterWrite: true });
      await poolSettled(gw);
    });
  });

  describe('functions', () => {
    /** Requests to the victim route, one after another, while `during` runs. */
    async function victimTraffic(during: Promise<unknown>): Promise<number[]> {
      const statuses: number[] = [];
      let done = false;
      void during.finally(() => (done = true));
      while (!done || statuses.length < 5) {
        statuses.push((await fetch(`${gw.url}/victim`, { method: 'POST', body: 'v' })).status);
      }
      return statuses;
    }

    it.each([
      ['short', /refused by the (kernel|broker): it wrote something that is not a whole number of descriptors/],
      ['garbage', /refused by the (kernel|broker): it wrote bytes that are not a descriptor of this version/],
      ['partial', /refused by the (kernel|broker): it wrote something that is not a whole number of descriptors/],
    ])('a %s write on its socket kills only that instance: its request gets 502, other routes never notice', async (what, message) => {
      const hostile = instanceOf('hostile');
      const pid = hostile.child!.pid;
      const attack = fetch(`${gw.url}/hostile?do=${what}`, { method: 'POST', body: 'x' });
      const [res, statuses] = await Promise.all([attack, victimTraffic(attack)]);
      expect(res.status).toBe(502);
      expect(await res.json()).toMatchObject({ error: 'BATON_ERR_BAD_DESCRIPTOR', message: expect.stringMatching(message) });
      expect(statuses.every((s) => s === 200)).toBe(true);
      await waitFor('the hostile instance to be replaced', () => hostile.state === 'ready' && hostile.child?.pid !== pid);
      expect((await fetch(`${gw.url}/hostile`, { method: 'POST', body: 'x' })).status).toBe(200);
      expect(gw.inbox.stats.skippedBytes).toBe(0); // the gateway's own stream never lost alignment
      await poolSettled(gw);
    });

    it('a flood of Idle notices for work it was never given costs only its own instance (killed), not the gateway\'s time for others', async () => {
      const hostile = instanceOf('hostile');
      const pid = hostile.child!.pid;
      const spurious = gw.dispatcher.stats.spurious;
      const attack = fetch(`${gw.url}/hostile?do=idleflood`, { method: 'POST', body: 'x' });
      const [res, statuses] = await Promise.all([attack, victimTraffic(attack)]);
      expect(statuses.every((s) => s === 200)).toBe(true);
      expect(res.status).toBe(502);
      expect(await res.json()).toMatchObject({ error: 'BATON_ERR_BAD_DESCRIPTOR', message: expect.stringMatching(/Idle notices within a second for work it was not given/) });
      // cut off at the limit, not after the 5120 it wrote
      expect(gw.dispatcher.stats.spurious - spurious).toBeLessThan(5120);
      await waitFor('the hostile instance to be replaced', () => hostile.state === 'ready' && hostile.child?.pid !== pid);
      expect((await fetch(`${gw.url}/hostile`, { method: 'POST', body: 'x' })).status).toBe(200);
      await poolSettled(gw);
    });

    it('an empty write on its socket: nothing on the kernel\'s data plane; on the broker it reads as the socket closing, and only that instance is killed', async () => {
      const hostile = instanceOf('hostile');
      const pid = hostile.child!.pid;
      const attack = fetch(`${gw.url}/hostile?do=empty`, { method: 'POST', body: 'x' });
      const [res, statuses] = await Promise.all([attack, victimTraffic(attack)]);
      expect(statuses.every((s) => s === 200)).toBe(true);
      if (suiteDataplane === 'sockmap') {
        expect(res.status).toBe(200); // a zero-length send carries no message: the program never runs
        expect(hostile.child?.pid).toBe(pid);
      } else {
        expect(res.status).toBe(502);
        expect(await res.json()).toMatchObject({ error: 'BATON_ERR_WORKER_CRASHED', message: expect.stringMatching(/'hostile' instance \d+ (exited|closed its data-plane socket)/) });
        await waitFor('the hostile instance to be replaced', () => hostile.state === 'ready' && hostile.child?.pid !== pid);
      }
      expect((await fetch(`${gw.url}/hostile`, { method: 'POST', body: 'x' })).status).toBe(200);
      await poolSettled(gw);
    });

    it('a worker killed with a descriptor the kernel already handed it answers 502 at once, not 504', async () => {
      const inst = instanceOf('stoppable');
      const pid = inst.child!.pid!;
      process.kill(pid, 'SIGSTOP'); // it cannot read: the descriptor waits in its socket
      const pending = fetch(`${gw.url}/stoppable`, { method: 'POST', body: 'bound' });
      await waitFor('the kernel to bind the request to the stopped instance', () =>
        [...Array(gw.slots.count).keys()].some((s) => gw.slots.owner(s) && gw.slots.holder(s) === inst.key),
      );
      process.kill(pid, 'SIGKILL');
      const res = await pending;
      expect(res.status).toBe(502);
      expect(await res.json()).toMatchObject({ error: 'BATON_ERR_WORKER_CRASHED', message: expect.stringMatching(/SIGKILL/) });
      await waitFor('replacement', () => inst.state === 'ready' && inst.child?.pid !== pid);
      await poolSettled(gw);
    });

    it('a stopped instance is killed after its request times out, and replaced', async () => {
      const inst = instanceOf('stoppable');
      const pid = inst.child!.pid!;
      process.kill(pid, 'SIGSTOP');
      const res = await fetch(`${gw.url}/stoppable`, { method: 'POST', body: 'stuck' });
      expect(res.status).toBe(504);
      await waitFor('the hung instance to be replaced', () => inst.state === 'ready' && inst.child?.pid !== pid);
      const again = await fetch(`${gw.url}/stoppable`, { method: 'POST', body: 'again' });
      expect(await again.json()).toMatchObject({ tag: 'again' });
      await poolSettled(gw);
    });

    it.each(['spin', 'hang'])('a handler that never returns (%s) gets 504; its instance is killed and replaced', async (what) => {
      const inst = instanceOf('hostile');
      const pid = inst.child!.pid!;
      const [res, statuses] = await Promise.all([
        fetch(`${gw.url}/hostile?do=${what}`, { method: 'POST', body: 'x' }),
        victimTraffic(new Promise((r) => setTimeout(r, 1000))),
      ]);
      expect(res.status).toBe(504);
      expect(statuses.every((s) => s === 200)).toBe(true);
      await waitFor('the hung instance to be replaced', () => inst.state === 'ready' && inst.child?.pid !== pid);
      expect((await fetch(`${gw.url}/hostile`, { method: 'POST', body: 'x' })).status).toBe(200);
      await poolSettled(gw);
    });

    it.skipIf(cgroupsUnavailable)('an instance over its memory limit is killed by the kernel: 502 MEMORY_LIMIT, replaced, nobody else hurt', async () => {
      const inst = instanceOf('hostile');
      const pid = inst.child!.pid!;
      expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toMatch(new RegExp(`memory:.*/baton-${process.pid}/k${inst.key}\n`));
      const attack = fetch(`${gw.url}/hostile?do=hog`, { method: 'POST', body: 'x' });
      const [res, statuses] = await Promise.all([attack, victimTraffic(attack)]);
      expect(res.status).toBe(502);
      expect(await res.json()).toMatchObject({ error: 'BATON_ERR_MEMORY_LIMIT', message: expect.stringMatching(/over its memory limit \(167772160 bytes\)/) });
      expect(statuses.every((s) => s === 200)).toBe(true);
      await waitFor('the instance to be replaced', () => inst.state === 'ready' && inst.child?.pid !== pid);
      expect((await fetch(`${gw.url}/hostile`, { method: 'POST', body: 'x' })).status).toBe(200);
      await poolSettled(gw);
    });

    it('ctx.status() with an informational status is refused with a clear error, not a hung client', async () => {
      const res = await fetch(`${gw.url}/hostile?do=status&code=101`, { method: 'POST', body: 'x' });
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({
        error: 'BATON_ERR_HANDLER',
        message: expect.stringMatching(/status 101.*200\.\.599/),
      });
      const ok = await fetch(`${gw.url}/hostile?do=status&code=201`, { method: 'POST', body: 'x' });
      expect(ok.status).toBe(201);
      await poolSettled(gw);
    });
  });
});
