// The SK_MSG program on a real sockmap: routing by the first u32, per-descriptor verdicts
// for coalesced sends, dead letters for unknown keys, counters.
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Sockmap } from '../src/dataplane/sockmap.ts';
import { DESC_SIZE } from '../src/descriptor/index.ts';
import { dataplaneUnavailable } from './helpers/env.ts';
import { readBytes } from './helpers/sockets.ts';

function frame(key: number, tag: number): Buffer {
  const b = Buffer.alloc(DESC_SIZE);
  b.writeUInt32LE(key, 0);
  b.writeUInt32LE(tag, 8);
  return b;
}

describe.skipIf(dataplaneUnavailable)('sockmap data plane', () => {
  let map: Sockmap;
  const socks = new Map<number, { end: net.Socket; peer: net.Socket }>();

  function open(key: number) {
    const { fd, peer } = map.open(key);
    const end = new net.Socket({ fd, readable: true, writable: true });
    socks.set(key, { end, peer });
    return { end, peer };
  }

  beforeEach(() => {
    map = new Sockmap();
  });
  afterEach(() => {
    for (const { end } of socks.values()) end.destroy();
    socks.clear();
    map.destroy();
  });

  it('redirects a descriptor to the socket under its key', async () => {
    const a = open(1);
    const b = open(2);
    const got = readBytes(b.end, DESC_SIZE);
    a.end.write(frame(2, 42));
    const f = await got;
    expect(f.readUInt32LE(0)).toBe(2);
    expect(f.readUInt32LE(8)).toBe(42);
    expect(map.counters(2).redirected).toBe(1);
  });

  it('routes each descriptor of one coalesced send by its own key', async () => {
    const a = open(1);
    const b = open(2);
    const c = open(3);
    const toB = readBytes(b.end, 2 * DESC_SIZE);
    const toC = readBytes(c.end, 2 * DESC_SIZE);
    a.end.write(Buffer.concat([frame(2, 1), frame(3, 2), frame(2, 3), frame(3, 4)]));
    const [fb, fc] = await Promise.all([toB, toC]);
    expect([fb.readUInt32LE(8), fb.readUInt32LE(DESC_SIZE + 8)]).toEqual([1, 3]);
    expect([fc.readUInt32LE(8), fc.readUInt32LE(DESC_SIZE + 8)]).toEqual([2, 4]);
  });

  it('sends a descriptor for an unknown key to the sender peer (dead letter); the sender survives', async () => {
    const a = open(1);
    const b = open(2);
    const dead = readBytes(a.peer, DESC_SIZE);
    a.end.write(frame(77, 9));
    const d = await dead;
    expect(d.readUInt32LE(0)).toBe(77);
    expect(map.counters(77).deadLetter).toBe(1);
    // still in the map and still able to send
    const got = readBytes(b.end, DESC_SIZE);
    a.end.write(frame(2, 10));
    expect((await got).readUInt32LE(8)).toBe(10);
    expect(a.end.destroyed).toBe(false);
  });

  it('drops a closed socket from the map, so later sends to it become dead letters', async () => {
    const a = open(1);
    const b = open(2);
    b.end.destroy();
    await new Promise((r) => b.peer.once('end', r));
    const dead = readBytes(a.peer, DESC_SIZE);
    a.end.write(frame(2, 5));
    expect((await dead).readUInt32LE(8)).toBe(5);
  });

  it('rejects keys outside the map', () => {
    expect(() => map.open(100000)).toThrow(/out of range/);
  });
});
