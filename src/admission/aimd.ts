// Aequitas' admission probability (Zhang et al., SIGCOMM'22), for one (route, class): each
// answered request that was admitted at the class reports its latency, and p is updated at most
// once per window from what the window saw: a miss of the class's target lowers p by β × the
// missing request's size (in units of `sizeUnit` bytes; the largest miss of the window counts),
// never below `floor`; a window of answers that all met it raises p by α, up to 1. So p falls
// while latency-critical work misses, and creeps back while it meets its target.

export interface AimdSettings {
  alpha: number;
  beta: number;
  floor: number;
  /** Bytes one unit of request size stands for. */
  sizeUnit: number;
  /** At most one update per this many ms. */
  windowMs: number;
}

export class AdmitProbability {
  p = 1;
  increases = 0;
  decreases = 0;
  private windowStart: number | undefined;
  /** The largest size (units) of a miss in the current window; 0: none missed. */
  private missed = 0;

  constructor(private readonly s: AimdSettings) {}

  /** A request admitted at this class was answered at `now` (ms) in `latencyMs`, against a
   *  target of `targetMs`; its body was `bytes` long. */
  observe(now: number, latencyMs: number, targetMs: number, bytes: number): void {
    this.windowStart ??= now;
    if (latencyMs > targetMs) this.missed = Math.max(this.missed, Math.max(1, Math.ceil(bytes / this.s.sizeUnit)));
    if (now - this.windowStart < this.s.windowMs) return;
    if (this.missed) {
      this.p = Math.max(this.s.floor, this.p - this.s.beta * this.missed);
      this.decreases++;
    } else {
      this.p = Math.min(1, this.p + this.s.alpha);
      this.increases++;
    }
    this.missed = 0;
    this.windowStart = now;
  }

  /** Whether a request is admitted, given a uniform draw in [0, 1). */
  admits(draw: number): boolean {
    return draw < this.p;
  }
}
