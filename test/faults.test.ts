// Fault injection: kill -9 a random serving worker every ~200 ms while clients keep a 3-function
// chain busy. Every request must get exactly one answer — its result, or 502 when an instance
// holding it died — never a 504 (nothing may be lost), and afterwards every slot is free and
// every instance is back.
import { describe, expect, it } from 'vitest';
import type { Gateway } from '../src/gateway/index.ts';
import { dataplaneUnavailable } from './helpers/env.ts';
import { poolSettled, startGateway, waitFor } from './helpers/gateway.ts';

const KILL_EVERY_MS = 200;
const RUN_MS = 4000;

interface Answer {
  status: number;
  /** The error code of a failed request; for a 200, whether it carried its own tag. */
  error?: string;
  own?: boolean;
}

async function underFire(gw: Gateway): Promise<{ answers: Map<string, Answer[]>; kills: number }> {
  const answers = new Map<string, Answer[]>();
  let stop = false;
  let n = 0;
  const client = async () => {
    while (!stop) {
      const tag = `r${n++}`;
      const res = await fetch(`${gw.url}/chain?ms=2`, { method: 'POST', body: tag });
      const body = (await res.json()) as { tag?: string; error?: string };
      const answer = res.status === 200 ? { status: 200, own: body.tag === tag } : { status: res.status, error: body.error };
      answers.set(tag, [...(answers.get(tag) ?? []), answer]);
    }
  };
  let kills = 0;
  const killer = async () => {
    // a deterministic sequence of victims: the run does not depend on Math.random
    for (let i = 0; !stop; i++) {
      await new Promise((r) => setTimeout(r, KILL_EVERY_MS));
      const ready = gw.instances.all.filter((x) => x.state === 'ready' && x.child);
      const victim = ready[(i * 7) % Math.max(1, ready.length)];
      if (victim) {
        process.kill(victim.child!.pid!, 'SIGKILL');
        kills++;
      }
    }
  };
  const clients = [...Array(16)].map(client);
  const killing = killer();
  await new Promise((r) => setTimeout(r, RUN_MS));
  stop = true;
  await Promise.all([...clients, killing]);
  return { answers, kills };
}

describe.skipIf(dataplaneUnavailable)('fault injection', () => {
  it.each(['late', 'early'] as const)('%s binding: SIGKILL a random worker every 200 ms under load: every request answered once, 200 or 502', async (binding) => {
    const gw = await startGateway(
      {
        binding,
        pool: { slotSize: '8KiB', slots: 64 },
        functions: {
          a: { module: 'echo.ts', instances: 2 },
          b: { module: 'echo.ts', instances: 2 },
          c: { module: 'tagged.ts', instances: 2 },
        },
        routes: [{ method: 'POST', path: '/chain', chain: ['a', 'b', 'c'] }],
      },
      { timeoutMs: 15_000 },
    );
    try {
      const { answers, kills } = await underFire(gw);
      expect([...answers.values()].every((a) => a.length === 1)).toBe(true); // exactly one answer each
      const all = [...answers.values()].flat();
      expect(all.filter((a) => a.status === 200 && !a.own)).toEqual([]); // never another request's answer
      // 502 only: the instance holding it died, or (early binding, which routes to instances)
      // every instance of the next function was down at once; never 504: nothing was lost
      const failed = new Set(all.filter((a) => a.status !== 200).map((a) => `${a.status} ${a.error}`));
      const allowed = ['502 BATON_ERR_WORKER_CRASHED', ...(binding === 'early' ? ['502 BATON_ERR_DEAD_LETTER'] : [])];
      expect([...failed].filter((f) => !allowed.includes(f))).toEqual([]);
      expect(all.some((a) => a.status === 200)).toBe(true);
      expect(kills).toBeGreaterThanOrEqual(RUN_MS / KILL_EVERY_MS / 2);
      await poolSettled(gw);
      await waitFor('every instance back', () => gw.instances.all.filter((i) => i.state === 'ready').length === 6);
      expect(gw.inbox.stats.strayDescriptors).toBe(0);
      expect(gw.instances.all.some((i) => i.gaveUp)).toBe(false);
    } finally {
      await gw.stop();
    }
  });
});
