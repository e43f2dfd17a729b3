// A spinning instance polls at idle priority (cgroups.ts): its polling takes only CPU no other
// process wants. But its work is idle-class too: when the node's CPUs are busy with everything
// else (the gateway, the clients' connections, other work) it waits for them, at every hop —
// a saturated chain of spinning functions served 0.81–0.87× what it served sleeping — and there
// is no spare CPU left to poll with anyway. So, once a second, the gateway looks at how much of
// the node's CPU time went to anything but the spinning instances; from `gateway.spinStopsAt`
// of it on, two seconds running (0.4: a saturated 3-function chain's others took 0.49 here, at
// 5000 req/s 0.24; a load generator starting took 0.53–0.59 for one second), their processes
// move to normal cpu groups and stop polling (told so by the gateway): they work as sleeping
// instances do. After a second below half of it they go back to their idle groups and poll
// again. Measured first and dropped: the share of descriptors that waited for an instance
// (bursts of arrivals make it high at 2000 req/s), the time instances held descriptors (low
// even at saturation: what the work waits for there is a CPU, not an instance), and counting
// their work as load once at normal priority (a chain at 2000 req/s then kept itself there).
// Early- and late-bound functions alike: what polling takes is the node's spare CPU.
import { readFileSync } from 'node:fs';

const TICK_MS = 1000;
/** Ticks running at or above spinStopsAt before spinning stops. */
const BUSY_TICKS = 2;
/** How long load takes, at most, to stop spinning instances (the bench waits this out). */
export const STOP_DECISION_MS = BUSY_TICKS * TICK_MS;
/** /proc's unit of CPU time (USER_HZ), 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

/** Whether spinning is stopped after a tick in which other processes used `load` of the node's
 *  CPU, `above` ticks running (this one included) at or above `stopsAt`: it stops after
 *  BUSY_TICKS of them, and starts again below half of it. */
export function nextBusy(busy: boolean, load: number, above: number, stopsAt: number): boolean {
  return busy ? load >= stopsAt / 2 : above >= BUSY_TICKS;
}

export interface SpinPrioritySource {
  /** ms the node's CPUs have been busy, and busy or idle (the time they had), in all. */
  node(): { busyMs: number; totalMs: number };
  /** ms of CPU process `pid` used, in all; undefined if it is gone. */
  processMs(pid: number): number | undefined;
  /** The processes of spinning functions' instances, from their start (in their idle groups). */
  processes(): { key: number; pid: number }[];
  /** Moves one to its normal cpu group without polling (busy), or to its idle one polling. */
  setBusy(key: number, pid: number, busy: boolean): void;
}

export class SpinPriority {
  private lastNode: { busyMs: number; totalMs: number };
  private lastProcessMs = new Map<number, number>();
  private isBusy = false;
  /** Ticks running at or above spinStopsAt. */
  private above = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly source: SpinPrioritySource,
    /** gateway.spinStopsAt */
    private readonly stopsAt: number,
    private readonly onChange: (busy: boolean, load: number) => void = () => {},
  ) {
    this.lastNode = source.node();
    for (const { pid } of source.processes()) this.lastProcessMs.set(pid, source.processMs(pid) ?? 0);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Whether spinning functions' instances work at normal priority, without polling, now. */
  get busy(): boolean {
    return this.isBusy;
  }

  tick(): void {
    const node = this.source.node();
    const nodeMs = node.busyMs - this.lastNode.busyMs;
    const totalMs = node.totalMs - this.lastNode.totalMs;
    this.lastNode = node;
    const processes = this.source.processes();
    let spinnersMs = 0;
    const seen = new Map<number, number>();
    for (const { pid } of processes) {
      const ms = this.source.processMs(pid);
      if (ms === undefined) continue;
      // one new since the last tick has been in its idle group since it started
      spinnersMs += ms - (this.lastProcessMs.get(pid) ?? 0);
      seen.set(pid, ms);
    }
    this.lastProcessMs = seen;
    // what the spinning instances take (polling, or work) is never the load that stops them
    const load = totalMs > 0 ? Math.max(0, nodeMs - spinnersMs) / totalMs : 0;
    this.above = load >= this.stopsAt ? this.above + 1 : 0;
    const busy = nextBusy(this.isBusy, load, this.above, this.stopsAt);
    if (busy !== this.isBusy) this.onChange(busy, load);
    this.isBusy = busy;
    // every tick, not only on a change: an instance started meanwhile begins idle
    for (const { key, pid } of processes) this.source.setBusy(key, pid, busy);
  }
}

/** ms the node's CPUs have been busy (user, nice, system, irq and softirq: the network's work),
 *  and busy or idle (waiting for I/O too; not the time the host took: steal), from /proc/stat. */
export function nodeCpu(): { busyMs: number; totalMs: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.split(/\s+/).slice(1).map(Number);
  const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]!;
  return { busyMs: (busy * 1000) / CLOCK_TICKS, totalMs: ((busy + f[3]! + f[4]!) * 1000) / CLOCK_TICKS };
}

/** ms of CPU process `pid` has used (user and system), or undefined if it is gone. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}
