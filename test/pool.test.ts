import { fork } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Pool, SLOT_HEADER, MIN_SLOT_SIZE } from '../src/pool/index.ts';
import { encode, Kind, type Descriptor } from '../src/descriptor/index.ts';
import { decode } from '../src/descriptor/index.ts';

const g = { slotSize: MIN_SLOT_SIZE, slotCount: 8 };

describe('pool', () => {
  it('allocates each slot once, frees only for its owner, and bounds-checks views', () => {
    const pool = Pool.create(g);
    const slots = [...Array(8)].map((_, i) => pool.alloc(i + 1));
    expect(new Set(slots).size).toBe(8);
    expect(pool.alloc(99)).toBeUndefined(); // exhausted
    expect(pool.free(slots[0]!, 2)).toBe(false); // not the owner
    expect(pool.free(slots[0]!, 1)).toBe(true);
    expect(pool.free(slots[0]!, 1)).toBe(false); // double free
    expect(pool.freeCount()).toBe(1);
    const off = pool.dataOffset(slots[1]!);
    expect(pool.view(off, pool.capacity).length).toBe(g.slotSize - SLOT_HEADER);
    expect(() => pool.view(off, pool.capacity + 1)).toThrow(/outside/);
    expect(() => pool.view(off - 1, 1)).toThrow(/outside/); // inside the slot header
    expect(() => pool.view(-5, 1)).toThrow(/outside/);
    expect(() => pool.owner(8)).toThrow(/out of range/);
    pool.close();
  });

  it('bumps the generation on every allocation and validates descriptors against it', () => {
    const pool = Pool.create({ ...g, slotCount: 1 }); // so the same slot comes back
    const slot = pool.alloc(5)!;
    const d: Descriptor = {
      key: 1, kind: Kind.Call, reqId: 5, gen: pool.gen(slot), offset: pool.dataOffset(slot), length: 10, chainId: 0,
      hop: 0, fnId: 0, status: 0, sender: 0, tArrive: 1, tSent: 0, tBind: 0, tStart: 0, tEnd: 0,
    };
    expect(pool.validate(decode(encode(d)))).toBe(slot);
    expect(() => pool.validate({ ...d, reqId: 6 })).toThrow(/not owned/);
    expect(() => pool.validate({ ...d, length: pool.capacity + 1 })).toThrow(/past the end/);
    expect(() => pool.validate({ ...d, offset: 3 })).toThrow(/not inside/);
    pool.free(slot, 5);
    expect(pool.alloc(5)).toBe(slot);
    expect(() => pool.validate(d)).toThrow(/stale/);
    pool.close();
  });

  it('keeps request metadata, content type and the hop trace in the slot header', () => {
    const pool = Pool.create(g);
    const slot = pool.alloc(1)!;
    expect(pool.writeMeta(slot, { method: 'POST', url: '/a?b=1', contentType: 'text/plain' })).toBe(true);
    expect(pool.readMeta(slot)).toEqual({ method: 'POST', url: '/a?b=1', contentType: 'text/plain' });
    expect(pool.writeMeta(slot, { method: 'GET', url: '/' + 'x'.repeat(2000) })).toBe(false);
    expect(pool.writeType(slot, 'application/json')).toBe(true);
    expect(pool.readType(slot)).toBe('application/json');
    expect(pool.writeType(slot, 'x'.repeat(65))).toBe(false);
    for (let i = 0; i < 10; i++) {
      pool.appendTrace(slot, { fnId: i, key: i, sent: i, bind: i, recv: i + 1, start: i + 2, end: i + 3 });
    }
    const trace = pool.readTrace(slot);
    expect(trace).toHaveLength(8); // saturates, never overflows into the content type
    expect(trace[7]).toEqual({ fnId: 7, key: 7, sent: 7, bind: 7, recv: 8, start: 9, end: 10 });
    pool.close();
  });

  it('rejects impossible geometry', () => {
    expect(() => Pool.create({ slotSize: 100, slotCount: 1 })).toThrow(/slot size/);
    expect(() => Pool.create({ slotSize: MIN_SLOT_SIZE, slotCount: 0 })).toThrow(/slot count/);
  });

  it('is shared with another process: concurrent allocation never hands a slot out twice', async () => {
    const geometry = { slotSize: MIN_SLOT_SIZE, slotCount: 4096 };
    const pool = Pool.create(geometry);
    pool.payload(0).write('hello');
    const child = fork(new URL('./fixtures/pool-child.ts', import.meta.url).pathname, [JSON.stringify(geometry)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', pool.fd, 'ipc'],
    });
    const next = async <T>() => (await once(child, 'message'))[0] as T;
    try {
      await next();
      child.send({ op: 'read' });
      expect((await next<{ text: string }>()).text).toBe('hello'); // the child sees our writes
      child.send({ op: 'go' });
      const mine: number[] = [];
      for (let s = pool.alloc(1); s !== undefined; s = pool.alloc(1)) mine.push(s);
      const { got } = await next<{ got: number[] }>();
      const all = [...mine, ...got];
      expect(all).toHaveLength(4096);
      expect(new Set(all).size).toBe(4096);
      for (const s of got) expect(pool.owner(s)).toBe(2);
      // the child frees slots it does not own only with the right owner id
      child.send({ op: 'free', slots: mine.slice(0, 3), owner: 1 });
      expect((await next<{ freed: boolean[] }>()).freed).toEqual([true, true, true]);
      child.send({ op: 'free', slots: mine.slice(3, 4), owner: 2 });
      expect((await next<{ freed: boolean[] }>()).freed).toEqual([false]);
      expect(pool.freeCount()).toBe(3);
    } finally {
      child.kill();
      pool.close();
    }
  });
});
