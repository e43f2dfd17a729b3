// Deadline-aware shedding: a request still waiting in a queue whose deadline can no longer be
// met — the measured run time of the rest of its chain (each step's fastest arm, median run
// times) does not fit in what is left of its timeout — is answered 503 BATON_ERR_SHED at once,
// its slot taken back from the queue, instead of waiting its turn and then timing out.

export class Shedding {
  constructor(
    /** Each chain's steps (function ids; a step of several is a run-time branch). */
    private readonly chains: { steps: number[][] }[],
    /** Median run time of function `fnId`, ms (0: none measured yet). */
    private readonly runMs: (fnId: number) => number,
  ) {}

  /** The least a request of chain `chainId` waiting for function `fnId` still needs, ms: that
   *  function and every step after it (a function not in the chain — a nested call — counts
   *  alone). */
  remainingMs(chainId: number, fnId: number): number {
    const steps = this.chains[chainId]?.steps ?? [];
    const at = steps.findIndex((s) => s.includes(fnId));
    if (at < 0) return this.runMs(fnId);
    let ms = this.runMs(fnId);
    for (const step of steps.slice(at + 1)) ms += Math.min(...step.map((f) => this.runMs(f)));
    return ms;
  }
}
