// Start-up failures are typed errors raised before anything is left running: a module that
// never finishes loading, a port already taken.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { descendants } from '../src/bench/procs.ts';
import { dataplaneUnavailable } from './helpers/env.ts';
import { startGateway, waitFor } from './helpers/gateway.ts';
import { batonMapIds, poolHolders } from './helpers/system.ts';

const chain = (fns: Record<string, { module: string }>) => ({
  functions: fns,
  routes: [{ method: 'POST', path: '/x', chain: Object.keys(fns) }],
});

describe.skipIf(dataplaneUnavailable)('start-up', () => {
  it('a module that loops at import fails the start with the module named, within the start timeout', async () => {
    const maps = batonMapIds().length;
    const t0 = Date.now();
    const err = await startGateway(chain({ ok: { module: 'echo.ts' }, stuck: { module: 'spin-at-import.ts' } }), { startTimeoutMs: 1500 }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      code: 'BATON_ERR_START_TIMEOUT',
      message: expect.stringMatching(/function 'stuck' \(.*spin-at-import\.ts\) instance \d+ was killed: not ready within 1500 ms: does the module loop/),
    });
    expect(Date.now() - t0).toBeLessThan(10_000);
    // nothing stays behind: no worker, no program, no pool
    expect(descendants(process.pid).filter((p) => poolHolders().includes(p))).toEqual([]);
    await waitFor('the sockmap to be freed', () => batonMapIds().length === maps);
  });

  it('a port in use is named, with its process, before anything starts', async () => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as net.AddressInfo).port;
    const maps = batonMapIds();
    try {
      const err = await startGateway(chain({ ok: { module: 'echo.ts' } }), { port }).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'BATON_ERR_PORT_IN_USE',
        message: expect.stringContaining(`127.0.0.1:${port} is taken by pid ${process.pid} (node): stop it, or choose another port`),
      });
      expect(batonMapIds()).toEqual(maps); // no program was ever loaded
    } finally {
      busy.close();
    }
  });
});
