// Deadline-aware shedding: a request still waiting in a queue whose deadline can no longer be
// met — the measured run time of the rest of its chain (each step's fastest arm, median run
// times) does not fit in what is left of its timeout — is answered 503 BATON_ERR_SHED at once,
// its slot taken back from the queue, instead of waiting its turn and then timing out.

export class Shedding {
  /** Per sweep: each function's median run time, and the rest of each chain from a function. */
  private runMsNow: number[] = [];
  private readonly remaining = new Map<number, number>();

  constructor(
    /** Each chain's steps (function ids; a step of several is a run-time branch). */
    private readonly chains: { steps: number[][] }[],
    private readonly functions: number,
    /** Median run time of function `fnId`, ms (0: none measured yet). */
    private readonly runMs: (fnId: number) => number,
  ) {}

  /** A new sweep: the run times are read again (once, not per waiting request). */
  refresh(): void {
    this.runMsNow = Array.from({ length: this.functions }, (_, f) => this.runMs(f));
    this.remaining.clear();
  }

  /** The least a request of chain `chainId` waiting for function `fnId` still needs, ms: that
   *  function and every step after it (a function not in the chain — a nested call — counts
   *  alone). */
  remainingMs(chainId: number, fnId: number): number {
    const key = chainId * this.functions + fnId;
    let ms = this.remaining.get(key);
    if (ms !== undefined) return ms;
    const run = (f: number) => this.runMsNow[f] ?? 0;
    const steps = this.chains[chainId]?.steps ?? [];
    const at = steps.findIndex((s) => s.includes(fnId));
    ms = run(fnId);
    if (at >= 0) for (const step of steps.slice(at + 1)) ms += Math.min(...step.map(run));
    this.remaining.set(key, ms);
    return ms;
  }
}
