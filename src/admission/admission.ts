// Admission control at the gateway's edge, per (route, class), as Aequitas does it for RPCs: a
// request of a class above the lowest is admitted at its class with that pair's probability p
// (aimd.ts), else downgraded to the lowest class; the lowest class takes what it can — beyond
// `lowestInFlight` of its requests in flight at once, a request is refused 429 with
// Retry-After (BATON_ERR_OVERLOADED). Each answer of an admitted request feeds its pair's p.
// Per class, what happened is counted, with the latency of recent answers.
import { batonError, type BatonError } from '../errors.ts';
import { AdmitProbability } from './aimd.ts';
import { CLASSES, classOf, LOWEST, type ClassName } from './classes.ts';

export interface AdmissionSettings {
  enabled: boolean;
  alpha: number;
  beta: number;
  floor: number;
  sizeUnit: number;
  windowMs: number;
  lowestInFlight: number;
  retryAfterS: number;
  starvationShare: number;
  shed: boolean;
  shedCheckMs: number;
  /** Latency target per class, ms. */
  slo: Record<ClassName, number>;
}

/** What admission decided for one request; handed back with its answer. */
export interface Ticket {
  chainId: number;
  /** The rank it asked for (its route's, or lower by header) and the rank it runs at. */
  asked: number;
  rank: number;
  bytes: number;
}

export interface ClassCounts {
  /** Requests that asked for the class and were admitted at it. */
  admitted: number;
  /** Requests that asked for it and were downgraded to the lowest class. */
  downgraded: number;
  /** Refused 429: the lowest class was full. */
  rejected: number;
  /** Answered 503 while waiting: the rest of its chain no longer fit in its timeout. */
  shed: number;
  /** Requests that ran at the class and were answered; those within its target. */
  answered: number;
  metSlo: number;
}

export interface AdmissionStatus {
  enabled: boolean;
  classes: Record<string, ClassCounts & { slo: number; p50: number | null; p99: number | null }>;
  probabilities: { route: string; class: string; p: number }[];
}

/** Recent answers' latencies per class, for p50/p99 in status. */
const RECENT = 2048;

export class Admission {
  /** By chainId × classes + rank (no key to build per request). */
  private readonly p: (AdmitProbability | undefined)[] = [];
  private lowestNow = 0;
  readonly counts: ClassCounts[] = CLASSES.map(() => ({ admitted: 0, downgraded: 0, rejected: 0, shed: 0, answered: 0, metSlo: 0 }));
  private readonly recent: Float64Array[] = CLASSES.map(() => new Float64Array(RECENT));
  private readonly seen: number[] = CLASSES.map(() => 0);

  constructor(
    readonly settings: AdmissionSettings,
    /** Each route's class rank, by chain id. */
    private readonly routeRank: (chainId: number) => number,
    private readonly draw: () => number = Math.random,
    private readonly now: () => number = () => performance.now(),
  ) {}

  private pair(chainId: number, rank: number): AdmitProbability {
    const k = chainId * CLASSES.length + rank;
    return (this.p[k] ??= new AdmitProbability(this.settings));
  }

  /** Decides a request of chain `chainId` whose class header is `header`, `bytes` long: its
   *  ticket, or the 429 to answer. */
  admit(chainId: number, header: string | string[] | undefined, bytes: number): Ticket | BatonError {
    const asked = classOf(this.routeRank(chainId), header);
    let rank = asked;
    if (this.settings.enabled && rank < LOWEST && !this.pair(chainId, rank).admits(this.draw())) rank = LOWEST;
    const c = this.counts[asked]!;
    if (this.settings.enabled && rank === LOWEST) {
      if (this.lowestNow >= this.settings.lowestInFlight) {
        c.rejected++;
        return batonError('BATON_ERR_OVERLOADED', `${this.settings.lowestInFlight} ${CLASSES[LOWEST]} requests in flight already`);
      }
      this.lowestNow++;
    }
    if (rank === asked) c.admitted++;
    else c.downgraded++;
    return { chainId, asked, rank, bytes };
  }

  /** The request of `t` is over: answered in `latencyMs`, or never answered (< 0: its body
   *  failed, its client went away). */
  done(t: Ticket, latencyMs: number): void {
    if (this.settings.enabled && t.rank === LOWEST) this.lowestNow--;
    if (latencyMs < 0) return;
    const c = this.counts[t.rank]!;
    const target = this.settings.slo[CLASSES[t.rank]!];
    c.answered++;
    if (latencyMs <= target) c.metSlo++;
    this.recent[t.rank]![this.seen[t.rank]!++ % RECENT] = latencyMs;
    if (this.settings.enabled && t.rank === t.asked && t.rank < LOWEST) this.pair(t.chainId, t.rank).observe(this.now(), latencyMs, target, t.bytes);
  }

  /** A request that ran at class rank `rank` was shed: while it waited, or by its function
   *  (ctx.willTake()). */
  shed(rank: number): void {
    this.counts[rank]!.shed++;
  }

  /** The admit probability of chain `chainId`'s requests of class rank `rank` (1 for the lowest). */
  probability(chainId: number, rank: number): number {
    return rank === LOWEST ? 1 : (this.p[chainId * CLASSES.length + rank]?.p ?? 1);
  }

  /** Counters and latencies per class, and each (route, class)'s p (`route` names chains). */
  status(route: (chainId: number) => string): AdmissionStatus {
    const classes = Object.fromEntries(
      CLASSES.map((name, r) => {
        const n = Math.min(this.seen[r]!, RECENT);
        const sorted = [...this.recent[r]!.subarray(0, n)].sort((a, b) => a - b);
        const q = (x: number) => (n ? Math.round(sorted[Math.min(n - 1, Math.floor(x * n))]! * 100) / 100 : null);
        return [name, { ...this.counts[r]!, slo: this.settings.slo[name], p50: q(0.5), p99: q(0.99) }];
      }),
    );
    const probabilities = this.p.flatMap((a, k) =>
      a ? [{ route: route(Math.floor(k / CLASSES.length)), class: CLASSES[k % CLASSES.length]!, p: Math.round(a.p * 1000) / 1000 }] : [],
    );
    return { enabled: this.settings.enabled, classes, probabilities };
  }
}
