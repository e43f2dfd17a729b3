// OpenTelemetry spans from a real gateway: one SERVER span per request under the client's W3C
// traceparent, one span per hop inside it in chain order, errors marked; exported in-memory, and
// through the OTLP/HTTP exporter to a receiver on this machine when the chain file names one.
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../src/gateway/index.ts';
import { dataplaneUnavailable } from './helpers/env.ts';
import { poolSettled, startGateway, waitFor } from './helpers/gateway.ts';

const CHAIN = {
  functions: { a: { module: 'echo.ts' }, b: { module: 'xor.ts' }, bad: { module: 'faulty.ts' } },
  routes: [
    { method: 'POST', path: '/abb', chain: ['a', 'b', 'b'] },
    { method: 'POST', path: '/bad', chain: ['a', 'bad'] },
  ],
};
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';
const ms = (t: [number, number]) => t[0] * 1e3 + t[1] / 1e6;

describe.skipIf(dataplaneUnavailable)('tracing (OpenTelemetry)', () => {
  let gw: Gateway;
  const exporter = new InMemorySpanExporter();
  beforeAll(async () => {
    gw = await startGateway(CHAIN, { traceExporter: exporter });
  });
  afterAll(() => gw?.stop());

  /** The spans of the trace whose root is the request `id`'s. */
  const spansOf = (id: string): { root: ReadableSpan; hops: ReadableSpan[] } => {
    const spans = exporter.getFinishedSpans();
    const root = spans.find((s) => s.attributes['baton.request_id'] === Number(id))!;
    const hops = spans.filter((s) => s.parentSpanContext?.spanId === root.spanContext().spanId);
    return { root, hops: hops.sort((x, y) => ms(x.startTime) - ms(y.startTime)) };
  };

  it('a request is a SERVER span under the client\'s traceparent, its hops spans inside it, in chain order', async () => {
    const res = await fetch(`${gw.url}/abb?x=1`, { method: 'POST', body: 'traced', headers: { traceparent: `00-${TRACE_ID}-${PARENT}-01` } });
    expect(await res.text()).toBe('traced');
    const { root, hops } = spansOf(res.headers.get('x-request-id')!);
    expect(root.kind).toBe(SpanKind.SERVER);
    expect(root.name).toBe('POST /abb');
    expect(root.spanContext().traceId).toBe(TRACE_ID);
    expect(root.parentSpanContext?.spanId).toBe(PARENT);
    expect(root.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.route': '/abb', 'url.path': '/abb', 'http.response.status_code': 200 });
    expect(root.resource.attributes['service.name']).toBe('baton');
    expect(hops.map((h) => [h.name, h.attributes['baton.function']])).toEqual([['hop a', 'a'], ['hop b', 'b'], ['hop b', 'b']]);
    for (const h of hops) {
      expect(h.spanContext().traceId).toBe(TRACE_ID);
      expect(ms(h.startTime)).toBeGreaterThanOrEqual(ms(root.startTime));
      expect(ms(h.endTime)).toBeLessThanOrEqual(ms(root.endTime));
      expect(h.attributes['baton.run_us']).toBeGreaterThanOrEqual(0);
      expect(h.events.map((e) => e.name)).toEqual(['handler start']);
    }
    // the hops follow one another: each starts when the one before sent it on
    for (let i = 1; i < hops.length; i++) expect(ms(hops[i]!.startTime)).toBeGreaterThanOrEqual(ms(hops[i - 1]!.startTime));
    await poolSettled(gw);
  });

  it('without a traceparent a request starts its own trace; a failed one is an ERROR span with its code', async () => {
    const ok = await fetch(`${gw.url}/abb`, { method: 'POST', body: 'x' });
    await ok.arrayBuffer();
    const fresh = spansOf(ok.headers.get('x-request-id')!).root;
    expect(fresh.parentSpanContext).toBeUndefined();
    expect(fresh.spanContext().traceId).not.toBe(TRACE_ID);

    const bad = await fetch(`${gw.url}/bad?throw=1`, { method: 'POST', body: 'x' });
    expect(bad.status).toBe(500);
    const { requestId } = (await bad.json()) as { requestId: number };
    const failed = spansOf(String(requestId));
    expect(failed.root.status).toEqual({ code: SpanStatusCode.ERROR, message: 'BATON_ERR_HANDLER' });
    expect(failed.root.attributes).toMatchObject({ 'http.response.status_code': 500, 'error.type': 'BATON_ERR_HANDLER' });
    expect(failed.hops.map((h) => h.name)).toEqual(['hop a', 'hop bad']);
    await poolSettled(gw);
  });

  it('a malformed traceparent is ignored: the request starts its own trace', async () => {
    const res = await fetch(`${gw.url}/abb`, { method: 'POST', body: 'x', headers: { traceparent: 'not-a-trace-context' } });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(spansOf(res.headers.get('x-request-id')!).root.parentSpanContext).toBeUndefined();
  });
});

describe.skipIf(dataplaneUnavailable)('tracing through OTLP/HTTP', () => {
  it('gateway.tracing.otlp sends the spans to the receiver named there', async () => {
    const bodies: string[] = [];
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        bodies.push(`${req.method} ${req.url} ${req.headers['content-type']} ${body}`);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`;
    const gw = await startGateway({ ...CHAIN, gateway: { tracing: { otlp: url, serviceName: 'baton-test' } } });
    try {
      const res = await fetch(`${gw.url}/abb`, { method: 'POST', body: 'x', headers: { traceparent: `00-${TRACE_ID}-${PARENT}-01` } });
      await res.arrayBuffer();
      await gw.tracing!.flush();
      await waitFor('the export', () => bodies.length > 0);
    } finally {
      await gw.stop();
      receiver.close();
    }
    const sent = bodies.join('\n');
    expect(sent).toMatch(/^POST \/v1\/traces application\/json /);
    expect(sent).toContain(TRACE_ID);
    expect(sent).toContain('baton-test');
    expect(sent).toContain('POST /abb');
  });
});
