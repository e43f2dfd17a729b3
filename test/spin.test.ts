// spinUs: an instance keeps polling for its window after each descriptor, then sleeps again,
// and it polls at idle priority: a process with work on its CPU keeps that CPU. Judged by the
// CPU each process uses (a spinning process uses a CPU's worth while the window lasts, a
// sleeping one none), never by how fast a request went.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpuMs } from '../src/bench/procs.ts';
import { spinningAgain } from '../src/bench/systems/baton.ts';
import type { Gateway } from '../src/gateway/index.ts';
import { busyMovesUnavailable, cgroupsUnavailable, dataplaneUnavailable } from './helpers/env.ts';
import { poolSettled, startGateway, waitFor } from './helpers/gateway.ts';

/** The schema's largest window, so the spin is long enough to see on a loaded machine. */
const WINDOW_US = 1_000_000;

/** Process `pid`'s group in the cgroup v1 cpu hierarchy (or v2's one), e.g. /baton-12/k1. */
function cpuGroup(pid: number): string {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  const v1 = lines.find((l) => (l.split(':')[1] ?? '').split(',').includes('cpu'));
  return (v1 ?? lines.find((l) => l.startsWith('0::')))!.split(':')[2]!;
}

describe.skipIf(dataplaneUnavailable)('spinUs', () => {
  let gw: Gateway;
  const pidOf = (name: string) => gw.instances.all.find((i) => gw.deployment.functions[i.fnId]!.name === name && i.state === 'ready')!.child!.pid!;
  const post = async (body: string) => {
    const res = await fetch(`${gw.url}/x`, { method: 'POST', body });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(body);
  };
  /** CPU ms `pid` uses over the next `ms`. */
  const cpuOver = async (pid: number, ms: number) => {
    const before = cpuMs([pid]);
    await new Promise((r) => setTimeout(r, ms));
    return cpuMs([pid]) - before;
  };
  const asleep = async (pid: number) => (await cpuOver(pid, 200)) < 20;

  beforeAll(async () => {
    gw = await startGateway({
      functions: {
        spinning: { module: 'echo.ts', spinUs: WINDOW_US },
        sleeping: { module: 'echo.ts' },
        hostile: { module: 'hostile.ts', spinUs: WINDOW_US },
        early: { module: 'echo.ts', spinUs: WINDOW_US, binding: 'early' },
      },
      routes: [
        { method: 'POST', path: '/x', chain: ['spinning', 'sleeping'] },
        { method: 'POST', path: '/hostile', chain: ['hostile'] },
        { method: 'POST', path: '/early', chain: ['early'] },
      ],
      // spinning stops while other processes use 80% of the node's CPU: one busy loop (the
      // idle-priority test) stays below it, one per CPU does not
      gateway: { spinStopsAt: 0.8 },
    });
  });
  afterAll(() => gw?.stop());

  it('an instance polls for its window after a descriptor, then sleeps; requests are answered the same throughout', async () => {
    const spinner = pidOf('spinning');
    const sleeper = pidOf('sleeping');
    // an instance that has served nothing does not spin
    await waitFor('both instances to be asleep', async () => (await asleep(spinner)) && (await asleep(sleeper)));

    await post('first');
    // within its window the spinning instance uses CPU; the other one sleeps
    const spinning = cpuMs([spinner]);
    const sleeping = cpuMs([sleeper]);
    await waitFor('the instance to spin', () => cpuMs([spinner]) - spinning >= 100, WINDOW_US / 1000);
    expect(cpuMs([sleeper]) - sleeping).toBeLessThan(50);

    // past the window it sleeps in epoll again, and a descriptor still wakes it
    await waitFor('the instance to park', () => asleep(spinner));
    await post('second');
    await poolSettled(gw);
  });

  it.skipIf(cgroupsUnavailable)('a spinning instance polls at idle priority: a busy process on its CPU keeps the CPU', async () => {
    const spinner = pidOf('spinning');
    // its CPU is in the gateway's idle group (cpu.idle), the other function's is not
    expect(cpuGroup(spinner)).toMatch(new RegExp(`/baton-${process.pid}-idle/k\\d+$`));
    expect(cpuGroup(pidOf('sleeping'))).toMatch(new RegExp(`/baton-${process.pid}/k\\d+$`));

    // the spinner and a busy loop on one CPU, while the spinner's window lasts
    await post('spin');
    execFileSync('taskset', ['-p', '-c', '0', String(spinner)], { stdio: 'ignore' });
    const busy = spawn('taskset', ['-c', '0', 'sh', '-c', 'while :; do :; done'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 100)); // taskset has exec'd the loop
      const before = { spinner: cpuMs([spinner]), busy: cpuMs([busy.pid!]) };
      await new Promise((r) => setTimeout(r, 500));
      const spun = cpuMs([spinner]) - before.spinner;
      const worked = cpuMs([busy.pid!]) - before.busy;
      // sharing the CPU as equals each would get about half; at idle priority the spinner gets
      // what the kernel gives idle groups (~0.3% of a busy CPU)
      expect(worked).toBeGreaterThan(200);
      expect(spun).toBeLessThan(worked / 10);
    } finally {
      busy.kill('SIGKILL');
    }
    await waitFor('the instance to park', () => asleep(spinner));
    await post('after');
    await poolSettled(gw);
  });

  it.skipIf(busyMovesUnavailable)('while other processes keep the node\'s CPUs busy, a spinning instance works at normal priority without polling; then it polls at idle priority again', async () => {
    const spinner = pidOf('spinning');
    const status = () => gw.status().functions.find((f) => f.name === 'spinning')!;
    const polls = () => status().instances.find((i) => i.pid === spinner)!.polls;
    const idleGroup = new RegExp(`/baton-${process.pid}-idle/k\\d+$`);
    const normalGroup = new RegExp(`/baton-${process.pid}/k\\d+$`);
    await waitFor('the spinning function to poll at idle priority', () => idleGroup.test(cpuGroup(spinner)) && polls() === true);
    expect(status().spinPriority).toBe('idle');
    expect(gw.status().functions.find((f) => f.name === 'sleeping')!.spinPriority).toBeNull();

    // a busy loop per CPU: other processes take all the node's CPU time (spinStopsAt 0.8 here)
    const hogs = availableParallelism();
    const loops = Array.from({ length: hogs }, () => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
    try {
      await waitFor('the spinning function to be moved to normal priority', () => normalGroup.test(cpuGroup(spinner)), 20_000);
      expect(status().spinPriority).toBe('normal');
      await waitFor('the early-bound spinning function to be moved too', () => normalGroup.test(cpuGroup(pidOf('early'))));
      // the instance says it stopped polling (it answers the gateway's message)
      await waitFor('the instance to stop polling', () => polls() === false);
      // so after a descriptor it sleeps at once, where its 1 s window would have it poll (at
      // normal priority now: beside the loops it would get its share of a CPU)
      await post('busy node');
      expect(await asleep(spinner)).toBe(true);
      // what the bench waits on before measuring a spinning chain says so too
      expect(await spinningAgain(gw.adminUrl, 500)).toBe(false);
    } finally {
      for (const loop of loops) loop.kill('SIGKILL');
    }
    // the loops gone: back under the idle group, the same process, polling after a descriptor
    await waitFor('the spinning function to poll at idle priority again', () => idleGroup.test(cpuGroup(spinner)) && polls() === true, 20_000);
    await waitFor('the early-bound one too', () => idleGroup.test(cpuGroup(pidOf('early'))));
    expect(status().spinPriority).toBe('idle');
    expect(await spinningAgain(gw.adminUrl, 10_000)).toBe(true);
    expect(pidOf('spinning')).toBe(spinner);
    await post('quiet node');
    const before = cpuMs([spinner]);
    await waitFor('the instance to spin again', () => cpuMs([spinner]) - before >= 100, WINDOW_US / 1000);
    await waitFor('the instance to park', () => asleep(spinner));
    await poolSettled(gw);
  });

  it.skipIf(cgroupsUnavailable)('a spinning function cannot leave its idle group or make it normal', async () => {
    const res = await fetch(`${gw.url}/hostile?do=regroup`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(200);
    const tried = (await res.json()) as Record<string, string>;
    const pid = pidOf('hostile');
    const own = Object.keys(tried).find((f) => f.endsWith(`${cpuGroup(pid)}/cgroup.procs`));
    expect(own).toBeDefined(); // it found its own group's file, and every other one
    expect(Object.keys(tried).length).toBeGreaterThan(4);
    expect(Object.entries(tried).filter(([, what]) => what === 'written')).toEqual([]);
    expect(cpuGroup(pid)).toMatch(new RegExp(`/baton-${process.pid}-idle/k\\d+$`));
    const mount = existsSync('/sys/fs/cgroup/cpu/cgroup.procs') ? '/sys/fs/cgroup/cpu' : '/sys/fs/cgroup';
    expect(readFileSync(`${mount}${cpuGroup(pid).replace(/\/k\d+$/, '')}/cpu.idle`, 'utf8').trim()).toBe('1');
  });

  it.skipIf(cgroupsUnavailable)('a spinning instance killed with SIGKILL is replaced by one that spins in the idle group too', async () => {
    const old = pidOf('spinning');
    await post('before');
    process.kill(old, 'SIGKILL');
    await waitFor('a replacement instance', () => {
      const inst = gw.instances.all.find((i) => gw.deployment.functions[i.fnId]!.name === 'spinning' && i.state === 'ready');
      return inst?.child?.pid !== undefined && inst.child.pid !== old;
    });
    await post('after');
    const replacement = pidOf('spinning');
    expect(cpuGroup(replacement)).toMatch(new RegExp(`/baton-${process.pid}-idle/k\\d+$`));
    const spun = cpuMs([replacement]);
    await waitFor('the replacement to spin', () => cpuMs([replacement]) - spun >= 100, WINDOW_US / 1000);
    await poolSettled(gw);
  });
});
