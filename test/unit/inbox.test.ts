// What the gateway does with each frame the kernel delivers on key 0, without the kernel:
// frames are encoded by hand, custody moves as the kernel would move it.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Dispatcher, type KernelQueues } from '../../src/binding/dispatcher.ts';
import { IdleTokens } from '../../src/binding/idle.ts';
import { compileChainFile } from '../../src/chain/index.ts';
import {
  blankDescriptor, encode, fnAddress, GATEWAY_KEY, HOLDER_QUEUED, IDLE_STRIDE, Kind, MAX_FUNCTIONS, NO_SLOT, type Descriptor,
} from '../../src/descriptor/index.ts';
import { CUSTODY, SlotTable } from '../../src/gateway/custody.ts';
import { Inbox, MAX_REDELIVERIES, SPURIOUS_IDLE_PER_S } from '../../src/gateway/inbox.ts';
import { RequestTable, type Outcome } from '../../src/gateway/requests.ts';
import { Router } from '../../src/worker/router.ts';
import { FIXTURES } from '../helpers/gateway.ts';

function setup() {
  const d = compileChainFile(
    {
      functions: { late: { module: 'echo.ts', instances: 2 }, early: { module: 'echo.ts', binding: 'early', instances: 2 } },
      routes: [{ method: 'POST', path: '/l', chain: ['late'] }, { method: 'POST', path: '/e', chain: ['early'] }],
    },
    FIXTURES,
  );
  const memory = new ArrayBuffer(8 * CUSTODY.words * 4);
  const words = new Uint32Array(memory);
  const slots = new SlotTable(1, 8, memory);
  const requests = new RequestTable(slots, { abandoned: () => {} });
  const sent: Descriptor[] = [];
  /** How many descriptors each send (one write) carried. */
  const writes: number[] = [];
  const refused: [number, string][] = [];
  const log = pino({ level: 'silent' });
  const queue: Descriptor[] = []; // the late function's kernel queue
  const queues: KernelQueues = { create: () => {}, push: (_, x) => queue.push(x) > 0, pop: () => queue.shift() };
  const dispatcher = new Dispatcher(d.functions, new IdleTokens(new ArrayBuffer(MAX_FUNCTIONS * IDLE_STRIDE * 8)), queues, {
    send: (x) => sent.push(x),
    fail: (id, error) => requests.answer(id, { error }),
    park: (slot, fnId) => slots.park(slot, fnId),
    claim: (slot, gen) => slots.claim(slot, gen),
    classOf: (slot) => slots.classOf(slot),
  }, log);
  const router = new Router(d);
  const keyFn = new Map(d.functions.flatMap((f) => f.keys.map((k) => [k, f.id] as const)));
  const inbox = new Inbox({
    requests, slots, dispatcher, router,
    send: (...xs) => (writes.push(xs.length), sent.push(...xs)),
    functionOf: (key) => keyFn.get(key),
    mayCall: (fnId) => d.functions[fnId]!.name === 'late', // as if its chain file said calls:
    resetSlot: () => {},
    describe: (key) => `key ${key}`,
    refuse: (key, why) => refused.push([key, why]),
    warn: () => {},
  });
  const answers = new Map<number, Outcome>();
  const start = () => {
    const req = requests.create();
    requests.takeSlot(req);
    requests.start(req, 60_000, (o) => answers.set(req.id, o));
    return req;
  };
  /** The kernel delivered a descriptor of the request to the gateway. */
  const arrive = (fields: Partial<Descriptor> & Pick<Descriptor, 'kind' | 'reqId' | 'slot' | 'gen'>) => {
    words[fields.slot * CUSTODY.words + CUSTODY.holder] = GATEWAY_KEY;
    inbox.onFrame(encode(blankDescriptor({ key: GATEWAY_KEY, tArrive: 1, status: 200, ...fields })));
  };
  return { d, slots, requests, dispatcher, sent, writes, refused, inbox, answers, start, arrive, words };
}

