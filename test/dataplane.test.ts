// The SK_MSG program on a real sockmap: routing by the first u32, per-descriptor verdicts for
// coalesced sends, custody of slots moving with each delivery, dead letters to the gateway,
// and every malformed, forged or misaligned write refused in the kernel — reported on the
// sender's own peer end, never reaching another socket.
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Endpoint } from '../src/dataplane/endpoint.ts';
import { Sockmap, VIOLATIONS } from '../src/dataplane/sockmap.ts';
import { blankDescriptor, encode, F, GATEWAY_KEY, Kind, type Descriptor } from '../src/descriptor/index.ts';
import { CUSTODY } from '../src/gateway/custody.ts';
import { dataplaneUnavailable } from './helpers/env.ts';
import { waitFor } from './helpers/gateway.ts';
import { readBytes } from './helpers/sockets.ts';

const CAPACITY = 4096;

describe.skipIf(dataplaneUnavailable)('sockmap data plane', () => {
  let map: Sockmap;
  let custody: Uint32Array;
  const socks: { end: net.Socket; peer: net.Socket }[] = [];

  /** Key k > 0 is the one instance of function k - 1; key 0 is the gateway. */
  function open(key: number) {
    const { fd, peer } = map.open(key, key === GATEWAY_KEY ? undefined : key - 1);
    const s = { end: new net.Socket({ fd, readable: true, writable: true }), peer };
    socks.push(s);
    return s;
  }
  /** Slot `slot` belongs to request `req` (generation 1) and `holder` holds it. */
  const hold = (slot: number, req: number, holder: number) => custody.set([req, 0, 1, holder], slot * CUSTODY.words); // req, queue, gen, holder
  const holderOf = (slot: number) => custody[slot * CUSTODY.words + CUSTODY.holder];
  const call = (to: number, from: number, fields: Partial<Descriptor> = {}) =>
    encode(blankDescriptor({ key: to, kind: Kind.Call, reqId: 5, gen: 1, slot: 0, fnId: to - 1, sender: from, tArrive: 1, ...fields }));

  beforeEach(() => {
    map = new Sockmap();
    map.configure(16, CAPACITY);
    custody = new Uint32Array(map.custodyBuffer());
    // functions 0..3 on keys 1..4, each may call every other (the edge test narrows it)
    for (let f = 0; f < 4; f++) {
      map.setFunction(f, f + 1, 1, 1);
      map.allowCalls(f, [0, 1, 2, 3].filter((t) => t !== f));
    }
  });
  afterEach(() => {
    for (const { end } of socks) end.destroy();
    socks.length = 0;
    map.destroy();
  });

  it('delivers a descriptor from the slot holder to the socket under its key, and makes the receiver the holder', async () => {
    const a = open(1);
    const b = open(2);
    hold(0, 5, 1);
    const got = readBytes(b.end, 64);
    a.end.write(call(2, 1));
    expect((await got).readUInt32LE(F.reqId)).toBe(5);
    expect(holderOf(0)).toBe(2);
    expect(map.counters(2).redirected).toBe(1);
    // and back: b holds it now, so b may send it on
    const back = readBytes(a.end, 64);
    b.end.write(call(1, 2));
    await back;
    expect(holderOf(0)).toBe(1);
  });

  it('routes each descriptor of one coalesced send by its own key', async () => {
    const a = open(1);
    const b = open(2);
    const c = open(3);
    for (let s = 0; s < 4; s++) hold(s, s + 1, 1);
    const toB = readBytes(b.end, 128);
    const toC = readBytes(c.end, 128);
    a.end.write(Buffer.concat([0, 1, 2, 3].map((s) => call(s % 2 ? 3 : 2, 1, { slot: s, reqId: s + 1 }))));
    const [fb, fc] = await Promise.all([toB, toC]);
    expect([fb.readUInt32LE(F.reqId), fb.readUInt32LE(64 + F.reqId)]).toEqual([1, 3]);
    expect([fc.readUInt32LE(F.reqId), fc.readUInt32LE(64 + F.reqId)]).toEqual([2, 4]);
    expect([0, 1, 2, 3].map(holderOf)).toEqual([2, 3, 2, 3]);
  });

  it('delivers a descriptor for an instance key with no socket to the gateway (dead letter); the sender survives', async () => {
    const gw = open(GATEWAY_KEY);
    const a = open(1);
    const b = open(2);
    hold(0, 5, 1);
    const dead = readBytes(gw.end, 64);
    a.end.write(call(4, 1)); // function 3's instance: no socket under key 4
    expect((await dead).readUInt32LE(F.key)).toBe(4); // the gateway sees whom it was for
    expect(map.counters(4).deadLetter).toBe(1);
    expect(holderOf(0)).toBe(GATEWAY_KEY);
    // the sender still sends: the gateway hands it the slot back
    custody[CUSTODY.holder] = 1;
    const got = readBytes(b.end, 64);
    a.end.write(call(2, 1));
    await got;
    expect(a.end.destroyed).toBe(false);
    expect(map.counters(1).refused).toBe(0);
  });

  it('drops a closed socket from the map, so later sends to it become dead letters', async () => {
    const gw = open(GATEWAY_KEY);
    const a = open(1);
    const b = open(2);
    hold(0, 5, 1);
    b.end.destroy();
    await new Promise((r) => b.peer.once('close', r));
    const dead = readBytes(gw.end, 64);
    a.end.write(call(2, 1));
    expect((await dead).readUInt32LE(F.key)).toBe(2);
  });

  const refusals: [string, number, (to: number, from: number) => Buffer][] = [
    ['a write shorter than a descriptor', 2, () => Buffer.alloc(10, 7)],
    ['a descriptor followed by a partial one', 2, (to, from) => Buffer.concat([call(to, from), Buffer.alloc(10, 7)])],
    ['bytes without the descriptor signature', 3, (to) => Buffer.alloc(64).fill(0xee, 4).fill(0, 0, 4).fill(to, 0, 1)],
    ['a descriptor naming another sender', 4, (to) => call(to, 3)],
    ['a reply addressed to a function', 5, (to, from) => encode(blankDescriptor({ key: to, kind: Kind.Reply, reqId: 5, gen: 1, status: 200, sender: from }))],
    ['a payload length beyond a slot', 6, (to, from) => call(to, from, { length: CAPACITY + 1 })],
    ['a slot the sender does not hold', 7, (to, from) => call(to, from, { slot: 1 })],
    ['a stale request for the slot', 7, (to, from) => call(to, from, { reqId: 6 })],
    ['a call naming another function than the one addressed', 9, (to, from) => call(to, from, { fnId: 2 })],
    // only the kernel hands a sender's bytes back as ACK: a function writing one is forging
    ['an acknowledgement (the kernel\'s own kind)', 5, (to, from) => call(to, from, { kind: Kind.Ack })],
  ];
  it.each(refusals)('refuses %s: nothing reaches the target, the sender is reported on its peer end', async (_what, reason, bytes) => {
    const a = open(1);
    const b = open(2);
    hold(0, 5, 1);
    hold(1, 9, 2);
    let delivered = 0;
    b.end.on('data', (c: Buffer) => (delivered += c.length));
    const reported = readBytes(a.peer, 1);
    a.end.write(bytes(2, 1));
    await reported;
    expect(map.counters(1)).toMatchObject({ refused: 1, reason });
    expect(map.refusal(1)).toBe(VIOLATIONS[reason]);
    // refused for good: even a good descriptor of its own goes to its peer end now
    a.end.write(call(2, 1));
    await waitFor('the second write on the peer end', () => a.peer.bytesRead >= 64 + 10);
    expect(delivered).toBe(0); // a write that is not whole descriptors is refused whole
    expect(holderOf(0)).toBe(1);
    // nobody else is affected
    const c = open(3);
    hold(2, 11, 2);
    const got = readBytes(c.end, 64);
    b.end.write(call(3, 2, { slot: 2, reqId: 11 }));
    await got;
  });

  it('delivers a call only along the edges the chain file allows; the gateway may call anything', async () => {
    const gw = open(GATEWAY_KEY);
    const a = open(1);
    const b = open(2);
    const c = open(3);
    map.allowCalls(0, [1]); // function 0 (key 1) may call function 1 (key 2) only
    hold(0, 5, 1);
    const got = readBytes(b.end, 64);
    a.end.write(call(2, 1));
    await got;
    hold(1, 6, 1);
    const refused = readBytes(a.peer, 64);
    a.end.write(call(3, 1, { slot: 1, reqId: 6 }));
    await refused;
    expect(map.counters(1)).toMatchObject({ refused: 1, reason: 9 });
    expect(map.refusal(1)).toBe('called a function its chain file does not let it call');
    hold(2, 7, GATEWAY_KEY);
    const toC = readBytes(c.end, 64);
    gw.end.write(call(3, GATEWAY_KEY, { slot: 2, reqId: 7 }));
    await toC;
  });

  it('nested calls: a Return goes only to a caller\'s instance, an Alloc leaves custody with its holder, only the gateway grants', async () => {
    const gw = open(GATEWAY_KEY);
    const a = open(1);
    const b = open(2);
    const c = open(3);
    map.allowCalls(0, [1]); // function 0 (key 1) calls function 1 (key 2)
    map.allowCalls(1, [], [0]); // which may return to function 0 only
    // an Alloc proves the request by a held slot, reaches the gateway, and the slot stays put
    hold(0, 5, 1);
    const alloc = readBytes(gw.end, 64);
    a.end.write(encode(blankDescriptor({ key: GATEWAY_KEY, kind: Kind.Alloc, reqId: 5, gen: 1, slot: 0, length: 2, sender: 1, tArrive: 1 })));
    expect((await alloc).readUInt8(F.kind)).toBe(Kind.Alloc);
    expect(holderOf(0)).toBe(1);
    // the gateway grants a slot it holds: custody moves to the caller
    hold(1, 5, GATEWAY_KEY);
    const grant = readBytes(a.end, 64);
    gw.end.write(encode(blankDescriptor({ key: 1, kind: Kind.Grant, reqId: 5, gen: 1, slot: 1, sender: GATEWAY_KEY, tArrive: 1 })));
    await grant;
    expect(holderOf(1)).toBe(1);
    // the callee returns to its caller
    hold(2, 5, 2);
    const ret = readBytes(a.end, 64);
    b.end.write(encode(blankDescriptor({ key: 1, kind: Kind.Return, reqId: 5, gen: 1, slot: 2, fnId: 0, status: 200, sender: 2, tArrive: 1 })));
    await ret;
    expect(holderOf(2)).toBe(1);
    // a function that may not return to function 2 (key 3) is refused
    hold(3, 5, 2);
    const refused = readBytes(b.peer, 64);
    b.end.write(encode(blankDescriptor({ key: 3, kind: Kind.Return, reqId: 5, gen: 1, slot: 3, fnId: 2, status: 200, sender: 2, tArrive: 1 })));
    await refused;
    expect(map.refusal(2)).toBe('called a function its chain file does not let it call');
    // a function cannot grant
    hold(4, 5, 3);
    const forged = readBytes(c.peer, 64);
    c.end.write(encode(blankDescriptor({ key: 1, kind: Kind.Grant, reqId: 5, gen: 1, slot: 4, sender: 3, tArrive: 1 })));
    await forged;
    expect(map.counters(3)).toMatchObject({ refused: 1, reason: 5 });
    expect(holderOf(4)).toBe(3);
  });

  it('the bench\'s reference program (checks: false) routes without checking: forged sender and custody pass', async () => {
    map.destroy();
    map = new Sockmap({ checks: false });
    map.configure(16, CAPACITY);
    custody = new Uint32Array(map.custodyBuffer());
    const a = open(1);
    const b = open(2);
    hold(0, 5, 3); // held by someone else
    const got = readBytes(b.end, 64);
    a.end.write(call(2, 9)); // wrong sender, not the holder, no edge declared
    await got;
    expect(map.counters(1).refused).toBe(0);
    expect(holderOf(0)).toBe(2); // custody still moves with delivery
  });

  it('an endpoint never hands the kernel\'s acknowledgements to JS: the frames around them arrive, in order', async () => {
    const { fd, peer } = map.open(3, 2);
    socks.push({ end: peer, peer });
    const got: number[] = [];
    const garbage: number[] = [];
    const ep = new Endpoint(fd, { frame: (f) => got.push(f.readUInt32LE(F.reqId)), garbage: (n) => garbage.push(n) });
    const d = (reqId: number, kind: Kind) => encode(blankDescriptor({ key: 3, kind, reqId, sender: GATEWAY_KEY, tArrive: 1 }));
    peer.write(Buffer.concat([d(1, Kind.Ack), d(2, Kind.Call), d(3, Kind.Ack), d(4, Kind.Return), d(5, Kind.Ack)]));
    await waitFor('the first two frames', () => got.length === 2);
    peer.write(Buffer.concat([d(6, Kind.Ack), d(7, Kind.Ack)]));
    peer.write(d(8, Kind.Call));
    await waitFor('the third frame', () => got.length === 3);
    expect(got).toEqual([2, 4, 8]);
    expect(garbage).toEqual([]);
    ep.destroy();
  });

  it('rejects keys outside the map', () => {
    expect(() => map.open(100000)).toThrow(/out of range/);
  });
});
