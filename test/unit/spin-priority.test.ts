// The once-a-second decision that moves spinning instances between their idle and normal cpu
// groups (the moves themselves, on real cgroups and processes: test/spin.test.ts).
import { describe, expect, it } from 'vitest';
import { nextBusy, nodeCpu, processCpuMs, SpinPriority } from '../../src/isolation/spin-priority.ts';

describe('nextBusy', () => {
  it('stops spinning after two ticks at `stopsAt` of the node used by others, and starts again only below half of it', () => {
    expect(nextBusy(false, 0.39, 0, 0.4)).toBe(false);
    expect(nextBusy(false, 0.4, 1, 0.4)).toBe(false); // one second: a process starting, say
    expect(nextBusy(false, 0.4, 2, 0.4)).toBe(true);
    // between the two lines it stays as it was
    expect(nextBusy(false, 0.3, 0, 0.4)).toBe(false);
    expect(nextBusy(true, 0.3, 0, 0.4)).toBe(true);
    expect(nextBusy(true, 0.19, 0, 0.4)).toBe(false);
  });
});

describe('SpinPriority', () => {
  /** A node of 2 CPUs with one spinning process (key 7, pid 70); spinning stops at 0.5. */
  function setup() {
    let nodeMs = 1_000_000; // used before it started: does not count
    let totalMs = 3_000_000;
    const processMs = new Map([[70, 50_000]]);
    const processes = [{ key: 7, pid: 70 }];
    const moves: string[] = [];
    const changes: string[] = [];
    const sp = new SpinPriority({
      node: () => ({ busyMs: nodeMs, totalMs }),
      processMs: (pid) => processMs.get(pid),
      processes: () => processes,
      setBusy: (key, pid, busy) => moves.push(`${key}/${pid}:${busy ? 'normal' : 'idle'}`),
    }, 0.5, (busy, load) => changes.push(`${busy} ${load.toFixed(2)}`));
    /** One tick 1 s after the last (2 s of CPU time): the node busy `node` ms in all, of which the
     *  spinners `spinners`. */
    const tick = (node: number, spinners: Record<number, number>) => {
      nodeMs += node;
      totalMs += 2000;
      for (const [pid, ms] of Object.entries(spinners)) processMs.set(Number(pid), (processMs.get(Number(pid)) ?? 0) + ms);
      sp.tick();
    };
    return { sp, processes, processMs, moves, changes, tick };
  }

  it('counts what the spinners take out, polling or working, and stops them after two busy ticks', () => {
    const { sp, moves, changes, tick } = setup();
    // the spinner polls 1.7 s of the 2 CPUs' 2 s: the rest is 0.2 s, 10%
    tick(1900, { 70: 1700 });
    expect(sp.busy).toBe(false);
    tick(1900, { 70: 700 }); // others 1.2 s of 2: 60%, once
    expect(sp.busy).toBe(false);
    tick(1900, { 70: 1700 });
    tick(1900, { 70: 700 });
    tick(1900, { 70: 700 }); // twice running
    expect(sp.busy).toBe(true);
    // working at normal priority now: still only the others count, 30% stays busy, 15% does not
    tick(1200, { 70: 600 });
    expect(sp.busy).toBe(true);
    tick(1200, { 70: 900 });
    expect(sp.busy).toBe(false);
    expect(changes).toEqual(['true 0.60', 'false 0.15']);
    expect(moves).toEqual(['7/70:idle', '7/70:idle', '7/70:idle', '7/70:idle', '7/70:normal', '7/70:normal', '7/70:idle']);
  });

  it('counts a process new since the last tick from its start, and forgets one that is gone', () => {
    const { sp, processes, processMs, tick } = setup();
    processes.push({ key: 8, pid: 80 });
    processMs.set(80, 0); // started since the last tick: all its time was in its idle group
    tick(1900, { 70: 900, 80: 900 }); // others 1.9 - 1.8 = 0.1 s
    expect(sp.busy).toBe(false);
    processes.shift();
    processMs.delete(70);
    tick(1900, { 80: 900 }); // 1.0 s of others, twice: busy
    tick(1900, { 80: 900 });
    expect(sp.busy).toBe(true);
  });
});

describe('the node\'s and a process\'s CPU time', () => {
  it('grow with work, and a process that is gone has none', () => {
    const node = nodeCpu();
    const mine = processCpuMs(process.pid)!;
    const until = performance.now() + 100;
    while (performance.now() < until); // 100 ms of CPU
    const after = nodeCpu();
    expect(after.busyMs - node.busyMs).toBeGreaterThanOrEqual(50);
    expect(after.totalMs - node.totalMs).toBeGreaterThanOrEqual(after.busyMs - node.busyMs);
    expect(processCpuMs(process.pid)! - mine).toBeGreaterThanOrEqual(50);
    expect(processCpuMs(2 ** 22 + 1)).toBeUndefined();
  });
});
