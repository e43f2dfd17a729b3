// Late binding without the kernel: idle tokens and slot custody over ordinary memory (the same
// layouts the kernel's mapped maps have), the kernel queue as an array, and the SK_MSG
// program's two binding steps modelled one program run at a time as bpf/baton.bpf.c does them
// (bind: an idle token, else queue and look again; an Idle notice: the oldest live waiting
// descriptor, else return a token and look again). Descriptors are captured instead of sent.
import fc from 'fast-check';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Dispatcher, type KernelQueues } from '../../src/binding/dispatcher.ts';
import { IdleTokens } from '../../src/binding/idle.ts';
import { compileChainFile } from '../../src/chain/index.ts';
import { blankDescriptor, fnAddress, HOLDER_QUEUED, IDLE_STRIDE, Kind, MAX_FUNCTIONS, type Descriptor } from '../../src/descriptor/index.ts';
import type { BatonError } from '../../src/errors.ts';
import { CUSTODY, SlotTable } from '../../src/gateway/custody.ts';
import { FIXTURES } from '../helpers/gateway.ts';

fc.configureGlobal({ seed: Number(process.env.BATON_FUZZ_SEED ?? 20261123) });

const SLOTS = 512;

function setup(fn: { instances?: number; concurrency?: number; queueDepth?: number } = {}) {
  const d = compileChainFile(
    { functions: { work: { module: 'echo.ts', instances: 2, maxInstances: 3, ...fn } }, routes: [{ method: 'POST', path: '/w', chain: ['work'] }] },
    FIXTURES,
  );
  const spec = d.functions[0]!;
  const tokens = new IdleTokens(new ArrayBuffer(MAX_FUNCTIONS * IDLE_STRIDE * 8));
  const custody = new ArrayBuffer(SLOTS * CUSTODY.words * 4);
  const slots = new SlotTable(1, SLOTS, custody);
  const genHolder = new BigUint64Array(custody);
  const queue: Descriptor[] = [];
  const queues: KernelQueues = {
    create: () => {},
    push: (_, x) => queue.length < spec.queueDepth && queue.push({ ...x }) > 0,
    pop: () => queue.shift(),
  };
  const sent: Descriptor[] = [];
  const failed: [number, BatonError][] = [];
  const dispatcher = new Dispatcher(d.functions, tokens, queues, {
    send: (x) => sent.push(x),
    fail: (reqId, e) => failed.push([reqId, e]),
    park: (slot, fnId) => slots.park(slot, fnId),
    claim: (slot, gen) => slots.claim(slot, gen),
    classOf: (slot) => slots.classOf(slot),
  }, pino({ level: 'silent' }));
  slots.withdrawn = (fnId) => dispatcher.withdrawn(fnId);

  /** A request's call for the function, its slot held by the gateway. */
  let nextReq = 1;
  const call = (): Descriptor => {
    const reqId = nextReq++;
    const got = slots.acquire(reqId)!;
    return blankDescriptor({ key: fnAddress(0), kind: Kind.Call, reqId, slot: got.slot, gen: got.gen, fnId: 0, tArrive: 1 });
  };
  const holder = (slot: number) => slots.holder(slot);
  const instanceOf = (key: number) => spec.keys.indexOf(key);

  /** The SK_MSG program, one run at a time. `deliver` gets what it hands an instance. */
  const kernel = {
    /** Claims a popped descriptor's slot for `to` (pop_for), or passes it over. */
    claim(x: Descriptor, to: number): boolean {
      const want = BigInt(x.gen) | (BigInt(HOLDER_QUEUED) << 32n);
      return Atomics.compareExchange(genHolder, x.slot * 2 + 1, want, BigInt(x.gen) | (BigInt(to) << 32n)) === want;
    },
    popFor(to: number): Descriptor | undefined {
      for (let x = queue.shift(); x; x = queue.shift()) {
        tokens.addQueued(0, -1);
        if (kernel.claim(x, to)) return x;
        tokens.addStale(0);
      }
      return undefined;
    },
    /** give_token: a busy token of instance `index` goes idle, then the queue is looked at:
     *  'idle', 'back' (taken back: the caller settles), or 'none' (every token was idle). */
    give(index: number): 'idle' | 'back' | 'none' {
      const t = tokens.give(0, index, spec.concurrency);
      if (t < 0) return 'none';
      if (tokens.queued(0) === 0 && tokens.member(0, index, spec.concurrency)) return 'idle';
      return tokens.takeBack(0, t) ? 'back' : 'idle';
    },
    /** A function-addressed descriptor: the instance key it (or, after queueing it, the
     *  oldest waiting one) went to, or where it stayed ('idle from': the instance whose
     *  token the program hands to the dispatcher to settle). */
    bind(x: Descriptor): { to: number; x: Descriptor } | 'queued' | 'dispatcher' | { idleFrom: number } {
      const i = tokens.take(0, spec.concurrency);
      if (i >= 0) return { to: spec.keys[i]!, x };
      slots.park(x.slot, 0);
      if (!queues.push(0, x, 0)) return 'dispatcher';
      tokens.addQueued(0, 1);
      const late = tokens.take(0, spec.concurrency);
      if (late >= 0) {
        const popped = kernel.popFor(spec.keys[late]!);
        if (popped) return { to: spec.keys[late]!, x: popped };
        if (kernel.give(late) === 'back') return { idleFrom: late };
      }
      return 'queued';
    },
    /** Instance `index` sent an Idle notice: what it got, or 'dispatcher'. */
    idle(index: number): Descriptor | 'token' | 'dispatcher' {
      if (!tokens.member(0, index, spec.concurrency)) return 'dispatcher';
      const popped = kernel.popFor(spec.keys[index]!);
      if (popped) return popped;
      const r = kernel.give(index);
      if (r === 'idle') return 'token';
      if (r === 'back' && tokens.member(0, index, spec.concurrency)) {
        const again = kernel.popFor(spec.keys[index]!);
        if (again) return again;
      }
      return 'dispatcher';
    },
  };
  return { dispatcher, tokens, slots, queue, sent, failed, spec, call, holder, instanceOf, kernel };
}

