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
