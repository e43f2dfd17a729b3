// Each request's one answer and its slot's custody, without the kernel: the custody entries
// live in ordinary memory of the kernel map's layout, and the test moves holders as the
// kernel would when it delivers a descriptor.
import { describe, expect, it } from 'vitest';
import { GATEWAY_KEY } from '../../src/descriptor/index.ts';
import { batonError } from '../../src/errors.ts';
import { CUSTODY, SlotTable } from '../../src/gateway/custody.ts';
import { RequestTable, type Outcome, type Request } from '../../src/gateway/requests.ts';

function setup(slots = 4) {
  const memory = new ArrayBuffer(slots * CUSTODY.words * 4);
  const words = new Uint32Array(memory);
  const table = new SlotTable(1, slots, memory);
  const abandoned: number[] = [];
  const requests = new RequestTable(table, { abandoned: (r: Request) => abandoned.push(r.id) });
  /** What the kernel does when it delivers a descriptor of `slot` to `key`. */
  const deliver = (slot: number, key: number) => (words[slot * CUSTODY.words + CUSTODY.holder] = key);
  const answers = new Map<number, Outcome[]>();
  const start = (timeoutMs = 60_000) => {
    const req = requests.create();
    requests.takeSlot(req);
    requests.start(req, timeoutMs, (o) => answers.set(req.id, [...(answers.get(req.id) ?? []), o]));
    return req;
  };
  return { table, words, requests, deliver, answers, abandoned, start };
}

describe('slot custody', () => {
  it('hands out each slot once, tells the kernel who owns it, and runs out', () => {
    const { table, words } = setup(2);
    const x = table.acquire(7)!;
    const y = table.acquire(8)!;
    expect(x.slot).not.toBe(y.slot);
    expect(table.acquire(9)).toBeUndefined();
    expect([...words.subarray(x.slot * 4, x.slot * 4 + 4)]).toEqual([7, 0, x.gen, GATEWAY_KEY]); // req, queue, gen, holder
  });

  it('frees a slot the gateway holds at once, and keeps one an instance holds until it comes back', () => {
    const { table, deliver } = setup();
    const { slot, gen } = table.acquire(7)!;
    deliver(slot, 5);
    expect(table.release(slot, 7)).toBe(false);
    expect([table.free(), table.quarantined]).toEqual([3, 1]);
    expect(table.returned(slot, gen + 1)).toBe(false); // an older allocation's descriptor
    deliver(slot, GATEWAY_KEY);
    expect(table.returned(slot, gen)).toBe(true);
    expect([table.free(), table.quarantined]).toEqual([4, 0]);
    const again = table.acquire(9)!;
    expect(again.gen).not.toBe(gen); // a new generation every time
  });

  it('takes everything back from an instance that exited', () => {
    const { table, deliver } = setup();
    const a = table.acquire(1)!;
    const b = table.acquire(2)!;
    const c = table.acquire(3)!;
    deliver(a.slot, 5);
    deliver(b.slot, 5);
    deliver(c.slot, 6);
    table.release(b.slot, 2); // its request is done: kept for the instance
    expect(table.takeBackFrom(5)).toEqual([1]); // request 1 was in flight there
    expect(table.holder(a.slot)).toBe(GATEWAY_KEY);
    expect(table.quarantined).toBe(0); // b's slot was freed
    expect(table.holder(c.slot)).toBe(6);
  });

  it('reports slots an instance keeps past a grace, and frees those that came back', async () => {
    const { table, deliver } = setup();
    const a = table.acquire(1)!;
    const b = table.acquire(2)!;
    deliver(a.slot, 5);
    deliver(b.slot, 6);
    table.release(a.slot, 1);
    table.release(b.slot, 2);
    deliver(b.slot, GATEWAY_KEY); // came back, not read yet
    await new Promise((r) => setTimeout(r, 30));
    expect(table.sweep(20)).toEqual([{ slot: a.slot, reqId: 1, holder: 5, ms: expect.any(Number) }]);
    expect(table.quarantined).toBe(1);
  });
});

