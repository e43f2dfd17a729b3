// A handler's view of its request's deadline (ctx.remainingMs, ctx.willTake) through
// baton/testing's invoke(): what it says is left, when a run is shed, and what it refuses.
import { describe, expect, it } from 'vitest';
import { BatonError } from '../../src/errors.ts';
import { defineFunction } from '../../src/sdk/index.ts';
import { invoke } from '../../src/sdk/testing.ts';

/** Declares `?ms=` before doing it (as examples/heavy-tail/work.ts does), answers what was left. */
const costly = defineFunction((req, ctx) => ({ left: ctx.willTake(Number(req.query.get('ms'))) }));
const left = defineFunction((_req, ctx) => ({ left: ctx.remainingMs() }));

describe('ctx.remainingMs and ctx.willTake', () => {
  it('remainingMs counts down from the timeout; Infinity without one', async () => {
    const r = (await invoke(left, { timeoutMs: 1000 })).json<{ left: number }>();
    expect(r.left).toBeGreaterThan(0);
    expect(r.left).toBeLessThanOrEqual(1000);
    // JSON has no Infinity: the value is checked through the handler's own comparison
    const inf = defineFunction((_req, ctx) => ({ infinite: ctx.remainingMs() === Infinity }));
    expect((await invoke(inf)).json()).toEqual({ infinite: true });
  });

  it('a run that fits goes on and learns what is left', async () => {
    const r = await invoke(costly, { url: '/?ms=10', timeoutMs: 5000 });
    expect(r.status).toBe(200);
    expect(r.json<{ left: number }>().left).toBeGreaterThan(10);
  });

  it('a run that cannot fit is shed: BATON_ERR_SHED, status 503, naming the function and both figures', async () => {
    const err = await invoke(costly, { url: '/?ms=2000', timeoutMs: 500, name: 'work' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BatonError);
    expect(err).toMatchObject({ code: 'BATON_ERR_SHED', status: 503, message: expect.stringMatching(/'work' needs ~2000 ms for it; \d+ ms were left$/) });
  });

  it('where shedding is off the run goes on (to its 504 in a chain)', async () => {
    const r = await invoke(costly, { url: '/?ms=2000', timeoutMs: 500, shed: false });
    expect(r.status).toBe(200);
    expect(r.json<{ left: number }>().left).toBeLessThanOrEqual(500);
  });

  it('a called function sees the caller\'s deadline', async () => {
    const caller = defineFunction(async (_req, ctx) => (await ctx.call('callee')).json());
    const err = await invoke(caller, { timeoutMs: 300, calls: { callee: defineFunction((_r, ctx) => ctx.willTake(1000)) } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'BATON_ERR_CALL_FAILED', message: expect.stringContaining("which answered 503: the request could not meet its deadline any more: shed: function 'callee' needs ~1000 ms") });
  });

  it.each([[-1], [Number.NaN], ['100' as unknown as number], [undefined as unknown as number]])('willTake(%s) is a RangeError', async (ms) => {
    const bad = defineFunction((_req, ctx) => ctx.willTake(ms));
    await expect(invoke(bad, { timeoutMs: 1000, name: 'work' })).rejects.toThrow(/function 'work': ctx.willTake\(\) takes a number of milliseconds ≥ 0/);
  });
});
