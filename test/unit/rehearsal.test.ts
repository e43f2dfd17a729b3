// A spare rehearses one made-up request through its own request path (socket read, decode,
// run, encode, write) on a socket pair and a pool of its own: the answer comes back a success,
// for late and early binding, for a function at any step of its chain, and nothing is left
// open behind it (no fd: the socket pair and the scratch pool's memfd are closed).
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileChainFile } from '../../src/chain/index.ts';
import { Kind } from '../../src/descriptor/index.ts';
import type { WorkerConfig } from '../../src/worker/config.ts';
import { rehearse } from '../../src/worker/rehearsal.ts';
import { FIXTURES } from '../helpers/gateway.ts';

const d = compileChainFile(
  {
    functions: { a: { module: 'echo.ts' }, b: { module: 'echo.ts', binding: 'early', instances: 2 }, c: { module: 'echo.ts' } },
    routes: [{ method: 'POST', path: '/x', chain: ['a', ['b', 'c']] }],
  },
  FIXTURES,
);

function config(name: string): WorkerConfig {
  const fn = d.functions.find((f) => f.name === name)!;
  return {
    fnId: fn.id, key: fn.keys[0]!, gatewayPid: process.pid, timeoutMs: 5000, shed: false,
    deployment: { functions: d.functions, chains: d.chains, pool: d.pool }, slotBase: 0,
    live: d.functions.map((f) => f.keys.slice(0, f.instances)),
  };
}

const openFds = () => readdirSync('/proc/self/fd').length;

describe('rehearse', () => {
  it.each(['a', 'b', 'c'])('answers its made-up request through the whole path (%s) and leaves no fd open', async (name) => {
    await rehearse(config(name)); // the first one may open what Node keeps for good (its own fds)
    const before = openFds();
    expect(await rehearse(config(name))).toEqual({ kind: Kind.Reply, status: 200 });
    expect(openFds()).toBe(before);
  });
});
