// Late binding's dispatcher without the kernel: idle tokens over ordinary memory (the same
// layout the kernel's mapped map has), descriptors captured instead of sent.
import fc from 'fast-check';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Dispatcher } from '../../src/binding/dispatcher.ts';
import { IdleTokens } from '../../src/binding/idle.ts';
import { compileChainFile } from '../../src/chain/index.ts';
import { blankDescriptor, fnAddress, IDLE_WORDS, Kind, MAX_FUNCTIONS, type Descriptor } from '../../src/descriptor/index.ts';
import type { BatonError } from '../../src/errors.ts';
import { FIXTURES } from '../helpers/gateway.ts';

fc.configureGlobal({ seed: Number(process.env.BATON_FUZZ_SEED ?? 20261123) });

function setup(fn: { instances?: number; concurrency?: number; queueDepth?: number } = {}) {
  const d = compileChainFile(
    { functions: { work: { module: 'echo.ts', instances: 2, maxInstances: 3, ...fn } }, routes: [{ method: 'POST', path: '/w', chain: ['work'] }] },
    FIXTURES,
  );
  const tokens = new IdleTokens(new ArrayBuffer(MAX_FUNCTIONS * IDLE_WORDS * 8));
  const sent: Descriptor[] = [];
  const failed: [number, BatonError][] = [];
  const answered = new Set<number>();
  const dispatcher = new Dispatcher(d.functions, tokens, {
    send: (x) => sent.push(x),
    fail: (reqId, e) => (failed.push([reqId, e]), answered.add(reqId)),
    pending: (reqId) => !answered.has(reqId),
  }, pino({ level: 'silent' }));
  const spec = d.functions[0]!;
  // each waiting descriptor holds its own slot (a request's nested calls wait as several)
  const call = (reqId: number, slot = reqId) => blankDescriptor({ key: fnAddress(0), kind: Kind.Call, reqId, slot, tArrive: 1 });
  return { dispatcher, tokens, sent, failed, answered, spec, call };
}

describe('dispatcher', () => {
  it('binds at once when a token came back between the kernel miss and now, else queues in arrival order', () => {
    const { dispatcher, sent, spec, call } = setup();
    dispatcher.activate(0, 0);
    dispatcher.onCall(call(1)); // instance 0's token was idle: bound to its key
    expect(sent.map((d) => [d.reqId, d.key])).toEqual([[1, spec.keys[0]]]);
    dispatcher.onCall(call(2));
    dispatcher.onCall(call(3));
    expect(dispatcher.queued(0)).toBe(2);
    dispatcher.onIdle(0, spec.keys[0]!); // finished 1: takes the oldest waiting
    expect(sent.map((d) => d.reqId)).toEqual([1, 2]);
    expect(sent[1]!.tBind).toBeGreaterThan(0);
  });

  it('skips requests answered while they waited, and withdraws on demand', () => {
    const { dispatcher, sent, answered, spec, call } = setup();
    dispatcher.activate(0, 0);
    dispatcher.onCall(call(1));
    for (const id of [2, 3, 4]) dispatcher.onCall(call(id));
    answered.add(2); // timed out meanwhile
    dispatcher.withdraw(3); // its client left
    dispatcher.onIdle(0, spec.keys[0]!);
    expect(sent.map((d) => d.reqId)).toEqual([1, 4]);
    expect(dispatcher.queued(0)).toBe(0);
  });

  it("queues a request's parallel calls separately and withdraws them together", () => {
    const { dispatcher, sent, spec, call } = setup();
    dispatcher.activate(0, 0);
    dispatcher.onCall(call(1)); // takes the only token
    dispatcher.onCall(call(7, 70));
    dispatcher.onCall(call(7, 71));
    dispatcher.onCall(call(8, 80));
    expect(dispatcher.queued(0)).toBe(3);
    dispatcher.withdraw(7);
    expect(dispatcher.queued(0)).toBe(1);
    dispatcher.onIdle(0, spec.keys[0]!);
    expect(sent.map((d) => [d.reqId, d.slot])).toEqual([[1, 1], [8, 80]]);
  });

  it('answers 503 when the queue is full', () => {
    const { dispatcher, failed, call } = setup({ queueDepth: 1 });
    dispatcher.onCall(call(1)); // no instance active: waits
    dispatcher.onCall(call(2));
    expect(failed.map(([id, e]) => [id, e.code])).toEqual([[2, 'BATON_ERR_QUEUE_FULL']]);
    expect(dispatcher.stats.rejectedFull).toBe(1);
  });

  it('drains an instance: no new work, resolves when what it holds is done', async () => {
    const { dispatcher, sent, spec, call } = setup({ concurrency: 2 });
    dispatcher.activate(0, 0);
    dispatcher.onCall(call(1)); // takes one of its two tokens
    let drained = false;
    const draining = dispatcher.drain(0, 0).then(() => (drained = true));
    dispatcher.onCall(call(2)); // must not go to the draining instance
    expect(sent).toHaveLength(1);
    expect(dispatcher.queued(0)).toBe(1);
    await Promise.resolve();
    expect(drained).toBe(false);
    dispatcher.onIdle(0, spec.keys[0]!);
    await draining;
    expect(dispatcher.idleTokens(0)).toBe(0);
  });

  it('keeps the invariant under any sequence of events: nothing waits while a token is idle', () => {
    const event = fc.oneof(
      fc.record({ t: fc.constant('call' as const) }),
      fc.record({ t: fc.constant('idle' as const), i: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ t: fc.constant('activate' as const), i: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ t: fc.constant('deactivate' as const), i: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ t: fc.constant('kernelTake' as const) }),
    );
    fc.assert(
      fc.property(fc.array(event, { maxLength: 200 }), (events) => {
        const { dispatcher, tokens, sent, spec, call } = setup({ concurrency: 2, instances: 3, queueDepth: 1000 });
        const active = new Set<number>();
        const busy = [0, 0, 0]; // descriptors each instance holds
        let next = 1;
        for (const e of events) {
          if (e.t === 'activate' && !active.has(e.i)) {
            active.add(e.i);
            busy[e.i] = 0;
            dispatcher.activate(0, e.i);
          } else if (e.t === 'deactivate' && active.has(e.i)) {
            active.delete(e.i);
            dispatcher.deactivate(0, e.i);
          } else if (e.t === 'kernelTake') {
            const i = tokens.take(0, spec.concurrency); // the kernel's fast path
            if (i >= 0) busy[i]!++;
          } else if (e.t === 'call') {
            const before = sent.length;
            dispatcher.onCall(call(next++));
            if (sent.length > before) busy[spec.keys.indexOf(sent.at(-1)!.key)]!++;
          } else if (e.t === 'idle' && active.has(e.i) && busy[e.i]! > 0) {
            busy[e.i]!--;
            const before = sent.length;
            dispatcher.onIdle(0, spec.keys[e.i]!);
            if (sent.length > before) busy[e.i]!++;
          }
          if (dispatcher.queued(0) > 0) expect(dispatcher.idleTokens(0)).toBe(0);
          for (const i of active) expect(busy[i]).toBeLessThanOrEqual(spec.concurrency);
        }
      }),
      { numRuns: 300 },
    );
  });
});
