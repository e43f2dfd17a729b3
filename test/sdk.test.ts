// The SDK's ctx semantics and a function's logs, through a real gateway: every way of writing
// a result gives the last write at its own length; each misuse gets its own error naming the
// function and the fix; a thrown stack and console output reach the gateway's log labelled with
// function, instance and request.
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../src/gateway/index.ts';
import { dataplaneUnavailable } from './helpers/env.ts';
import { poolSettled, startGateway, waitFor } from './helpers/gateway.ts';

interface LogLine {
  level: number;
  msg: string;
  fn?: string;
  key?: number;
  reqId?: number;
  stream?: string;
}

describe.skipIf(dataplaneUnavailable)('SDK: ctx semantics and function logs', () => {
  let gw: Gateway;
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  const call = async (which: string, body = 'a long input body, longer than most of the outputs written here') => {
    const res = await fetch(`${gw.url}/cases?case=${which}`, { method: 'POST', body });
    return { status: res.status, type: res.headers.get('content-type'), id: Number(res.headers.get('x-request-id')), text: await res.text() };
  };

  beforeAll(async () => {
    gw = await startGateway(
      { pool: { slotSize: '64KiB', slots: 8 }, functions: { cases: { module: 'ctx-cases.ts' } }, routes: [{ method: 'POST', path: '/cases', chain: ['cases'] }] },
      { logger: pino({ level: 'info' }, sink) },
    );
  });
  afterAll(() => gw?.stop());

  it.each([
    ['write-no-return', '{"n":1}', 'application/json'],
    ['return-end', '{"ended":true}', 'application/json'],
    ['return-ctx', 'via ctx', 'text/plain; charset=utf-8'],
    ['write-twice', 'second', 'text/plain; charset=utf-8'],
    ['return-after-write', '{"returned":true}', 'text/plain; charset=utf-8'],
  ])('%s answers the last write at its own length', async (which, body, type) => {
    for (const input of ['', 'short', 'x'.repeat(4000)]) {
      const res = await call(which, input);
      expect(res).toMatchObject({ status: 200, text: body, type });
    }
    await poolSettled(gw);
  });

  it.each([
    ['read-after-write', 'BATON_ERR_INPUT_OVERWRITTEN', /'cases' called req.text\(\) after ctx.json\(\) wrote .* read the input first/],
    ['return-function', 'BATON_ERR_BAD_RESULT', /'cases' returned a function; return ctx/],
    ['too-large', 'BATON_ERR_RESPONSE_TOO_LARGE', /'cases': ctx.text\(\) wrote (\d+) bytes but a slot's payload holds (?!\1)\d+; .*pool.slotSize/],
  ])('%s: 500 %s naming the function and the fix', async (which, code, message) => {
    const res = await call(which);
    expect(res.status).toBe(500);
    expect(JSON.parse(res.text)).toMatchObject({ error: code, message: expect.stringMatching(message) });
    await poolSettled(gw);
  });

  it('a content type that would end its header line is not taken: no header of the function\'s own reaches the client', async () => {
    const res = await fetch(`${gw.url}/cases?case=split-type`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(200);
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(await res.text()).toBe('split');
  });

  it('a write after the handler returned is refused (BATON_ERR_CTX_CLOSED) and the answer stands', async () => {
    const res = await call('late-write');
    expect(res).toMatchObject({ status: 200, text: 'on time' });
    await waitFor('the late write to be logged', () => logs.some((l) => l.msg === 'late write refused: BATON_ERR_CTX_CLOSED'));
    // written from a timer after its handler returned, while no other handler runs: the log
    // names the function and stream but no request (see "Logs" in the README)
    const line = logs.find((l) => l.msg.startsWith('late write refused'))!;
    expect(line).toMatchObject({ fn: 'cases', stream: 'stdout' });
    expect(line.reqId).toBeUndefined();
  });

  it("a thrown error's stack reaches the log with the request id, pointing at the function's source", async () => {
    const res = await call('throw');
    expect(res.status).toBe(500);
    expect(JSON.parse(res.text)).toMatchObject({ error: 'BATON_ERR_HANDLER', requestId: res.id });
    expect(res.text).not.toMatch(/ctx-cases/); // the stack is for the operator, not the client
    await waitFor('the stack in the log', () => logs.some((l) => l.reqId === res.id && l.level === 50));
    const line = logs.find((l) => l.reqId === res.id && l.level === 50)!;
    expect(line).toMatchObject({ fn: 'cases' });
    expect(line.msg).toMatch(/thrown on purpose\n\s+at .*ctx-cases\.ts:\d+:\d+/);
  });

  it('console output is logged with function, instance, stream and request id', async () => {
    const res = await call('log');
    expect(res.text).toBe('logged');
    await waitFor('both lines', () => logs.filter((l) => l.reqId === res.id && l.stream).length === 2);
    const key = gw.instances.of(0)[0]!.key;
    expect(logs.filter((l) => l.reqId === res.id && l.stream)).toEqual([
      expect.objectContaining({ fn: 'cases', key, stream: 'stdout', msg: 'hello from the handler', level: 30 }),
      expect.objectContaining({ fn: 'cases', key, stream: 'stderr', msg: 'and from stderr', level: 30 }),
    ]);
  });
});