describe('request table', () => {
  it('answers a request exactly once, and frees its slot when the client is done', () => {
    const { requests, answers, table, start } = setup();
    const req = start();
    expect(requests.pending(req.id)).toBe(true);
    expect(requests.answer(req.id, { error: batonError('BATON_ERR_DEAD_LETTER') })).toBe(true);
    expect(requests.answer(req.id, { error: batonError('BATON_ERR_TIMEOUT') })).toBe(false);
    expect(answers.get(req.id)).toHaveLength(1);
    expect(requests.inFlight).toBe(0);
    expect(table.free()).toBe(3); // the response is still being written from it
    requests.close(req.id);
    expect([table.free(), requests.size]).toEqual([4, 0]);
  });

  it('times a request out with a 504 and takes it out of where it waits', async () => {
    const { answers, abandoned, start } = setup();
    const req = start(10);
    await new Promise((r) => setTimeout(r, 30));
    expect(answers.get(req.id)).toEqual([{ error: expect.objectContaining({ code: 'BATON_ERR_TIMEOUT' }) }]);
    expect(abandoned).toEqual([req.id]);
  });

  it('times many requests out in order with one timer, none early, none answered twice', async () => {
    const { requests, answers, start } = setup(2048);
    const all = [...Array(1500)].map(() => start(40)); // past the deadline ring's first size
    const answered = all.filter((_, i) => i % 3 === 0);
    for (const r of answered) requests.answer(r.id, { error: batonError('BATON_ERR_HANDLER') });
    for (const r of answered) requests.close(r.id);
    // a new request may draw an id an answered one had: its deadline is its own
    const later = start(200);
    await new Promise((r) => setTimeout(r, 80));
    const code = (o?: Outcome) => (o && 'error' in o ? o.error.code : undefined);
    const timedOut = all.filter((r) => code(answers.get(r.id)?.[0]) === 'BATON_ERR_TIMEOUT');
    expect(timedOut).toHaveLength(1000);
    for (const r of all) expect(answers.get(r.id)).toHaveLength(1);
    expect(answers.get(later.id)).toBeUndefined(); // not yet: 200 ms
    await new Promise((r) => setTimeout(r, 160));
    expect(answers.get(later.id)?.[0]).toMatchObject({ error: { code: 'BATON_ERR_TIMEOUT' } });
  });

  it('forgets a request whose client left, without answering it', () => {
    const { requests, answers, abandoned, start } = setup();
    const req = start();
    expect(requests.close(req.id)).toBe(true);
    expect(answers.get(req.id)).toBeUndefined();
    expect(abandoned).toEqual([req.id]);
    expect(requests.answer(req.id, { error: batonError('BATON_ERR_TIMEOUT') })).toBe(false);
  });

  it('answers the requests an exited instance held, and only those', () => {
    const { requests, answers, deliver, start } = setup();
    const held = start();
    const elsewhere = start();
    deliver(held.slot, 5);
    deliver(elsewhere.slot, 6);
    requests.instanceGone(5, () => batonError('BATON_ERR_WORKER_CRASHED', 'killed by SIGKILL'));
    expect(answers.get(held.id)?.[0]).toMatchObject({ error: { code: 'BATON_ERR_WORKER_CRASHED' } });
    expect(answers.get(elsewhere.id)).toBeUndefined();
  });

  it('runs out of slots with a typed 503, and never reuses the id of an open request', () => {
    const { requests } = setup(1);
    const a = requests.create();
    requests.takeSlot(a);
    expect(() => requests.takeSlot(requests.create())).toThrow(expect.objectContaining({ code: 'BATON_ERR_POOL_EXHAUSTED' }));
    expect(requests.create().id).not.toBe(a.id);
  });
});