describe('inbox (key 0)', () => {
  it("grants call slots from the request's domain, takes them back, refuses whoever may not ask, and says when a request is over", () => {
    const { d, requests, sent, writes, refused, start, arrive, slots, answers } = setup();
    const [late, early] = [d.functions[0]!.keys[0]!, d.functions[1]!.keys[0]!];
    const req = start();
    arrive({ kind: Kind.Alloc, reqId: req.id, slot: req.slot, gen: req.gen, length: 2, sender: late });
    expect(writes).toEqual([2]); // the whole ask answered in one write
    const grants = sent.splice(0);
    expect(grants.map((g) => [g.kind, g.key, g.status, g.reqId])).toEqual([[Kind.Grant, late, 0, req.id], [Kind.Grant, late, 0, req.id]]);
    expect(new Set([req.slot, ...grants.map((g) => g.slot)]).size).toBe(3);
    expect(slots.free()).toBe(8 - 3);
    // one comes back (given back by the caller): freed, and the request is not answered by it
    arrive({ kind: Kind.Error, reqId: req.id, slot: grants[0]!.slot, gen: grants[0]!.gen, status: 502, sender: late });
    expect(slots.free()).toBe(8 - 2);
    expect(answers.has(req.id)).toBe(false);
    // a function whose chain file lets it call nothing, and an ask for too many, cost the sender
    // its instance, and the request it named its answer (502)
    for (const [sender, length] of [[early, 1], [late, 65]] as const) {
      const other = start();
      arrive({ kind: Kind.Alloc, reqId: other.id, slot: other.slot, gen: other.gen, length, sender });
      expect(answers.get(other.id)).toMatchObject({ error: { code: 'BATON_ERR_BAD_DESCRIPTOR' } });
      requests.close(other.id);
    }
    expect(refused.map(([k]) => k)).toEqual([early, late]);
    // once the request is answered, an ask gets "over" (a slotless Grant, 410) and no slot
    requests.answer(req.id, { reply: blankDescriptor({ key: 0, kind: Kind.Reply, reqId: req.id, status: 200 }) });
    sent.length = 0;
    arrive({ kind: Kind.Alloc, reqId: req.id, slot: req.slot, gen: req.gen, length: 1, sender: late });
    expect(sent).toEqual([expect.objectContaining({ kind: Kind.Grant, key: late, status: 410, slot: NO_SLOT })]);
    requests.close(req.id); // the call slot still granted goes with the request
    expect(slots.free()).toBe(8);
  });

  it('answers a request with its reply, once; a late copy only frees the slot', () => {
    const { requests, inbox, answers, start, arrive, slots, words } = setup();
    const req = start();
    arrive({ kind: Kind.Reply, reqId: req.id, slot: req.slot, gen: req.gen, length: 3, sender: 1 });
    expect(answers.get(req.id)).toMatchObject({ reply: { length: 3 } });
    words[req.slot * CUSTODY.words + CUSTODY.holder] = 1; // say a worker still held a copy
    requests.close(req.id);
    expect(slots.quarantined).toBe(1);
    arrive({ kind: Kind.Reply, reqId: req.id, slot: req.slot, gen: req.gen, sender: 1 });
    expect(slots.quarantined).toBe(0);
    arrive({ kind: Kind.Reply, reqId: 999, slot: 7, gen: 1, sender: 1 });
    expect(inbox.stats.strayDescriptors).toBe(1);
  });

  it('turns a descriptor handed back unrun into 504 (deadline passed) or 502 (could not serve it)', () => {
    const { answers, start, arrive } = setup();
    const late = start();
    const bad = start();
    arrive({ kind: Kind.Error, status: 504, reqId: late.id, slot: late.slot, gen: late.gen, sender: 1 });
    arrive({ kind: Kind.Error, status: 502, reqId: bad.id, slot: bad.slot, gen: bad.gen, sender: 1 });
    expect(answers.get(late.id)).toMatchObject({ error: { code: 'BATON_ERR_TIMEOUT' } });
    expect(answers.get(bad.id)).toMatchObject({ error: { code: 'BATON_ERR_BAD_DESCRIPTOR' } });
  });

  it('queues a call the kernel could not place, for the dispatcher; ignores the kernel\'s acknowledgements', () => {
    const { d, dispatcher, start, arrive, inbox, sent, slots } = setup();
    const req = start();
    arrive({ kind: Kind.Call, key: fnAddress(0), fnId: 0, reqId: req.id, slot: req.slot, gen: req.gen, sender: GATEWAY_KEY });
    expect(dispatcher.queued(d.functions[0]!.id)).toBe(1);
    expect(slots.holder(req.slot)).toBe(HOLDER_QUEUED);
    inbox.onFrame(encode(blankDescriptor({ key: GATEWAY_KEY, kind: Kind.Ack, sender: GATEWAY_KEY, reqId: req.id, slot: req.slot })));
    expect([sent.length, inbox.stats.badDescriptors]).toEqual([0, 0]);
  });

  it('sends a dead letter again to another live instance, up to a limit, then answers 502', () => {
    const { d, sent, answers, start, arrive } = setup();
    const early = d.functions[1]!;
    const req = start();
    for (let i = 0; i <= MAX_REDELIVERIES; i++) {
      arrive({ kind: Kind.Call, key: early.keys[0]!, fnId: early.id, hop: 0, reqId: req.id, slot: req.slot, gen: req.gen, sender: GATEWAY_KEY });
    }
    expect(sent.map((x) => [x.key, x.sender])).toEqual(Array(MAX_REDELIVERIES).fill([early.keys[1], GATEWAY_KEY]));
    expect(answers.get(req.id)).toMatchObject({ error: { code: 'BATON_ERR_DEAD_LETTER' } });
  });

  it('kills a sender whose frame no function may send, and answers the request it named', () => {
    const { d, refused, answers, start, arrive, inbox } = setup();
    const req = start();
    // a reply with an informational status
    arrive({ kind: Kind.Reply, status: 101, reqId: req.id, slot: req.slot, gen: req.gen, sender: 2 });
    expect(refused).toEqual([[2, expect.stringMatching(/bad status 101/)]]);
    expect(answers.get(req.id)).toMatchObject({ error: { code: 'BATON_ERR_BAD_DESCRIPTOR' } });
    // an Idle notice for a function that is not the sender's, or not late-bound
    const early = d.functions[1]!;
    inbox.onFrame(encode(blankDescriptor({ key: GATEWAY_KEY, kind: Kind.Idle, fnId: 0, sender: early.keys[0]! })));
    inbox.onFrame(encode(blankDescriptor({ key: GATEWAY_KEY, kind: Kind.Idle, fnId: early.id, sender: early.keys[0]! })));
    expect(refused.slice(1).map(([k]) => k)).toEqual([early.keys[0], early.keys[0]]);
    // a call naming one function but addressed to another
    const other = start();
    inbox.onFrame(encode(blankDescriptor({ key: fnAddress(1), kind: Kind.Call, fnId: 0, reqId: other.id, slot: other.slot, gen: other.gen, sender: 1, tArrive: 1 })));
    expect(refused.at(-1)![0]).toBe(1);
    expect(inbox.stats.badDescriptors).toBe(4);
  });

  it(`lets an instance send up to ${SPURIOUS_IDLE_PER_S} Idle notices a second that no work explains, and kills it at the next`, () => {
    const { d, refused, inbox, dispatcher } = setup();
    const late = d.functions[0]!;
    dispatcher.activate(late.id, 0); // its token idle: every notice from it is unexplained
    const notice = encode(blankDescriptor({ key: GATEWAY_KEY, kind: Kind.Idle, fnId: late.id, sender: late.keys[0]! }));
    for (let i = 0; i < SPURIOUS_IDLE_PER_S; i++) inbox.onFrame(notice);
    expect(refused).toEqual([]);
    expect(dispatcher.stats.spurious).toBe(SPURIOUS_IDLE_PER_S);
    inbox.onFrame(notice);
    expect(refused).toEqual([[late.keys[0], `sent more than ${SPURIOUS_IDLE_PER_S} Idle notices within a second for work it was not given`]]);
    // another instance's notices are its own count
    dispatcher.activate(late.id, 1);
    inbox.onFrame(encode(blankDescriptor({ key: GATEWAY_KEY, kind: Kind.Idle, fnId: late.id, sender: late.keys[1]! })));
    expect(refused).toHaveLength(1);
  });
});
