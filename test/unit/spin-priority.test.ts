// The once-a-second decision that moves a spinning function's instances between their idle and
// normal cpu groups (the moves themselves are tested on real cgroups in test/spin.test.ts).
import { describe, expect, it } from 'vitest';
import { BUSY_FROM, IDLE_BELOW, MIN_DESCRIPTORS, nextBusy, SpinPriority } from '../../src/isolation/spin-priority.ts';

describe('nextBusy', () => {
  it('turns busy from BUSY_FROM of its descriptors waiting, and idle again only below IDLE_BELOW', () => {
    const n = 1000;
    expect(nextBusy(false, n * BUSY_FROM - 1, n)).toBe(false);
    expect(nextBusy(false, n * BUSY_FROM, n)).toBe(true);
    // between the two lines it stays as it was
    const between = n * ((BUSY_FROM + IDLE_BELOW) / 2);
    expect(nextBusy(false, between, n)).toBe(false);
    expect(nextBusy(true, between, n)).toBe(true);
    expect(nextBusy(true, n * IDLE_BELOW - 1, n)).toBe(false);
  });

  it('is never busy with a few descriptors, however many of them waited', () => {
    expect(nextBusy(false, MIN_DESCRIPTORS - 1, MIN_DESCRIPTORS - 1)).toBe(false);
    expect(nextBusy(true, MIN_DESCRIPTORS - 1, MIN_DESCRIPTORS - 1)).toBe(false);
    expect(nextBusy(true, 0, 0)).toBe(false);
  });
});

describe('SpinPriority', () => {
  function setup() {
    const counters = new Map([[3, { total: 500, waited: 100 }]]);
    const processes = [{ key: 7, pid: 70 }];
    const moves: string[] = [];
    const changes: string[] = [];
    const sp = new SpinPriority([3], {
      delivered: (fnId) => ({ ...counters.get(fnId)! }),
      processes: () => processes,
      setBusy: (key, pid, busy) => moves.push(`${key}/${pid}:${busy ? 'normal' : 'idle'}`),
    }, (fnId, busy, waited, total) => changes.push(`${fnId} ${busy} ${waited}/${total}`));
    const add = (total: number, waited: number) => {
      const c = counters.get(3)!;
      counters.set(3, { total: c.total + total, waited: c.waited + waited });
    };
    return { sp, processes, moves, changes, add };
  }

  it('judges each tick by what was delivered since the last one, not since the start', () => {
    const { sp, moves, changes, add } = setup();
    add(200, 190); // 500 delivered before it started (100 waited) do not count
    sp.tick();
    expect(sp.busy(3)).toBe(true);
    expect(changes).toEqual(['3 true 190/200']);
    add(200, 60); // 30%: stays busy
    sp.tick();
    expect(sp.busy(3)).toBe(true);
    add(200, 10);
    sp.tick();
    expect(sp.busy(3)).toBe(false);
    expect(changes).toEqual(['3 true 190/200', '3 false 10/200']);
    expect(moves).toEqual(['7/70:normal', '7/70:normal', '7/70:idle']);
  });

  it('tells every serving process each tick, so an instance started meanwhile is moved too', () => {
    const { sp, processes, moves, add } = setup();
    add(100, 100);
    sp.tick();
    processes.push({ key: 8, pid: 80 });
    add(100, 100);
    sp.tick();
    expect(moves).toEqual(['7/70:normal', '7/70:normal', '8/80:normal']);
  });

});
