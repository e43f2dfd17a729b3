// Isolation (issue 8): a hostile function in one security domain tries, with ordinary Node APIs,
// every attack on another domain's requests and functions while a victim chain serves there.
// Every attack fails, the victim's answers stay byte-exact, and the forged descriptors are
// refused in the kernel and counted, and cost the attacker its instance.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../src/gateway/index.ts';
import { dataplaneUnavailable } from './helpers/env.ts';
import { poolSettled, startGateway, waitFor } from './helpers/gateway.ts';

describe.skipIf(dataplaneUnavailable)('isolation between security domains', () => {
  let gw: Gateway;
  const SECRET = `victim-secret-${randomBytes(8).toString('hex')}`;

  beforeAll(async () => {
    gw = await startGateway(
      {
        functions: {
          attacker: { module: 'attacker.ts' },
          hold: { module: 'hold.ts', instances: 2 },
          xor: { module: 'xor.ts' },
        },
        routes: [
          { method: 'POST', path: '/attack', chain: ['attacker'], domain: 'evil' },
          { method: 'POST', path: '/victim', chain: ['hold', 'xor', 'xor'], domain: 'good' },
        ],
        pool: { slotSize: '64KiB', slots: 16 },
      },
      { timeoutMs: 5000 },
    );
  });
  afterAll(() => gw?.stop());

  /** Victim requests carrying the secret, held in the victim's pool for a while; each answer
   *  must be its own body, byte for byte. */
  async function victims(n: number): Promise<boolean[]> {
    return Promise.all(
      [...Array(n)].map(async () => {
        const body = Buffer.concat([Buffer.from(SECRET), randomBytes(2000)]);
        const res = await fetch(`${gw.url}/victim?ms=400`, { method: 'POST', body });
        return res.status === 200 && Buffer.from(await res.arrayBuffer()).equals(body);
      }),
    );
  }

  it('cannot read, overwrite, signal, spy on or tamper with another domain', async () => {
    const running = victims(4);
    await waitFor('victim requests in their pool', () => gw.slots.free(1) <= 12);
    const reversed = [...SECRET].reverse().join('');
    const res = await fetch(`${gw.url}/attack?attack=probe&secret=${reversed}`, { method: 'POST', body: 'x' });
    const report = (await res.json()) as Record<string, unknown>;
    expect(report).toMatchObject({
      sawSecret: false, // the victim's pool is another memfd, never mapped here
      overwrote: true, // its own pool only: the victims below are intact
      signalled: [], // other functions' processes have other uids
      readEnviron: [],
      openedMem: [],
      openedPoolFds: [], // not even through /proc/<gateway>/fd
      gatewayEnviron: false,
      envKeys: ['BATON_ADDON', 'BATON_WORKER'], // nothing of the gateway's environment
      rewroteCode: false, // the bundles are the gateway's, read-only to workers
      addedCode: false,
    });
    expect(await running).toEqual([true, true, true, true]);
    await poolSettled(gw);
  });

  it('cannot reach the admin listener', async () => {
    const res = await fetch(`${gw.url}/attack?attack=admin&url=${encodeURIComponent(gw.adminUrl)}`, { method: 'POST', body: 'x' });
    expect(await res.json()).toEqual({ answered: process.getuid?.() === 0 ? 403 : 200 }); // root: functions have their own uids
    expect((await fetch(`${gw.adminUrl}/status`)).status).toBe(200); // the operator still can
  });

  it('forged replies for other requests are refused in the kernel, counted, and the forger killed', async () => {
    const attacker = gw.instances.all.find((i) => gw.deployment.functions[i.fnId]!.name === 'attacker')!;
    const pid = attacker.child!.pid;
    const before = gw.dataplane.counters(attacker.key).refused;
    const running = victims(4);
    await waitFor('victim requests in flight', () => gw.slots.free(1) <= 12);
    const res = await fetch(`${gw.url}/attack?attack=forge`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ error: 'BATON_ERR_BAD_DESCRIPTOR', message: expect.stringMatching(/slot it does not hold/) });
    expect(gw.dataplane.counters(attacker.key).refused).toBe(before + 1);
    expect(await running).toEqual([true, true, true, true]);
    expect(gw.inbox.stats.badDescriptors).toBe(0); // none of it reached the gateway
    await waitFor('the attacker to be replaced', () => attacker.state === 'ready' && attacker.child?.pid !== pid);
    await poolSettled(gw);
  });
});
