// A spinning instance polls at idle priority (cgroups.ts): its polling then takes only CPU no
// other process wants. But its work is idle-class too, and when the function has work nearly
// all the time every other process of the node comes first: a saturated chain of spinning
// functions served 0.81–0.87× what the same chain served sleeping. So, once a second, the
// gateway looks at how many of each spinning function's descriptors had to wait in its queue
// for an instance (the kernel counts them): for one instance that share is about its
// utilization (an arrival waits with the probability that the server is busy). From
// BUSY_FROM on, the function's instances move to their normal cpu groups — busy, they poll
// little — and back to their idle ones below IDLE_BELOW (apart, so that a function near one
// line does not move every second). Late binding only: early binding has no queue to count.

/** Share of a function's descriptors that waited, from which its instances count as busy. */
export const BUSY_FROM = 0.5;
/** ... and below which a busy one goes back to idle priority. */
export const IDLE_BELOW = 0.25;
/** Descriptors per tick below which a function is never busy (a few that met by chance). */
export const MIN_DESCRIPTORS = 50;
const TICK_MS = 1000;

/** Whether a function is busy after a tick in which `waited` of its `total` descriptors waited. */
export function nextBusy(busy: boolean, waited: number, total: number): boolean {
  if (total < MIN_DESCRIPTORS) return false;
  return waited / total >= (busy ? IDLE_BELOW : BUSY_FROM);
}

export interface SpinPrioritySource {
  /** Descriptors the data plane delivered to function `fnId`'s instances so far, and how many of
   *  them had waited in its queue (the kernel's counters of its keys: they only grow). */
  delivered(fnId: number): { total: number; waited: number };
  /** The processes of `fnId`'s instances that serve (ready or draining). */
  processes(fnId: number): { key: number; pid: number }[];
  /** Moves one to its normal cpu group (busy) or its idle one. */
  setBusy(key: number, pid: number, busy: boolean): void;
}

export class SpinPriority {
  private readonly last = new Map<number, { total: number; waited: number }>();
  private readonly busyFns = new Set<number>();
  private timer?: NodeJS.Timeout;

  constructor(
    /** Spinning late-bound functions. */
    private readonly fnIds: number[],
    private readonly source: SpinPrioritySource,
    private readonly onChange: (fnId: number, busy: boolean, waited: number, total: number) => void = () => {},
  ) {
    for (const fnId of fnIds) this.last.set(fnId, source.delivered(fnId));
  }

  start(): void {
    if (this.fnIds.length === 0 || this.timer) return;
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Whether function `fnId`'s instances are at normal priority now. */
  busy(fnId: number): boolean {
    return this.busyFns.has(fnId);
  }

  tick(): void {
    for (const fnId of this.fnIds) {
      const now = this.source.delivered(fnId);
      const before = this.last.get(fnId)!;
      this.last.set(fnId, now);
      const total = now.total - before.total;
      const waited = now.waited - before.waited;
      const was = this.busyFns.has(fnId);
      const busy = nextBusy(was, waited, total);
      if (busy) this.busyFns.add(fnId);
      else this.busyFns.delete(fnId);
      if (busy !== was) this.onChange(fnId, busy, waited, total);
      // every tick, not only on a change: an instance started meanwhile begins idle
      for (const { key, pid } of this.source.processes(fnId)) this.source.setBusy(key, pid, busy);
    }
  }
}
