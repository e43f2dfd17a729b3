import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { callees, callers, compileChainFile, loadChainFile, type ChainFileInput } from '../../src/chain/index.ts';
import { EXAMPLES, FIXTURES } from '../helpers/gateway.ts';

const good: ChainFileInput = {
  functions: { a: { module: 'echo.ts' }, b: { module: 'xor.ts', instances: 3 }, c: { module: 'faulty.ts' } },
  routes: [{ method: 'post', path: '/x', chain: ['a', ['b', 'c'], 'a'] }],
};

function problems(doc: unknown): string {
  try {
    compileChainFile(doc as ChainFileInput, FIXTURES);
  } catch (err) {
    expect((err as { code: string }).code).toBe('BATON_ERR_CHAIN_FILE');
    return (err as Error).message;
  }
  throw new Error('expected the chain file to be rejected');
}

describe('chain file', () => {
  it('compiles functions, keys, branches and defaults', () => {
    const d = compileChainFile(good, FIXTURES);
    expect(d.functions.map((f) => [f.name, f.keys])).toEqual([['a', [1]], ['b', [2, 3, 4]], ['c', [5]]]);
    expect(d.chains[0]!.steps).toEqual([[0], [1, 2], [0]]);
    expect(d.routes[0]).toEqual({ method: 'POST', path: '/x', chainId: 0, classRank: 1 });
    expect(d.pool).toEqual({ slotSize: 2 * 1024 * 1024, slotCount: 64 });
    expect(d.gateway).toMatchObject({ port: 8080, timeoutMs: 30000 });
  });

  it('loads the examples', () => {
    for (const f of ['text-pipeline/chain.yaml', 'branching/chain.yaml', 'heavy-tail/chain.yaml', 'social-network/chain.yaml']) {
      expect(loadChainFile(path.join(EXAMPLES, f)).functions.length).toBeGreaterThan(0);
    }
  });

  it('names the path of every problem', () => {
    expect(problems({ ...good, routes: [{ method: 'POST', path: '/x', chain: ['a', 'nope'] }] })).toMatch(
      /routes\.0\.chain\.1: unknown function 'nope' \(declared: a, b, c\)/,
    );
    expect(problems({ ...good, routes: [{ method: 'POST', path: '/x', chain: [['a', 'b']] }] })).toMatch(
      /routes\.0\.chain\.0: the first step must be one function/,
    );
    expect(problems({ ...good, functions: { a: { module: 'missing.ts' } } })).toMatch(/functions\.a\.module: no such file/);
    expect(problems({ ...good, functions: { Bad_Name: { module: 'echo.ts' } } })).toMatch(/functions\.Bad_Name: a function name/);
    expect(problems({ ...good, pool: { slotSize: 'lots' } })).toMatch(/pool\.slotSize: expected a byte size/);
    expect(problems({ ...good, pool: { slotSize: 1000 } })).toMatch(/pool\.slotSize: at least/);
    expect(problems({ ...good, routes: [{ method: 'BREW', path: '/x', chain: ['a'] }] })).toMatch(/routes\.0\.method/);
    expect(problems({ ...good, routes: [{ method: 'GET', path: 'x', chain: ['a'] }] })).toMatch(/routes\.0\.path: a path starts with/);
    expect(problems({ ...good, surprise: 1 })).toMatch(/surprise/);
    expect(problems({ ...good, functions: { a: { module: 'echo.ts', instances: -1 } } })).toMatch(/functions\.a\.instances/);
    // no instance to start with is late binding's (requests wait in the queue while one starts)
    expect(problems({ ...good, functions: { a: { module: 'echo.ts', instances: 0, binding: 'early' } } })).toMatch(/functions\.a: running no instance .* needs late binding/);
    expect(problems({ ...good, functions: { a: { module: 'echo.ts', minInstances: 0, binding: 'early' } } })).toMatch(/needs late binding/);
    expect(problems({ ...good, functions: { a: { module: 'echo.ts', warm: 3, maxInstances: 2 } } })).toMatch(/functions\.a\.warm: 3 is more than maxInstances \(2\)/);
    expect(problems({ ...good, gateway: { scaler: { policy: 'magic' } } })).toMatch(/gateway\.scaler\.policy/);
    expect(problems({ ...good, routes: [{ method: 'POST', path: '/x', chain: ['a'], class: 'urgent' }] })).toMatch(/routes\.0\.class: .*critical/);
    expect(problems({ ...good, gateway: { admission: { floor: 2 } } })).toMatch(/gateway\.admission\.floor/);
    expect(problems({ ...good, node: { memory: '64MiB' }, functions: { a: { module: 'echo.ts', instances: 2, memory: '64MiB' } } })).toMatch(
      /node\.memory: 67108864 bytes cannot hold the instances started with the gateway \(134217728 bytes/,
    );
    const dup = problems({ ...good, routes: [good.routes[0], good.routes[0]] });
    expect(dup).toMatch(/routes\.1: duplicate route POST \/x/);
  });

  it('calls: callees join the caller\'s domain, edges and returns follow them, and cycles are refused', () => {
    const d = compileChainFile(
      {
        functions: { top: { module: 'echo.ts', calls: ['mid', 'leaf'] }, mid: { module: 'echo.ts', calls: ['leaf'] }, leaf: { module: 'echo.ts' } },
        routes: [{ method: 'POST', path: '/x', chain: ['top'] }, { method: 'POST', path: '/y', chain: ['mid'] }],
      },
      FIXTURES,
    );
    // /x's domain runs top, mid and leaf (called only); /y's runs mid and leaf
    expect(d.functions.map((f) => `${f.name}@${f.domain}`)).toEqual(['top@0', 'mid@0', 'leaf@0', 'mid@1', 'leaf@1']);
    expect(d.functions.map((f) => f.calls)).toEqual([[1, 2], [2], [], [4], []]);
    expect(callees(d)).toEqual([[1, 2], [2], [], [4], []]);
    expect(callers(d)).toEqual([[], [0], [0, 1], [], [3]]);
    const fns = { a: { module: 'echo.ts', calls: ['b'] }, b: { module: 'echo.ts', calls: ['c'] }, c: { module: 'echo.ts', calls: ['a'] } };
    expect(problems({ functions: fns, routes: [{ method: 'GET', path: '/a', chain: ['a'] }] })).toMatch(/functions\.a\.calls: calls form a cycle: a → b → c → a/);
    expect(problems({ ...good, functions: { ...good.functions, a: { module: 'echo.ts', calls: ['a'] } } })).toMatch(/calls form a cycle: a → a/);
    expect(problems({ ...good, functions: { ...good.functions, a: { module: 'echo.ts', calls: ['ghost'] } } })).toMatch(/functions\.a\.calls\.0: unknown function 'ghost'/);
  });

  it('keeps the gateway\'s own paths, rejects paths its router would, and sizes the pool in words that help', () => {
    for (const path of ['/_baton', '/_baton/status', '/_baton/anything']) {
      expect(problems({ ...good, routes: [{ method: 'GET', path, chain: ['a'] }] })).toMatch(
        /routes\.0\.path: \/_baton\/ is reserved for the gateway's own routes/,
      );
    }
    expect(compileChainFile({ ...good, routes: [{ method: 'GET', path: '/_batonette', chain: ['a'] }] }, FIXTURES).routes).toHaveLength(1);
    expect(problems({ ...good, routes: [{ method: 'GET', path: '/a/*/b', chain: ['a'] }] })).toMatch(/routes\.0\.path: Wildcard must be the last/);
    expect(problems({ ...good, pool: { slotSize: '100GiB' } })).toMatch(/pool\.slotSize: 100 GiB is more than the largest slot, 1 GiB/);
    expect(problems({ ...good, pool: { slotSize: '512MiB', slots: 64 } })).toMatch(
      /pool: 64 slots × 512 MiB is 32 GiB; a pool must stay below 4 GiB: lower pool\.slots or pool\.slotSize/,
    );
    const d = compileChainFile({ ...good, gateway: { bodyTimeoutMs: 500 } }, FIXTURES);
    expect(d.gateway).toMatchObject({ bodyTimeoutMs: 500, sendTimeoutMs: 10_000, startTimeoutMs: 10_000 });
  });

  it('reports YAML syntax errors with their line, and unreadable files', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-chain-'));
    const file = path.join(dir, 'chain.yaml');
    writeFileSync(file, 'functions:\n  a: { module: x.ts\nroutes: []\n');
    expect(() => loadChainFile(file)).toThrow(/YAML syntax error at line \d/);
    expect(() => loadChainFile(path.join(dir, 'absent.yaml'))).toThrow(/cannot read/);
  });
});
