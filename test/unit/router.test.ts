// Where a descriptor goes next, from the compiled chain file alone.
import { describe, expect, it } from 'vitest';
import { callees, compileChainFile } from '../../src/chain/index.ts';
import { fnAddress, GATEWAY_FN, GATEWAY_KEY } from '../../src/descriptor/index.ts';
import { Router } from '../../src/worker/router.ts';
import { FIXTURES } from '../helpers/gateway.ts';

const d = compileChainFile(
  {
    functions: {
      a: { module: 'echo.ts' },
      b: { module: 'echo.ts', binding: 'early', instances: 3 },
      c: { module: 'echo.ts' },
    },
    routes: [
      { method: 'POST', path: '/x', chain: ['a', ['b', 'c'], 'a'], domain: 'shop' },
      { method: 'POST', path: '/y', chain: ['b'], domain: 'shop' },
    ],
  },
  FIXTURES,
);
const [a, b, c] = d.functions;

describe('router', () => {
  it('addresses late-bound functions as a whole and early-bound instances in turn', () => {
    const r = new Router(d);
    expect(r.first(0)).toEqual({ key: fnAddress(a!.id), fnId: a!.id, hop: 0 });
    expect([0, 1, 2, 3].map(() => r.first(1).key)).toEqual([b!.keys[0], b!.keys[1], b!.keys[2], b!.keys[0]]);
  });

  it('follows the branch a handler chose, and ends at the gateway', () => {
    const r = new Router(d);
    expect(r.after(0, 0, 'a', 'c')).toEqual({ key: fnAddress(c!.id), fnId: c!.id, hop: 1 });
    expect(r.after(0, 1, 'c')).toEqual({ key: fnAddress(a!.id), fnId: a!.id, hop: 2 });
    expect(r.after(0, 2, 'a')).toEqual({ key: GATEWAY_KEY, fnId: GATEWAY_FN, hop: 3 });
    expect(r.after(0, 0, 'a', undefined, true)).toMatchObject({ key: GATEWAY_KEY }); // ctx.end()
  });

  it('names what is wrong with a choice', () => {
    const r = new Router(d);
    expect(() => r.after(0, 0, 'a')).toThrow(/'a' must choose the next step with ctx\.next\(\): one of b, c/);
    expect(() => r.after(0, 0, 'a', 'a')).toThrow(/'a' chose 'a'; the next step is one of: b, c/);
    expect(() => r.after(0, 2, 'a', 'b')).toThrow(/'a' chose 'b' but is the last step of its chain/);
    expect(() => r.after(9, 0, 'a')).toThrow(/unknown chain 9/);
  });

  it('routes early binding around a dead instance, and says when none is left', () => {
    const r = new Router(d);
    r.setLive([[], [b!.keys[1]!], []]);
    expect(r.address(b!.id)).toBe(b!.keys[1]);
    expect(() => r.address(b!.id, b!.keys[1])).toThrow(/function 'b' has no running instance/);
  });
});

describe('allowed calls', () => {
  it('lets a function call exactly the functions of the step after its own, in any chain', () => {
    // /x: a → [b | c] → a ; /y: b
    expect(callees(d)).toEqual([[b!.id, c!.id], [a!.id], [a!.id]]);
  });
});

describe('security domains', () => {
  const twoDomains = compileChainFile(
    {
      functions: { a: { module: 'echo.ts' }, b: { module: 'echo.ts', instances: 2 } },
      routes: [
        { method: 'POST', path: '/x', chain: ['a', 'b'] },
        { method: 'POST', path: '/y', chain: ['b'] },
        { method: 'POST', path: '/z', chain: ['a'], domain: 'shared' },
        { method: 'GET', path: '/z', chain: ['b', 'a'], domain: 'shared' },
      ],
      pool: { slots: 4 },
    },
    FIXTURES,
  );

  it('gives each route its own domain unless routes name one, and a function its instances in each', () => {
    expect(twoDomains.domains).toEqual([
      { id: 0, name: 'POST /x', slotBase: 0 },
      { id: 1, name: 'POST /y', slotBase: 4 },
      { id: 2, name: 'shared', slotBase: 8 },
    ]);
    expect(twoDomains.functions.map((f) => [f.label, f.domain, f.keys.length])).toEqual([
      ['a@POST /x', 0, 1], ['b@POST /x', 0, 2], ['b@POST /y', 1, 2], ['a@shared', 2, 1], ['b@shared', 2, 2],
    ]);
    expect(twoDomains.chains.map((c) => [c.domain, c.steps])).toEqual([[0, [[0], [1]]], [1, [[2]]], [2, [[3]]], [2, [[4], [3]]]]);
    // no function may call into another domain
    expect(callees(twoDomains)).toEqual([[1], [], [], [], [3]]);
  });

  it('routes a branch choice to the function of the chain\'s own domain', () => {
    const r = new Router(twoDomains);
    expect(r.after(3, 0, 'b').fnId).toBe(3); // 'a' of domain shared, not of POST /x
  });
});
