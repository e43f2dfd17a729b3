// The whole data plane end to end: real HTTP in, real BPF redirects between real worker
// processes sharing the real memfd pool, and every bad input the gateway must survive.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blankDescriptor, encode, GATEWAY_KEY, Kind, nowUs } from '../src/descriptor/index.ts';
import type { Gateway } from '../src/gateway/index.ts';
import { dataplaneUnavailable } from './helpers/env.ts';
import { poolSettled, startGateway, waitFor } from './helpers/gateway.ts';
import { readBytes } from './helpers/sockets.ts';

describe.skipIf(dataplaneUnavailable)('gateway end to end', () => {
  let gw: Gateway;
  const post = (path: string, body?: Buffer | string, headers: Record<string, string> = {}) =>
    fetch(gw.url + path, { method: 'POST', body: body as BodyInit | undefined, headers: { 'content-type': 'application/octet-stream', ...headers } });

  beforeAll(async () => {
    gw = await startGateway(
      {
        pool: { slotSize: '1100KiB', slots: 6 },
        functions: {
          echo: { module: 'echo.ts' },
          xor: { module: 'xor.ts', instances: 2 },
          faulty: { module: 'faulty.ts', concurrency: 8 },
          other: { module: 'echo.ts' },
        },
        routes: [
          { method: 'POST', path: '/bytes', chain: ['echo', 'xor', 'xor'] },
          { method: 'POST', path: '/faulty', chain: ['faulty'] },
          { method: 'POST', path: '/branch', chain: ['faulty', ['echo', 'other']] },
          { method: 'GET', path: '/hello', chain: ['faulty'] },
        ],
      },
      { timeoutMs: 1500 },
    );
  });
  afterAll(() => gw?.stop());

  it.each([0, 1024, 1024 * 1024])('carries a %i-byte body through three functions byte-exact', async (size) => {
    const body = randomBytes(size);
    const res = await post('/bytes', body, { 'content-type': 'application/x-test', 'x-baton-timing': '1' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-test');
    expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
    const timing = res.headers.get('server-timing')!;
    expect(timing).toMatch(/h1-echo-wait;dur=[\d.]+, h1-echo;dur=[\d.]+, h2-xor-wait.*h3-xor;dur=.*total;dur=/);
    await poolSettled(gw);
  });

  it('serves concurrent requests each with its own slot', async () => {
    const bodies = [...Array(24)].map((_, i) => randomBytes(1000 + i));
    const results = await Promise.all(
      bodies.map(async (b) => {
        for (;;) {
          const res = await post('/bytes', b);
          if (res.status !== 503) return Buffer.from(await res.arrayBuffer()); // 6 slots: retry when exhausted
        }
      }),
    );
    results.forEach((r, i) => expect(r.equals(bodies[i]!)).toBe(true));
    await poolSettled(gw);
  });

  it('runs workers unprivileged and serves GET without a body', async () => {
    const res = await fetch(gw.url + '/hello');
    const body = (await res.json()) as { uid: number };
    const hello = gw.deployment.chains[gw.deployment.routes.find((r) => r.path === '/hello')!.chainId]!.steps[0]![0]!;
    if (process.getuid?.() === 0) expect(body.uid).toBe(gw.deployment.isolation.uidBase + hello); // its own uid
    else expect(body.uid).toBe(process.getuid?.());
  });

  it('answers HEAD on a GET route with the headers of the GET answer and no body', async () => {
    const get = await fetch(gw.url + '/hello');
    const length = Number(get.headers.get('content-length'));
    await get.arrayBuffer();
    const sock = net.connect(Number(new URL(gw.url).port), '127.0.0.1');
    sock.write('HEAD /hello HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n');
    let text = '';
    for await (const chunk of sock) text += chunk;
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(Number(/content-length: (\d+)/.exec(text)![1])).toBe(length);
    expect(text.endsWith('\r\n\r\n')).toBe(true); // nothing after the headers
    await poolSettled(gw);
  });

  it('tells a client that expects 100-continue to send its body, and carries the body through the chain', async () => {
    const sock = net.connect(Number(new URL(gw.url).port), '127.0.0.1');
    sock.write('POST /bytes HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n');
    let text = '';
    for await (const chunk of sock) {
      text += chunk;
      if (text === 'HTTP/1.1 100 Continue\r\n\r\n') sock.write('after'); // the body only after the go-ahead
    }
    expect(text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n.*\r\n\r\nafter$/s);
    await poolSettled(gw);
  });

  it('follows the branch a function picks at run time, and rejects a branch the chain lacks', async () => {
    const ok = await post('/branch?next=other', 'x', { 'x-baton-timing': '1' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('server-timing')).toMatch(/h2-other;/);
    // asked for only: a result without the header has none (errors always carry it)
    expect((await post('/branch?next=other', 'x')).headers.get('server-timing')).toBeNull();
    const bad = await post('/branch?next=xor', 'x');
    expect(bad.status).toBe(500);
    expect(await bad.json()).toMatchObject({ error: 'BATON_ERR_BAD_NEXT', message: expect.stringMatching(/one of: echo, other/) });
    await poolSettled(gw);
  });

  it('keeps status and scaling off the public listener, on the admin one', async () => {
    for (const path of ['/_baton/status', '/status', '/scale']) expect((await fetch(gw.url + path)).status).toBe(404);
    const status = (await (await fetch(`${gw.adminUrl}/status`)).json()) as { domains: { name: string; slots: number }[] };
    expect(status.domains).toContainEqual({ name: 'POST /bytes', slots: 6, free: 6 });
    expect(new URL(gw.adminUrl).hostname).toBe('127.0.0.1');
  });

  it('answers 404 for an unknown route', async () => {
    const res = await post('/nowhere', 'x');
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: 'BATON_ERR_ROUTE_NOT_FOUND' });
  });

  it('answers 413 for a body larger than a slot, declared or streamed', async () => {
    const big = randomBytes(gw.capacity + 1);
    const declared = await post('/bytes', big);
    expect(declared.status).toBe(413);
    expect(await declared.json()).toMatchObject({ error: 'BATON_ERR_BODY_TOO_LARGE' });
    // chunked: no content-length, the limit is hit while streaming into the slot
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < big.length; i += 65536) c.enqueue(big.subarray(i, i + 65536));
        c.close();
      },
    });
    const streamed = await fetch(gw.url + '/bytes', { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(streamed.status).toBe(413);
    await poolSettled(gw);
  });

  it('answers 400 to malformed HTTP and keeps serving', async () => {
    const sock = net.connect(new URL(gw.url).port as unknown as number, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write('GARBAGE / HTTP/9.9\r\n\r\n');
    const head = (await readBytes(sock, 12)).toString();
    expect(head).toBe('HTTP/1.1 400');
    sock.destroy();
    expect((await post('/bytes', 'still fine')).status).toBe(200);
  });

  it('answers 500 with the message when a handler throws; the worker keeps serving', async () => {
    const before = (await (await fetch(gw.url + '/hello')).json()) as { pid: number };
    const res = await post('/faulty?throw=1', 'x');
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ error: 'BATON_ERR_HANDLER', message: expect.stringMatching(/asked to throw/) });
    const after = (await (await fetch(gw.url + '/hello')).json()) as { pid: number };
    expect(after.pid).toBe(before.pid);
    await poolSettled(gw);
  });

  it('answers 503 when a domain\'s pool is exhausted, without hanging; other domains keep serving', async () => {
    const domain = gw.domainOf(gw.deployment.routes.find((r) => r.path === '/faulty')!.chainId);
    const perDomain = gw.deployment.pool.slotCount;
    const slow = [...Array(perDomain)].map(() => post('/faulty?sleep=600', 'x'));
    await waitFor('all its slots taken', () => gw.slots.free(domain) === 0);
    const res = await post('/faulty', 'one too many');
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'BATON_ERR_POOL_EXHAUSTED' });
    expect((await post('/bytes', 'another domain')).status).toBe(200); // its own pool
    expect((await Promise.all(slow)).map((r) => r.status)).toEqual(Array(perDomain).fill(200));
    await poolSettled(gw);
  });

  it('answers 504 on timeout, keeps the slot until the late result comes back, then frees it', async () => {
    const faulty = gw.instances.all.find((i) => gw.deployment.functions[i.fnId]!.name === 'faulty')!;
    const pid = faulty.child!.pid;
    const res = await post('/faulty?sleep=1900', 'x'); // 400 ms late: within the grace, not hung
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ error: 'BATON_ERR_TIMEOUT' });
    expect(gw.slots.quarantined).toBe(1); // the worker still holds it: not reusable yet
    await poolSettled(gw);
    expect(gw.inbox.stats.strayDescriptors).toBe(0);
    expect(faulty.child?.pid).toBe(pid); // late, but not killed
  });

  it('does not send a request whose client left in the turn it was dispatched (its slot is free again)', async () => {
    // the gateway's dispatches after the first of an event-loop turn go out together at its
    // end: a request closed before then must not go, or the kernel would refuse the gateway for
    // naming a slot it no longer holds, and every later request with it
    const open = () => {
      const req = gw.requests.create();
      gw.requests.takeSlot(req, gw.domainOf(0));
      return req;
    };
    const [first, second] = [open(), open()];
    const answered: number[] = [];
    for (const req of [first, second]) {
      gw.dispatch(req, 0, 0, nowUs(), { method: 'POST', url: '/bytes' }, false, undefined, () => answered.push(req.id));
    }
    gw.requests.close(second.id); // its client went away in the same turn
    await waitFor('the first to be answered', () => answered.length > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(answered).toEqual([first.id]);
    gw.requests.close(first.id); // as its response being written would
    const res = await post('/bytes', 'still served');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('still served');
    expect(gw.inbox.stats.badDescriptors).toBe(0);
    await poolSettled(gw);
  });

  it('answers 502 when a worker dies mid-request, replaces it, and serves again', async () => {
    const faulty = gw.instances.all.find((i) => gw.deployment.functions[i.fnId]!.name === 'faulty')!;
    const oldPid = faulty.child!.pid!;
    const pending = post('/faulty?sleep=5000', 'x');
    await waitFor('request to reach the worker', () => gw.requests.size === 1);
    process.kill(oldPid, 'SIGKILL');
    const res = await pending;
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ error: 'BATON_ERR_WORKER_CRASHED', message: expect.stringMatching(/SIGKILL/) });
    await waitFor('replacement instance', () => faulty.state === 'ready' && faulty.child?.pid !== oldPid);
    expect((await fetch(gw.url + '/hello')).status).toBe(200);
    await poolSettled(gw);
  });

  it('answers 502 when a worker exits by itself mid-request', async () => {
    const res = await post('/faulty?exit=1', 'x');
    expect(res.status).toBe(502);
    expect(res.headers.get('x-request-id')).toMatch(/^\d+$/);
    expect(res.headers.get('server-timing')).toMatch(/total;dur=/);
    const faulty = gw.instances.all.find((i) => gw.deployment.functions[i.fnId]!.name === 'faulty')!;
    await waitFor('replacement instance', () => faulty.state === 'ready');
    await poolSettled(gw);
  });

  describe('forged descriptors from a socket in the data plane', () => {
    const ROGUE = 4000;
    let rogue: { fd: number; peer?: net.Socket };

    beforeAll(() => {
      rogue = gw.dataplane.open(ROGUE);
    });
    afterAll(() => {
      fs.closeSync(rogue.fd);
      gw.dataplane.close(ROGUE);
    });

    it('are refused in the data plane and never reach the gateway; the request they target is answered normally', async () => {
      const before = { ...gw.inbox.stats };
      const pending = post('/faulty?sleep=300', 'x');
      await waitFor('request in flight', () => gw.requests.inFlight === 1);
      const [reqId] = [...Array(64).keys()].map((s) => gw.slots.owner(s)).filter(Boolean);
      // the kernel passes a refused write down the rogue's own connection, to the gateway's peer end
      const seen = rogue.peer ? readBytes(rogue.peer, 3 * 64) : undefined;
      fs.writeSync(
        rogue.fd,
        Buffer.concat([
          encode(blankDescriptor({ key: GATEWAY_KEY, kind: Kind.Reply, reqId: reqId!, gen: 1, status: 200, sender: ROGUE, tArrive: 1 })),
          encode(blankDescriptor({ key: GATEWAY_KEY, kind: Kind.Reply, reqId: reqId!, gen: 1, status: 200, sender: 1, tArrive: 1 })),
          Buffer.alloc(64, 0xee).fill(0, 0, 4),
        ]),
      );
      await seen;
      await waitFor('the rogue refused', () => gw.dataplane.counters(ROGUE).refused > 0);
      expect(gw.dataplane.refusal(ROGUE)).toMatch(/slot it does not hold/);
      const res = await pending;
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ pid: expect.any(Number) });
      expect(gw.inbox.stats).toEqual(before); // the gateway never saw them
      await poolSettled(gw);
    });
  });
});
