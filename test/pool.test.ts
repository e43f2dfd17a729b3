import { fork } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { geometryProblems, META_MAX, MIN_SLOT_SIZE, Pool, S, SLOT_HEADER } from '../src/pool/index.ts';

const g = { slotSize: MIN_SLOT_SIZE, slotCount: 8 };

describe('pool', () => {
  it('bounds-checks views and descriptors against its geometry', () => {
    const pool = Pool.create(g);
    expect(pool.capacity).toBe(g.slotSize - SLOT_HEADER);
    expect(pool.view(7, pool.capacity)).toHaveLength(pool.capacity);
    expect(() => pool.view(7, pool.capacity + 1)).toThrow(/outside a slot/);
    expect(() => pool.view(8, 1)).toThrow(/out of range/);
    expect(() => pool.view(-1, 1)).toThrow(/out of range/);
    // neighbouring slots do not overlap
    pool.payload(0).fill(1);
    pool.payload(1).fill(2);
    expect(pool.view(0, pool.capacity).every((b) => b === 1)).toBe(true);
    expect(pool.check({ slot: 3, length: pool.capacity })).toBeUndefined();
    expect(pool.check({ slot: 8, length: 0 })).toMatch(/not in the pool/);
    expect(pool.check({ slot: 0, length: pool.capacity + 1 })).toMatch(/past the end/);
    pool.close();
  });

  it('keeps request metadata, content type and the hop trace in the slot header, and resets them', () => {
    const pool = Pool.create(g);
    expect(pool.writeMeta(1, { method: 'POST', url: '/a?b=1', contentType: 'text/plain' })).toBe(true);
    expect(pool.readMeta(1)).toEqual({ method: 'POST', url: '/a?b=1', contentType: 'text/plain' });
    expect(pool.writeMeta(1, { method: 'GET', url: '/' + 'x'.repeat(2000) })).toBe(false);
    expect(pool.writeType(1, 'application/json')).toBe(true);
    expect(pool.readType(1)).toBe('application/json');
    expect(pool.writeType(1, 'x'.repeat(65))).toBe(false);
    for (let i = 0; i < 10; i++) {
      pool.appendTrace(1, { fnId: i, key: i, sent: i, bind: i, recv: i + 1, start: i + 2, end: i + 3 });
    }
    const trace = pool.readTrace(1);
    expect(trace).toHaveLength(8); // saturates, never overflows into the content type
    expect(trace[7]).toEqual({ fnId: 7, key: 7, sent: 7, bind: 7, recv: 8, start: 9, end: 10 });
    pool.reset(1);
    expect([pool.readTrace(1), pool.readType(1), pool.readMeta(1)]).toEqual([[], undefined, { method: 'GET', url: '/' }]);
    pool.close();
  });

  it('keeps metadata of any text up to the header field exactly, and reads a corrupt header as GET /', () => {
    const pool = Pool.create(g);
    const cases = [
      { method: 'PATCH', url: '/ünï/€?q=✓', contentType: 'text/plain; charset=utf-8' },
      { method: 'GET', url: '/none' },
      { method: 'PUT', url: '/empty-type', contentType: '' },
    ];
    for (const meta of cases) {
      expect(pool.writeMeta(2, meta)).toBe(true);
      expect(pool.readMeta(2)).toEqual(meta);
    }
    // the largest URL that fits, and one byte more (a 3-byte character at the end does not fit)
    const room = META_MAX - 3 - 'GET'.length;
    expect(pool.writeMeta(2, { method: 'GET', url: 'u'.repeat(room) })).toBe(true);
    expect(pool.readMeta(2).url).toHaveLength(room);
    expect(pool.writeMeta(2, { method: 'GET', url: 'u'.repeat(room - 2) + '€' })).toBe(false);
    expect(pool.readMeta(2).url).toHaveLength(room); // a refused write leaves the slot as it was
    // a worker may write any byte of its slot's header: lengths that do not add up read as GET /
    const header = 2 * pool.slotSize;
    pool.bytes.writeUInt16LE(10, header + S.metaLen);
    pool.bytes.fill(0xee, header + S.meta, header + S.meta + 3);
    expect(pool.readMeta(2)).toEqual({ method: 'GET', url: '/' });
    pool.bytes.writeUInt16LE(META_MAX + 1, header + S.metaLen);
    expect(pool.readMeta(2)).toEqual({ method: 'GET', url: '/' });
    pool.close();
  });

  it('rejects impossible geometry with a message that says what to change', () => {
    expect(() => Pool.create({ slotSize: 100, slotCount: 1 })).toThrow(/at least 5120 bytes/);
    expect(() => Pool.create({ slotSize: MIN_SLOT_SIZE, slotCount: 0 })).toThrow(/pool.slots: 1\.\.65536/);
    expect(geometryProblems({ slotSize: 100 * 1024 ** 3, slotCount: 64 })).toEqual([
      'pool.slotSize: 100 GiB is more than the largest slot, 1 GiB',
    ]);
    expect(geometryProblems({ slotSize: 1024 ** 3, slotCount: 8 })).toEqual([
      'pool: 8 slots × 1 GiB is 8 GiB; a pool must stay below 4 GiB: lower pool.slots or pool.slotSize',
    ]);
    expect(geometryProblems({ slotSize: 2 * 1024 ** 2, slotCount: 64 })).toEqual([]);
  });

  it('refuses to map a pool as larger than it is (touching past its end would kill the process)', () => {
    const pool = Pool.create(g);
    expect(() => Pool.attach(pool.fd, { ...g, slotCount: g.slotCount + 1 })).toThrow(
      expect.objectContaining({ code: 'BATON_ERR_POOL', message: expect.stringMatching(/smaller than its announced geometry/) }),
    );
    pool.close();
  });

  it('is shared with another process: each sees the other write, in place', async () => {
    const geometry = { slotSize: MIN_SLOT_SIZE, slotCount: 4 };
    const pool = Pool.create(geometry);
    pool.payload(2).write('hello');
    const child = fork(new URL('./fixtures/pool-child.ts', import.meta.url).pathname, [JSON.stringify(geometry)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', pool.fd, 'ipc'],
    });
    const next = async <T>() => (await once(child, 'message'))[0] as T;
    try {
      await next();
      child.send({ op: 'swap', slot: 2 });
      expect((await next<{ read: string }>()).read).toBe('hello'); // the child read our bytes
      expect(pool.view(2, 5).toString()).toBe('HELLO'); // and wrote its own into the same memory
    } finally {
      child.kill();
      pool.close();
    }
  });
});