describe('dispatcher', () => {
  it('takes a waiting descriptor for an instance that comes up, then leaves its other tokens idle', () => {
    const { dispatcher, tokens, queue, sent, spec, call, holder, kernel } = setup({ concurrency: 2 });
    const waiting = call();
    expect(kernel.bind(waiting)).toBe('queued'); // no instance yet
    expect(holder(waiting.slot)).toBe(HOLDER_QUEUED);
    dispatcher.activate(0, 0);
    expect(sent.map((d) => [d.reqId, d.key])).toEqual([[waiting.reqId, spec.keys[0]]]);
    expect(sent[0]!.tBind).toBeGreaterThan(0);
    expect(holder(waiting.slot)).toBe(0); // claimed by the gateway, which sends it on
    expect(queue).toHaveLength(0);
    expect(tokens.count(0)).toBe(1);
  });

  it('an enlisted instance takes nothing while it starts; its own Idle notices take what waits, in the kernel', () => {
    const { dispatcher, tokens, queue, sent, spec, call, holder, kernel } = setup({ concurrency: 2 });
    dispatcher.enlist(0, 0);
    expect(dispatcher.serving(0)).toBe(1); // an instance is coming: the kernel queues for it
    expect(dispatcher.ready(0)).toBe(0);
    const [a, b] = [call(), call()];
    expect(kernel.bind(a)).toBe('queued'); // no token of it is idle while it loads
    expect(kernel.bind(b)).toBe('queued');
    expect(dispatcher.inFlight(0)).toBe(2); // what waits, and nothing counted as running on it
    // ready: one notice per token, each answered with the oldest waiting descriptor
    expect(kernel.idle(0)).toMatchObject({ reqId: a.reqId });
    expect(kernel.idle(0)).toMatchObject({ reqId: b.reqId });
    expect(holder(a.slot)).toBe(spec.keys[0]);
    expect(dispatcher.started(0, 0)).toBe(true); // the function's first ready instance
    expect(dispatcher.ready(0)).toBe(1);
    expect(sent).toHaveLength(0); // the gateway handed nothing over
    expect(queue).toHaveLength(0);
    expect(tokens.count(0)).toBe(0);
    // a second one joining does not count as the first
    dispatcher.enlist(0, 1);
    expect(kernel.idle(1)).toBe('token');
    expect(kernel.idle(1)).toBe('token');
    expect(dispatcher.started(0, 1)).toBe(false);
    expect(tokens.count(0)).toBe(2);
  });

  it('an enlisted instance that dies before it is ready held nothing: what waits stays queued', () => {
    const { dispatcher, queue, call, holder, kernel } = setup();
    dispatcher.enlist(0, 0);
    const a = call();
    expect(kernel.bind(a)).toBe('queued');
    dispatcher.deactivate(0, 0);
    expect(dispatcher.serving(0)).toBe(0);
    expect(queue.map((d) => d.reqId)).toEqual([a.reqId]);
    expect(holder(a.slot)).toBe(HOLDER_QUEUED);
  });

  it('binds a descriptor the kernel could not place, or queues it; a full queue answers 503', () => {
    const { dispatcher, failed, queue, sent, spec, call } = setup({ queueDepth: 1 });
    dispatcher.activate(0, 0);
    const first = call();
    dispatcher.onCall(first); // its instance had just died with a token idle: another one is bound
    expect(sent.map((d) => [d.reqId, d.key])).toEqual([[first.reqId, spec.keys[0]]]);
    const second = call();
    dispatcher.onCall(second);
    expect(queue.map((d) => d.reqId)).toEqual([second.reqId]);
    expect(dispatcher.stats.queued).toBe(1);
    const third = call();
    dispatcher.onCall(third);
    expect(failed.map(([id, e]) => [id, e.code])).toEqual([[third.reqId, 'BATON_ERR_QUEUE_FULL']]);
    expect(dispatcher.stats.rejectedFull).toBe(1);
  });

  it('passes over withdrawn descriptors (their request is over) and hands the next live one', () => {
    const { dispatcher, slots, sent, spec, call, kernel } = setup({ instances: 1 });
    dispatcher.activate(0, 0);
    const running = call();
    expect(kernel.bind(running)).toEqual({ to: spec.keys[0], x: running });
    const [a, b, c] = [call(), call(), call()];
    for (const x of [a, b, c]) expect(kernel.bind(x)).toBe('queued');
    expect(slots.withdraw(a.slot)).toBe(true); // timed out while it waited
    expect(slots.withdraw(a.slot)).toBe(false); // once
    expect(dispatcher.queued(0)).toBe(2); // really waiting: b and c
    expect(kernel.idle(0)).toMatchObject({ reqId: b.reqId });
    expect(dispatcher.queued(0)).toBe(1);
    expect(sent).toHaveLength(0);
  });

  it('ignores Idle notices an instance does not owe (every token idle), counting them and logging once a second', () => {
    const { dispatcher, tokens, spec } = setup();
    const warnings: string[] = [];
    (dispatcher as unknown as { log: { warn(o: object, m: string): void } }).log = { warn: (_o, m) => warnings.push(m) };
    dispatcher.activate(0, 0);
    const said = [...Array(1000)].map(() => dispatcher.onIdle(0, spec.keys[0]!)); // a flood from a hostile worker
    expect(said.every((explained) => explained === false)).toBe(true); // the inbox counts them against the sender
    expect(dispatcher.stats.spurious).toBe(1000);
    expect(warnings).toHaveLength(1);
    expect(tokens.count(0)).toBe(1); // still exactly its one token
  });

  it('drains an instance: no new work, resolves when what it holds is done', async () => {
    const { dispatcher, tokens, spec, call, kernel } = setup({ concurrency: 2 });
    dispatcher.activate(0, 0);
    expect(kernel.bind(call())).toMatchObject({ to: spec.keys[0] }); // one of its two tokens
    let drained = false;
    const draining = dispatcher.drain(0, 0).then(() => (drained = true));
    expect(kernel.bind(call())).toBe('queued'); // not to the draining instance
    await Promise.resolve();
    expect(drained).toBe(false);
    expect(kernel.idle(0)).toBe('dispatcher'); // a draining instance's notice is counted there
    dispatcher.onIdle(0, spec.keys[0]!);
    await draining;
    expect(tokens.count(0)).toBe(0);
    expect(dispatcher.queued(0)).toBe(1); // still waiting for another instance
  });

  it('keeps the invariant under any interleaving of program runs and dispatcher steps', async () => {
    const event = fc.oneof(
      fc.record({ t: fc.constant('call' as const) }),
      fc.record({ t: fc.constant('dispatcherCall' as const) }),
      fc.record({ t: fc.constant('idle' as const), i: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ t: fc.constant('activate' as const), i: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ t: fc.constant('drain' as const), i: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ t: fc.constant('crash' as const), i: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ t: fc.constant('withdraw' as const), n: fc.nat() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(event, { maxLength: 150 }), async (events) => {
        const s = setup({ concurrency: 2, instances: 3, queueDepth: 1000 });
        const { dispatcher, tokens, slots, queue, sent, spec, kernel } = s;
        const state: ('off' | 'on' | 'draining')[] = ['off', 'off', 'off'];
        const running: Descriptor[][] = [[], [], []]; // what each instance holds
        const delivered = new Map<number, number>(); // request → times delivered
        const withdrawn = new Set<number>();
        const waiting = new Map<number, Descriptor>(); // calls not delivered (nor withdrawn) yet
        const give = (i: number, x: Descriptor) => {
          expect(state[i]).not.toBe('off');
          running[i]!.push(x);
          delivered.set(x.reqId, (delivered.get(x.reqId) ?? 0) + 1);
          waiting.delete(x.reqId);
        };
        const step = async (run: () => void) => {
          const before = sent.length;
          run();
          for (const x of sent.slice(before)) give(s.instanceOf(x.key), x);
          await Promise.resolve(); // a finished drain settles
        };
        const finish = (i: number) => {
          running[i]!.shift();
          const r = kernel.idle(i);
          if (typeof r === 'object') give(i, r);
          else if (r === 'dispatcher') dispatcher.onIdle(0, spec.keys[i]!);
        };
        const check = () => {
          // between program runs: a live waiting descriptor means no idle token
          const live = queue.filter((x) => slots.holder(x.slot) === HOLDER_QUEUED);
          if (live.length > 0) expect(tokens.count(0)).toBe(0);
          for (let i = 0; i < 3; i++) expect(running[i]!.length).toBeLessThanOrEqual(spec.concurrency);
          for (const n of delivered.values()) expect(n).toBe(1);
          for (const id of withdrawn) expect(delivered.has(id)).toBe(false);
        };
        for (const e of events) {
          await step(() => {
            if (e.t === 'activate' && state[e.i] === 'off') {
              state[e.i] = 'on';
              dispatcher.activate(0, e.i);
            } else if (e.t === 'drain' && state[e.i] === 'on') {
              state[e.i] = 'draining';
              void dispatcher.drain(0, e.i).then(() => {
                expect(running[e.i]).toEqual([]); // drained only once it holds nothing
                state[e.i] = 'off';
              });
            } else if (e.t === 'crash' && state[e.i] !== 'off') {
              state[e.i] = 'off'; // what it held is answered 502 by the gateway
              running[e.i] = [];
              dispatcher.deactivate(0, e.i);
            } else if (e.t === 'call' || e.t === 'dispatcherCall') {
              const x = s.call();
              waiting.set(x.reqId, x);
              const r = e.t === 'call' ? kernel.bind(x) : 'dispatcher';
              if (typeof r === 'object' && 'to' in r) give(s.instanceOf(r.to), r.x);
              else if (typeof r === 'object') dispatcher.onIdle(0, spec.keys[r.idleFrom]!);
              else if (r === 'dispatcher') dispatcher.onCall({ ...x });
            } else if (e.t === 'idle' && running[e.i]!.length > 0) {
              finish(e.i);
            } else if (e.t === 'withdraw' && waiting.size > 0) {
              const x = [...waiting.values()][e.n % waiting.size]!;
              if (slots.withdraw(x.slot)) {
                withdrawn.add(x.reqId);
                waiting.delete(x.reqId);
              }
            }
          });
          check();
        }
        // then let every instance finish everything: each call not withdrawn runs exactly once
        const off = state.indexOf('off');
        if (!state.includes('on') && off >= 0) {
          await step(() => {
            state[off] = 'on';
            dispatcher.activate(0, off);
          });
        }
        for (let guard = 0; guard < 10_000; guard++) {
          const i = running.findIndex((r) => r.length > 0);
          if (i < 0) break;
          await step(() => finish(i));
          check();
        }
        if (state.includes('on')) expect([...waiting.keys()]).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  // A model check of the protocol itself: the program's two binding steps as bpf/baton.bpf.c
  // runs them (keep in step), cut at every atomic operation and interleaved as two CPUs could
  // run them. Whatever the interleaving, once no run is in flight no live descriptor waits
  // while a token is idle, and none is delivered twice or lost. Random schedules, and the
  // schedules of the races each look exists for, spelled out.
  it('the binding steps, interleaved at every atomic operation, never leave a descriptor waiting by an idle token', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { minLength: 1, maxLength: 120 }), (schedule) => {
        const m = programModel();
        const inFlight: Generator<void, void>[] = [];
        for (const n of schedule) {
          const choice = n % 4;
          if (choice === 0 && m.calls.length < 40) {
            inFlight.push(m.bind(m.call()));
          } else if (choice === 1) {
            const i = (n >> 2) % 2;
            if (m.running[i]! > 0) inFlight.push(m.idle(i));
          } else if (inFlight.length > 0) {
            const g = inFlight[(n >> 2) % inFlight.length]!; // one step of one CPU's run
            if (g.next().done) inFlight.splice(inFlight.indexOf(g), 1);
          }
          if (inFlight.length === 0) m.quiet();
        }
        while (inFlight.length) if (inFlight[0]!.next().done) inFlight.shift();
        m.finish();
      }),
      { numRuns: 2000 },
    );
  });

  it('a token that comes back after a lost race looks at the queue again', () => {
    const m = programModel();
    m.complete(m.bind(m.call())); // both instances busy
    m.complete(m.bind(m.call()));
    const b1 = m.bind(m.call());
    m.steps(b1, 1); // finds no idle token
    m.complete(m.idle(1)); // instance 1 finishes: nothing waits yet, its token goes idle
    m.steps(b1, 2); // queues its descriptor
    m.complete(m.idle(0)); // instance 0 finishes and takes it
    m.steps(b1, 2); // takes instance 1's token, finds the queue empty
    m.complete(m.bind(m.call())); // another descriptor queued, no token idle
    m.complete(b1); // gives instance 1's token back: sees the queue, takes it back, settles
    m.quiet();
    m.finish();
  });

  it('an Idle notice that races a descriptor being queued: one of the two binds it', () => {
    const m = programModel();
    m.complete(m.bind(m.call()));
    m.complete(m.bind(m.call()));
    const b = m.bind(m.call());
    m.steps(b, 1); // no idle token
    const i = m.idle(0);
    m.steps(i, 1); // the queue is empty
    m.complete(b); // queues it, finds no idle token
    m.complete(i); // returns its token, then sees the queue: takes the token back and the descriptor
    m.quiet();
    m.finish();
  });
});

/** The program's binding steps (bpf/baton.bpf.c: bind, on_idle, give_token, pop_for) as
 *  generators that yield after each atomic operation, over the real IdleTokens and custody
 *  memory, on a function with two instances of concurrency 1. */
function programModel() {
  const C = 1;
  const s = setup({ concurrency: C, instances: 2, queueDepth: 1000 });
  const { tokens, slots, queue, spec, kernel } = s;
  s.dispatcher.activate(0, 0);
  s.dispatcher.activate(0, 1);
  const running: number[] = [0, 0];
  const delivered = new Map<number, number>();
  const calls: Descriptor[] = [];
  const give = (key: number, x: Descriptor) => {
    running[s.instanceOf(key)]!++;
    delivered.set(x.reqId, (delivered.get(x.reqId) ?? 0) + 1);
  };
  function* popFor(to: number): Generator<void, Descriptor | undefined> {
    for (;;) {
      const x = queue.shift();
      yield;
      if (!x) return undefined;
      tokens.addQueued(0, -1);
      yield;
      if (kernel.claim(x, to)) return x;
    }
  }
  function* giveToken(index: number): Generator<void, 'idle' | 'back' | 'none'> {
    const t = tokens.give(0, index, C);
    yield;
    if (t < 0) return 'none';
    const queued = tokens.queued(0);
    const isMember = tokens.member(0, index, C);
    yield;
    if (queued === 0 && isMember) return 'idle';
    const back = tokens.takeBack(0, t);
    yield;
    return back ? 'back' : 'idle';
  }
  const settle = (key: number) => {
    // the program hands it to the dispatcher (the gateway, on another CPU)
    s.dispatcher.onIdle(0, key);
    for (const d of s.sent.splice(0)) give(d.key, d);
  };
  function* bind(x: Descriptor): Generator<void, void> {
    const i = tokens.take(0, C);
    yield;
    if (i >= 0) return give(spec.keys[i]!, x);
    slots.park(x.slot, 0);
    queue.push({ ...x });
    yield;
    tokens.addQueued(0, 1);
    yield;
    const late = tokens.take(0, C);
    yield;
    if (late < 0) return;
    const popped = yield* popFor(spec.keys[late]!);
    if (popped) return give(spec.keys[late]!, popped);
    if ((yield* giveToken(late)) === 'back') settle(spec.keys[late]!);
  }
  /** Instance `index` finished one descriptor (counted at once) and sends its notice. */
  const idle = (index: number): Generator<void, void> => {
    running[index]!--;
    return notice(index);
  };
  function* notice(index: number): Generator<void, void> {
    const key = spec.keys[index]!;
    const popped = yield* popFor(key);
    if (popped) return give(key, popped);
    const r = yield* giveToken(index);
    if (r === 'none') throw new Error('an Idle notice too many');
    if (r === 'idle') return;
    const again = yield* popFor(key);
    if (again) return give(key, again);
    settle(key);
  }
  const m = {
    running,
    calls,
    call: () => {
      const x = s.call();
      calls.push(x);
      return x;
    },
    bind,
    idle,
    steps(g: Generator<void, void>, n: number) {
      for (let i = 0; i < n; i++) expect(g.next().done).toBe(false);
    },
    complete(g: Generator<void, void>) {
      while (!g.next().done);
    },
    /** Between program runs: a live waiting descriptor means no idle token. */
    quiet() {
      const live = queue.filter((x) => slots.holder(x.slot) === HOLDER_QUEUED);
      if (live.length > 0) expect(tokens.count(0)).toBe(0);
    },
    /** The instances finish what they hold, one run at a time: every call ran exactly once. */
    finish() {
      m.quiet();
      for (let guard = 0; guard < 1000 && running.some((r) => r > 0); guard++) {
        m.complete(idle(running[0]! > 0 ? 0 : 1));
        m.quiet();
      }
      expect(calls.filter((x) => delivered.get(x.reqId) !== 1)).toEqual([]);
      expect(queue.filter((x) => slots.holder(x.slot) === HOLDER_QUEUED)).toEqual([]);
    },
  };
  return m;
}
