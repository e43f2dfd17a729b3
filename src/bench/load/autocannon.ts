// HTTP load, each generator in its own process: autocannon (a maintained load generator)
// as fast as it can go, or the paced open-loop client at a fixed rate (see paced-child.ts
// for why not autocannon's rate mode).
import { forkReady, nextMessage, stop } from '../procs.ts';
import { sibling } from '../../paths.ts';

const AUTOCANNON = sibling(import.meta.url, './autocannon-child.ts');
const PACED = sibling(import.meta.url, './paced-child.ts');

export interface LoadResult {
  rps: number;
  total: number;
  bytesPerSec: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  errors: number;
  non2xx: number;
  /** With `timing` (paced load only): each hop's wait from the answers' Server-Timing. */
  hops?: HopWaits;
}

/** Hop waits in µs, by where the hop goes: gateway → first function, function → function
 *  (inside the chain), last function → gateway. */
export interface HopWaits {
  first: number[];
  inside: number[];
  back: number[];
}

/** Adds the hops of one Server-Timing header (src/gateway/timing.ts) to `into`. */
export function hopWaits(timing: string, into: HopWaits): void {
  for (const m of timing.matchAll(/h(\d+)-[\w@.-]+?-wait;dur=([\d.]+)/g)) {
    (m[1] === '1' ? into.first : into.inside).push(Number(m[2]) * 1000);
  }
  const back = /gw-wait;dur=([\d.]+)/.exec(timing);
  if (back) into.back.push(Number(back[1]) * 1000);
}

export interface LoadJob {
  url: string;
  connections: number;
  /** Seconds. */
  duration: number;
  /** Requests per second over all connections (absent: as fast as possible). */
  overallRate?: number;
  /** A body of this many 'x' bytes, or this text. */
  bodyBytes?: number;
  bodyText?: string;
  method?: 'GET' | 'POST';
  /** Ask baton for Server-Timing and collect each hop's wait (paced load only). */
  timing?: boolean;
}

export async function httpLoad(job: LoadJob): Promise<LoadResult> {
  const child = await forkReady(job.overallRate ? PACED : AUTOCANNON, []);
  try {
    child.send(job);
    return await nextMessage<LoadResult>(child, (m) => 'rps' in (m as object));
  } finally {
    await stop(child);
  }
}
